"""Alembic environment of the hot-list service (async, schema ``hotlist``)."""

from lpr_common.db import service_metadata
from lpr_common.migrations import run_env
from lpr_hotlist.settings import SCHEMA

run_env(service_metadata(SCHEMA))
