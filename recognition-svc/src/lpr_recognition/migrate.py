"""Apply the recognition service's migrations: ``python -m lpr_recognition.migrate``."""

from __future__ import annotations

from lpr_common.migrations import upgrade
from lpr_recognition.settings import SCHEMA, Settings


def migrate(database_url: str | None = None) -> None:
    """Bring the ``recognition`` schema up to date."""
    upgrade("lpr_recognition", SCHEMA, database_url or Settings().database_url)


if __name__ == "__main__":
    migrate()
