"""Apply the hot-list service's migrations: ``python -m lpr_hotlist.migrate``."""

from __future__ import annotations

from lpr_common.migrations import upgrade
from lpr_hotlist.settings import SCHEMA, Settings


def migrate(database_url: str | None = None) -> None:
    """Bring the ``hotlist`` schema up to date."""
    upgrade("lpr_hotlist", SCHEMA, database_url or Settings().database_url)


if __name__ == "__main__":
    migrate()
