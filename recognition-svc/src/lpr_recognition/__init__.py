"""lpr_recognition."""
