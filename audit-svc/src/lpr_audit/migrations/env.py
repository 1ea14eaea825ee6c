"""Alembic environment of the audit service (async, schema ``audit``)."""

from lpr_common.db import service_metadata
from lpr_common.migrations import run_env
from lpr_audit.settings import SCHEMA

run_env(service_metadata(SCHEMA))
