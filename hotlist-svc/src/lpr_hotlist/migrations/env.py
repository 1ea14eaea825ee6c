"""Alembic environment of the hot-list service (async, schema ``hotlist``)."""

import lpr_hotlist.models  # noqa: F401  (registers the tables)
from lpr_common.db import service_metadata
from lpr_common.migrations import run_env
from lpr_hotlist.settings import SCHEMA

run_env(service_metadata(SCHEMA))
