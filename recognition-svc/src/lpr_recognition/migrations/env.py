"""Alembic environment of the recognition service (async, schema ``recognition``)."""

import lpr_recognition.fusion.models  # (registers the tables on the metadata)
import lpr_recognition.reads.models  # noqa: F401
from lpr_common.db import service_metadata
from lpr_common.migrations import run_env
from lpr_recognition.settings import SCHEMA

run_env(service_metadata(SCHEMA))
