"""A short-lived cache of callers' policy subjects, emptied on every change.

Building the policy's :class:`lpr_policy.Subject` of a user or partner takes a handful
of queries (user, training, approvals, MOU, partner client) on every request. The rows
change rarely, so each replica keeps what it built for a few seconds. A trigger
NOTIFYs ``lpr_subjects_changed`` on every write to those rows (migration
``gateway_0003``); the cache LISTENs and empties itself on each notification. The cache
is only used while that LISTEN connection is up: without it, every request reads the
rows as before. The token itself (signature, expiry) is checked on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import asyncpg
from fastapi import FastAPI

from lpr_common.db import plain_url
from lpr_gateway.settings import Settings
from lpr_policy import Subject

if TYPE_CHECKING:
    from lpr_gateway.access.identify import Principal

_logger = logging.getLogger(__name__)

CHANNEL = "lpr_subjects_changed"
RECONNECT_S = 2.0


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    subject: Subject
    stored_at: float


class SubjectCache:
    """Principals and subjects by (kind, id), valid for ``ttl_s`` or until a change."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.generation = 0
        self.listening = False
        self._entries: dict[tuple[str, str], _Entry] = {}

    @property
    def enabled(self) -> bool:
        """True when entries may be used: a TTL is set and changes are heard."""
        return self.ttl_s > 0 and self.listening

    def get(self, kind: str, key: str) -> tuple[Principal, Subject] | None:
        """A copy of the cached principal and its subject, or None."""
        if not self.enabled:
            return None
        entry = self._entries.get((kind, key))
        if entry is None:
            return None
        if time.monotonic() - entry.stored_at > self.ttl_s:
            del self._entries[(kind, key)]
            return None
        # Each request gets its own principal: guards and routes may set fields on it.
        principal = dataclasses.replace(entry.principal, roles=list(entry.principal.roles))
        principal.cached_subject = entry.subject
        return principal, entry.subject

    def put(
        self, kind: str, key: str, principal: Principal, subject: Subject, generation: int
    ) -> None:
        """Keep what was built from rows read after ``generation`` was observed."""
        # A change heard while the rows were being read makes them possibly stale.
        if not self.enabled or generation != self.generation:
            return
        stored = dataclasses.replace(principal, roles=list(principal.roles), cached_subject=None)
        self._entries[(kind, key)] = _Entry(stored, subject, time.monotonic())

    def clear(self) -> None:
        """Forget everything (a change was committed, or changes may have been missed)."""
        self.generation += 1
        self._entries.clear()


def subject_cache(app: FastAPI) -> SubjectCache | None:
    """The app's cache, when the lifespan installed one."""
    cache: SubjectCache | None = getattr(app.state, "subject_cache", None)
    return cache


@asynccontextmanager
async def subject_cache_listener(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan hook: the cache, and the LISTEN connection that keeps it honest."""
    settings: Settings = app.state.settings
    cache = SubjectCache(settings.gateway_subject_cache_s)
    app.state.subject_cache = cache
    if cache.ttl_s <= 0:
        yield
        return

    def changed(*_: object) -> None:
        cache.clear()

    def lost(*_: object) -> None:
        cache.listening = False
        cache.clear()

    async def listen() -> None:
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(plain_url(settings.database_url), timeout=5)
                connection.add_termination_listener(lost)
                await connection.add_listener(CHANNEL, changed)
                cache.clear()
                cache.listening = True
                while not connection.is_closed():
                    await asyncio.sleep(RECONNECT_S)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                _logger.warning("LISTEN %s unavailable; subjects are not cached", CHANNEL)
            finally:
                lost()
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await connection.close()
            await asyncio.sleep(RECONNECT_S)

    task = asyncio.create_task(listen(), name="gateway-subject-cache")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
