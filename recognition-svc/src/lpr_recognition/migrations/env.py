"""Alembic environment of the recognition service (async, schema ``recognition``)."""

from lpr_common.db import service_metadata
from lpr_common.migrations import run_env
from lpr_recognition.settings import SCHEMA

run_env(service_metadata(SCHEMA))
