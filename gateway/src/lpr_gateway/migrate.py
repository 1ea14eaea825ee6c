"""Apply the gateway's migrations: ``python -m lpr_gateway.migrate``."""

from __future__ import annotations

from lpr_common.migrations import upgrade
from lpr_gateway.settings import SCHEMA, Settings


def migrate(database_url: str | None = None) -> None:
    """Bring the ``gateway`` schema up to date."""
    upgrade("lpr_gateway", SCHEMA, database_url or Settings().database_url)


if __name__ == "__main__":
    migrate()
