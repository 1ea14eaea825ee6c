"""The transparency report: aggregate counts only, no plates."""
