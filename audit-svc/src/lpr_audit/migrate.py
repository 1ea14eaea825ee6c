"""Apply the audit service's migrations: ``python -m lpr_audit.migrate``."""

from __future__ import annotations

from lpr_audit.settings import SCHEMA, Settings
from lpr_common.migrations import upgrade


def migrate(database_url: str | None = None) -> None:
    """Bring the ``audit`` schema up to date."""
    upgrade("lpr_audit", SCHEMA, database_url or Settings().database_url)


if __name__ == "__main__":
    migrate()
