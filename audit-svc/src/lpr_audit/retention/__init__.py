"""Retention settings per class (IACP B.1.a, E) and the receipts of each purge."""
