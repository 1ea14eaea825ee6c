"""lpr_common."""
