"""The match index each replica holds, rebuilt from the database when a list changes.

Every change the index depends on (a new list version, a list's priority or one-edit flag,
the OCR classes) bumps ``hotlist.config.generation`` and sends ``NOTIFY lpr_hotlist_changed``
inside the same transaction, so the notification arrives only once the change is committed.
Each replica LISTENs on that channel and rebuilds: it reads the entries of every list's
current version, builds a new :class:`~lpr_hotlist.matching.MatchIndex` in a worker thread
(off the event loop) and swaps one reference, so a match always sees one whole generation.
A periodic check of the generation covers a notification lost while the listening
connection was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lpr_common.db import plain_url
from lpr_common.plates import OcrEquivalence
from lpr_hotlist.matching import IndexEntry, MatchIndex
from lpr_hotlist.settings import Settings

_logger = logging.getLogger(__name__)

HOTLIST_CHANNEL = "lpr_hotlist_changed"
"""NOTIFY channel: the index generation changed (payload: the new generation)."""
ALERT_CHANNEL = "lpr_alert_events"
"""NOTIFY channel: alert events were committed (payload: the agency)."""


@dataclass(frozen=True, slots=True)
class ListInfo:
    """What a match needs to know about a list beyond the entry."""

    list_id: UUID
    agency: str
    name: str
    source: str
    category: str
    priority: int
    version_id: UUID | None
    version: int


@dataclass(frozen=True, slots=True)
class IndexState:
    """One generation of the index with the lists it was built from."""

    index: MatchIndex
    lists: Mapping[UUID, ListInfo]
    generation: int
    built_at: datetime
    build_s: float
    entry_count: int = 0


def _empty_state() -> IndexState:
    return IndexState(MatchIndex.build([]), {}, -1, datetime.now(UTC), 0.0)


_ENTRIES_SQL = text(
    "SELECT e.id, e.list_id, e.plate, e.state, e.pattern, e.effective_at, e.expires_at, "
    "l.priority, l.allow_one_edit "
    "FROM hotlist.hot_list_entries e JOIN hotlist.hot_lists l ON e.version_id = l.current_version_id"
)
_LISTS_SQL = text(
    "SELECT id, agency, name, source, category, priority, current_version_id, current_version "
    "FROM hotlist.hot_lists"
)
_CONFIG_SQL = text("SELECT generation, ocr_classes FROM hotlist.config WHERE id = 1")


def _build(rows: Sequence[Any], equivalence: OcrEquivalence, generation: int) -> MatchIndex:
    entries = [
        IndexEntry(
            entry_id=row[0],
            list_id=row[1],
            plate=row[2],
            state=row[3],
            pattern=row[4],
            effective_from=row[5],
            expires_at=row[6],
            list_priority=row[7],
            allow_one_edit=row[8],
        )
        for row in rows
    ]
    index = MatchIndex.build(entries, equivalence=equivalence, version=generation)
    # The index lives until the next generation: keep the cyclic collector from scanning
    # its millions of objects on every full collection (refcounting still frees the old one).
    gc.freeze()
    return index


async def current_generation(session: AsyncSession) -> int:
    """The database's index generation."""
    row = (await session.execute(_CONFIG_SQL)).one()
    return int(row[0])


@dataclass
class LiveIndex:
    """The replica's current :class:`IndexState` and the machinery that keeps it fresh."""

    sessionmaker: async_sessionmaker[AsyncSession]
    _state: IndexState = field(default_factory=_empty_state)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _pending: asyncio.Task[None] | None = None
    _again: bool = False
    rebuilds: int = 0

    @property
    def state(self) -> IndexState:
        """The generation matches use now."""
        return self._state

    async def rebuild(self, session: AsyncSession | None = None) -> IndexState:
        """Load every current entry and swap in a new index.

        Args:
            session: Read through this session (tests pass their transaction's); a fresh one
                from the sessionmaker otherwise.
        """
        async with self._lock:
            started = time.perf_counter()
            if session is None:
                async with self.sessionmaker() as own:
                    loaded = await self._load(own)
            else:
                loaded = await self._load(session)
            generation, classes, lists, rows = loaded
            index = await asyncio.to_thread(
                _build, rows, OcrEquivalence.from_spec(classes), generation
            )
            self._state = IndexState(
                index,
                lists,
                generation,
                datetime.now(UTC),
                time.perf_counter() - started,
                len(index),
            )
            self.rebuilds += 1
            _logger.info(
                "match index generation %s: %s entries in %.2f s",
                generation,
                len(index),
                self._state.build_s,
            )
            return self._state

    @staticmethod
    async def _load(
        session: AsyncSession,
    ) -> tuple[int, str, dict[UUID, ListInfo], Sequence[Any]]:
        config = (await session.execute(_CONFIG_SQL)).one()
        lists = {
            row[0]: ListInfo(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7])
            for row in (await session.execute(_LISTS_SQL)).all()
        }
        rows = (await session.execute(_ENTRIES_SQL)).all()
        return int(config[0]), str(config[1]), lists, rows

    def request_rebuild(self) -> None:
        """Schedule a rebuild; requests arriving during one are folded into one more."""
        if self._pending is not None and not self._pending.done():
            self._again = True
            return
        self._pending = asyncio.get_running_loop().create_task(self._rebuild_until_settled())

    async def _rebuild_until_settled(self) -> None:
        while True:
            self._again = False
            try:
                await self.rebuild()
            except Exception:
                _logger.exception("match index rebuild failed; keeping the previous generation")
            if not self._again:
                return

    async def refresh_if_stale(self) -> bool:
        """Rebuild when the database's generation differs from ours; True if it did."""
        async with self.sessionmaker() as session:
            generation = await current_generation(session)
        if generation == self._state.generation:
            return False
        await self.rebuild()
        return True

    async def wait_for_generation(self, generation: int, timeout_s: float = 10.0) -> IndexState:
        """Wait until this replica serves ``generation`` or newer (tests, the CLI)."""
        deadline = time.monotonic() + timeout_s
        while self._state.generation < generation:
            if time.monotonic() > deadline:
                raise TimeoutError(f"index still at generation {self._state.generation}")
            await asyncio.sleep(0.05)
        return self._state

    async def close(self) -> None:
        """Cancel a scheduled rebuild."""
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pending


class AlertBus:
    """Wakes this replica's alert streams when alert events were committed anywhere."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def waiter(self) -> asyncio.Event:
        """The event the next :meth:`notify` sets; take it before querying, then wait on it."""
        return self._event

    def notify(self) -> None:
        """Wake every stream waiting now."""
        event, self._event = self._event, asyncio.Event()
        event.set()


class ChangeListener:
    """One asyncpg connection LISTENing on the hot-list and alert channels; reconnects."""

    def __init__(
        self,
        database_url: str,
        *,
        on_hotlist_change: Callable[[], None],
        on_alert_event: Callable[[], None],
        retry_s: float = 2.0,
    ) -> None:
        self._url = plain_url(database_url)
        self._on_hotlist_change = on_hotlist_change
        self._on_alert_event = on_alert_event
        self._retry_s = retry_s
        self._connection: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()

    async def start(self) -> None:
        """Connect and listen; keep trying in the background if the database is down."""
        try:
            await self._connect()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            _logger.warning("cannot LISTEN yet (%s); retrying in the background", exc)
            self._lost.set()
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def _connect(self) -> None:
        connection = await asyncpg.connect(self._url)
        await connection.add_listener(HOTLIST_CHANNEL, self._hotlist)
        await connection.add_listener(ALERT_CHANNEL, self._alert)
        connection.add_termination_listener(self._terminated)
        self._connection = connection
        self._lost.clear()

    def _hotlist(self, *_: object) -> None:
        self._on_hotlist_change()

    def _alert(self, *_: object) -> None:
        self._on_alert_event()

    def _terminated(self, *_: object) -> None:
        self._lost.set()

    async def _supervise(self) -> None:
        while True:
            await self._lost.wait()
            await asyncio.sleep(self._retry_s)
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                continue
            # Whatever was notified while we were away: catch up now.
            self._on_hotlist_change()
            self._on_alert_event()

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()


def live_index_lifespan(settings: Settings) -> Callable[[FastAPI], Any]:
    """Lifespan hook: build the first index, LISTEN for changes, check the generation."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        live = LiveIndex(app.state.sessionmaker)
        bus = AlertBus()
        app.state.live_index = live
        app.state.alert_bus = bus
        try:
            await live.rebuild()
        except Exception:
            # The service still starts (readiness says why); the periodic check retries.
            _logger.exception("could not build the match index at start")
        listener = ChangeListener(
            settings.database_url,
            on_hotlist_change=live.request_rebuild,
            on_alert_event=bus.notify,
        )
        await listener.start()

        async def check_periodically() -> None:
            while True:
                await asyncio.sleep(settings.hotlist_index_check_s)
                try:
                    await live.refresh_if_stale()
                except Exception:
                    _logger.exception("match index generation check failed")
                bus.notify()

        checker = asyncio.get_running_loop().create_task(check_periodically())
        try:
            yield
        finally:
            checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checker
            await listener.stop()
            await live.close()

    return hook
