"""lprctl: run, inspect and administer the LPR platform on one machine."""
