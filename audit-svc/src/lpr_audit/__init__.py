"""lpr_audit."""
