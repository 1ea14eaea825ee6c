"""Reads: ingestion, storage and viewing of camera reads."""
