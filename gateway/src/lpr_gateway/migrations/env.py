"""Alembic environment of the gateway (async, schema ``gateway``)."""

import lpr_gateway.tables  # noqa: F401  (registers the tables on the metadata)
from lpr_common.db import service_metadata
from lpr_common.migrations import run_env
from lpr_gateway.settings import SCHEMA

run_env(service_metadata(SCHEMA))
