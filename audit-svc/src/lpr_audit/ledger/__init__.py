"""The hash chains stored in PostgreSQL: tables, the single writer, checkpoints, verification."""
