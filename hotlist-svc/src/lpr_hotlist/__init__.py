"""lpr_hotlist."""
