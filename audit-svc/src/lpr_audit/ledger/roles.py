"""Make every connection of the service act as the INSERT/SELECT-only writer role."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def use_writer_role(engine: AsyncEngine, role: str) -> None:
    """Run ``SET ROLE <role>`` on each new connection of ``engine`` (no-op when empty).

    The statement runs outside any transaction so a pool rollback cannot undo it.

    Raises:
        ValueError: ``role`` is not a plain lower-case identifier.
    """
    if not role:
        return
    if not _ROLE_NAME.match(role):
        raise ValueError(f"invalid database role name {role!r}")
    statement = f"SET ROLE {role}"

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.run_async(lambda connection: connection.execute(statement))

    event.listen(engine.sync_engine, "connect", on_connect)
