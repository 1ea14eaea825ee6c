"""The access log: appends, auditor queries, exports, checkpoints and the misuse report."""
