"""The single writer of a chain: batches concurrent appends into one transaction.

Requests put their encoded records on a queue and wait. One task takes everything queued
(up to ``max_batch`` records), and in one transaction takes the chain's advisory lock,
reads the tail, links the records after it and COPYs them in; then it answers every
waiting request with its seq range. One writer per process means concurrent requests
cannot fork the chain; the advisory lock means several replicas cannot either.

Latency matters as much as throughput: every gateway request waits for its event. The
writer commits as soon as it has something (it never waits to fill a batch; batches
form only from what queued during the previous commit), and it keeps one connection
for itself. The locked path costs four round trips: BEGIN with the lock, the tail, the
COPY and the COMMIT (which returns once the records are durable). Once the writer knows
the tail (it committed it), the next batch is one INSERT statement linked after it; the
primary key on ``seq`` refuses it whole if another replica appended meanwhile, and that
batch goes the locked way (:meth:`ChainWriter._append`).

Every append, either way, holds the chain's advisory lock until it commits: the INSERT
takes it itself, before it writes a row. So the locked path's tail, read once it holds
the lock, stays the tail until its COPY commits, and a replica on the locked path is
never refused because another replica's INSERT landed in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lpr_audit.chain import GENESIS_HEAD, ChainHead, LinkedHash, link_encoded
from lpr_audit.ledger.chains import ChainSpec, PendingRecord
from lpr_audit.settings import SCHEMA
from lpr_common.errors import ServiceUnavailable

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where a request's records landed: ``first_seq..last_seq`` (contiguous)."""

    first_seq: int
    last_seq: int

    @property
    def count(self) -> int:
        """How many records were appended."""
        return self.last_seq - self.first_seq + 1


def _rows(linked: Sequence[LinkedHash], records: Sequence[PendingRecord]) -> list[tuple[Any, ...]]:
    return [
        (link.seq, link.prev_hash, link.hash, record.canonical.decode("utf-8"), *record.columns)
        for link, record in zip(linked, records, strict=True)
    ]


async def append_locked(
    driver: Any, spec: ChainSpec, records: Sequence[PendingRecord]
) -> list[LinkedHash]:
    """Append ``records`` in a transaction of their own on an asyncpg connection.

    The transaction starts with the chain's advisory lock in the same round trip; the
    tail is read after the lock is held (its own statement, so its own snapshot), so no
    other writer can have appended unseen. Rolled back on any failure.
    """
    lock_key = int(spec.lock_key)
    await driver.execute(f"BEGIN; SELECT pg_advisory_xact_lock({lock_key})")
    try:
        row = await driver.fetchrow(
            f"SELECT seq, hash FROM {spec.qualified_table} ORDER BY seq DESC LIMIT 1"
        )
        head = GENESIS_HEAD if row is None else ChainHead(int(row[0]), str(row[1]))
        linked, _ = link_encoded(head, (record.canonical for record in records))
        await driver.copy_records_to_table(
            spec.table,
            schema_name=SCHEMA,
            columns=["seq", "prev_hash", "hash", "fields", *spec.columns],
            records=_rows(linked, records),
        )
        await driver.execute("COMMIT")
    except BaseException:
        if not driver.is_closed() and driver.is_in_transaction():
            with contextlib.suppress(Exception):
                await driver.execute("ROLLBACK")
        raise
    return linked


async def insert_statement(driver: Any, spec: ChainSpec) -> str:
    """One ``INSERT ... SELECT FROM unnest(...)`` of a batch, typed from the table itself.

    The statement takes the chain's advisory lock (the one :func:`append_locked` takes)
    before it inserts anything: the uncorrelated ``EXISTS`` is a one-time filter, which
    PostgreSQL evaluates before it reads the first row of ``unnest``, and the
    ``MATERIALIZED`` CTE keeps the volatile lock call from being inlined or dropped. The
    lock is held until the statement's own transaction ends.
    """
    lock_key = int(spec.lock_key)
    names = ["seq", "prev_hash", "hash", "fields", *spec.columns]
    rows = await driver.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute "
        "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
        spec.qualified_table,
    )
    types = {row["attname"]: row["type"] for row in rows}
    arrays = ", ".join(f"${n}::{types[name]}[]" for n, name in enumerate(names, start=1))
    return (
        f"WITH tail_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock({lock_key})) "
        f"INSERT INTO {spec.qualified_table} ({', '.join(names)}) "
        f"SELECT * FROM unnest({arrays}) WHERE EXISTS (SELECT FROM tail_lock)"
    )


async def append_after(
    driver: Any, statement: str, head: ChainHead, records: Sequence[PendingRecord]
) -> list[LinkedHash] | None:
    """Append ``records`` after ``head`` in one statement; ``None`` if ``head`` is not the tail.

    The statement is its own transaction and holds the chain's advisory lock (see
    :func:`insert_statement`), so it waits while another writer appends. ``seq`` is the
    primary key, so if another writer has appended after ``head``, the first record's
    ``seq`` is taken and the whole statement fails: the chain cannot fork, and nothing is
    written. The caller then reads the tail and links again.
    """
    linked, _ = link_encoded(head, (record.canonical for record in records))
    columns = list(zip(*_rows(linked, records), strict=True))
    try:
        await driver.execute(statement, *(list(column) for column in columns))
    except asyncpg.UniqueViolationError:
        return None
    return linked


ONE_STATEMENT_MAX = 50
"""Batches up to this many records are linked after the known tail in one statement."""

_Waiting = tuple[Sequence[PendingRecord], "asyncio.Future[AppendResult]"]


class ChainWriter:
    """The one task that appends to a chain in this process."""

    def __init__(
        self,
        engine: AsyncEngine,
        spec: ChainSpec,
        *,
        max_batch: int = 5000,
        on_appended: Callable[[ChainSpec, int], None] | None = None,
    ) -> None:
        self._engine = engine
        self.spec = spec
        self._max_batch = max_batch
        self._on_appended = on_appended
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._connection: AsyncConnection | None = None
        self._head: ChainHead | None = None
        self._statement: str | None = None

    def start(self) -> None:
        """Start the writer task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"audit-writer-{self.spec.name}")

    async def stop(self) -> None:
        """Stop the writer; requests still queued are answered 503."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(ServiceUnavailable("audit log is shutting down"))
        await self._release(invalidate=False)

    async def append(self, records: Sequence[PendingRecord]) -> AppendResult:
        """Append ``records`` (contiguously, in order); return once they are committed.

        Raises:
            ServiceUnavailable: the records could not be made durable.
        """
        if not records:
            raise ValueError("nothing to append")
        if self._task is None or self._task.done():
            raise ServiceUnavailable("audit log writer is not running")
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((records, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0][0])
            while size < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                batch.append(item)
                size += len(item[0])
            await self._write(batch)

    async def _write(self, batch: list[_Waiting]) -> None:
        try:
            results = await self._commit([records for records, _ in batch])
        except Exception as error:  # any failure must answer the waiting requests
            if len(batch) > 1:
                # Write each request alone, so one bad request cannot fail the others.
                for item in batch:
                    await self._write([item])
                return
            _logger.exception("audit %s chain append failed", self.spec.name)
            failure = ServiceUnavailable(f"audit log could not record: {type(error).__name__}")
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        if self._on_appended is not None:
            self._on_appended(self.spec, sum(result.count for result in results))

    async def _driver(self) -> Any:
        """The writer's own asyncpg connection, reconnected when the server dropped it."""
        connection = self._connection
        if connection is not None:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            if driver is not None and not driver.is_closed():
                return driver
            await self._release(invalidate=True)
        self._connection = connection = await self._engine.connect()
        raw = await connection.get_raw_connection()
        return raw.driver_connection

    async def _release(self, *, invalidate: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(Exception):
            if invalidate:
                # Never hand a connection in an unknown state back to the pool.
                await connection.invalidate()
            await connection.close()

    async def _append(self, driver: Any, records: Sequence[PendingRecord]) -> list[LinkedHash]:
        """One round trip while this writer knows the tail; the locked path when it does not.

        Large batches (under load) go the locked way too: there COPY's speed per row
        outweighs the saved round trips (bench/audit.py: 0.75 of a plain INSERT's rate
        with every batch as one statement, 0.88 with COPY).

        The tail this writer last committed is kept. While no other replica appends, a
        batch is linked after it and inserted in one statement (one round trip instead of
        the locked path's four). If another writer has appended meanwhile the statement
        fails on ``seq`` without writing anything, and the batch goes the locked way,
        which reads the true tail under the chain's lock.
        """
        if self._head is not None and len(records) <= ONE_STATEMENT_MAX:
            if self._statement is None:
                self._statement = await insert_statement(driver, self.spec)
            linked = await append_after(driver, self._statement, self._head, records)
            if linked is not None:
                return linked
        return await append_locked(driver, self.spec, records)

    async def _commit(self, groups: list[Sequence[PendingRecord]]) -> list[AppendResult]:
        flat = [record for group in groups for record in group]
        driver = await self._driver()
        try:
            linked = await self._append(driver, flat)
        except BaseException:
            # Committed or not, we no longer know: the next batch reads the tail.
            self._head = None
            await self._release(invalidate=True)
            raise
        self._head = ChainHead(linked[-1].seq, linked[-1].hash)
        results: list[AppendResult] = []
        position = 0
        for group in groups:
            results.append(
                AppendResult(linked[position].seq, linked[position + len(group) - 1].seq)
            )
            position += len(group)
        return results
