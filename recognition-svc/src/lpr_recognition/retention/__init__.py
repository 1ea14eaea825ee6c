"""Retention of reads (IACP B.1.a, E): legal holds (B.1.b) and the purge job with receipts."""
