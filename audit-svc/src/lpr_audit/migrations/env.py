"""Alembic environment of the audit service (async, schema ``audit``)."""

import lpr_audit.ledger.tables  # noqa: F401  (registers the tables on the metadata)
from lpr_audit.settings import SCHEMA
from lpr_common.db import service_metadata
from lpr_common.migrations import run_env

run_env(service_metadata(SCHEMA))
