"""Alembic environment of the audit service (async, schema ``audit``)."""

from lpr_audit.settings import SCHEMA
from lpr_common.db import service_metadata
from lpr_common.migrations import run_env

run_env(service_metadata(SCHEMA))
