"""lpr_gateway."""
