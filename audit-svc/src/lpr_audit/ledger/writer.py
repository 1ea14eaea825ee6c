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

A record is stored once. A sender resends a batch whose answer it lost (a timeout, a
reset connection) though audit-svc had committed it; each chain has a unique index on
the sender's id for a record (``event_id``, ``record_id``), so a resend can never be
stored again. The writer collapses a batch's repeats of one id before linking; when the
index refuses a batch (the INSERT, or the locked path's COPY), nothing was written and
the batch goes the locked way once more, deduplicating: with the tail, in the same round
trip, it reads which of the batch's ids are stored already, links only the others, and
answers a resent record with the seq it is stored at. A batch with no resend pays
nothing for this but the index, except for a while after a refusal (resends come in
runs), when the locked path deduplicates from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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
    """Where a request's records are stored, in request order, and how many it appended.

    The records a request appended are contiguous; one stored already (a resend) is
    answered with the seq it was stored at, which may lie anywhere before them.
    """

    seqs: tuple[int, ...]
    recorded: int

    @property
    def count(self) -> int:
        """How many records the request held (all are now stored)."""
        return len(self.seqs)

    @property
    def already_recorded(self) -> int:
        """How many of the request's records were stored before it (resends)."""
        return len(self.seqs) - self.recorded

    @property
    def first_seq(self) -> int:
        """The lowest seq of the request's records."""
        return min(self.seqs)

    @property
    def last_seq(self) -> int:
        """The highest seq of the request's records."""
        return max(self.seqs)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one append put each record it was given, and the chain's tail after it."""

    seqs: list[int]
    new: list[bool]
    head: ChainHead

    @classmethod
    def appended(cls, linked: Sequence[LinkedHash]) -> Placement:
        """Every record appended, as ``linked``."""
        return cls(
            [link.seq for link in linked],
            [True] * len(linked),
            ChainHead(linked[-1].seq, linked[-1].hash),
        )


def _rows(linked: Sequence[LinkedHash], records: Sequence[PendingRecord]) -> list[tuple[Any, ...]]:
    return [
        (link.seq, link.prev_hash, link.hash, record.canonical.decode("utf-8"), *record.columns)
        for link, record in zip(linked, records, strict=True)
    ]


async def append_locked(
    driver: Any,
    spec: ChainSpec,
    records: Sequence[PendingRecord],
    *,
    stored_statement: str | None = None,
) -> Placement:
    """Append ``records`` in a transaction of their own on an asyncpg connection.

    The transaction starts with the chain's advisory lock in the same round trip; the
    tail is read after the lock is held (its own statement, so its own snapshot), so no
    other writer can have appended unseen. Rolled back on any failure.

    With ``stored_statement`` (:func:`stored_statement`) the same round trip also reads
    which of the records' ids are stored already; only the others are appended, and each
    one stored is placed at its stored seq. ``records`` must not repeat an id.

    Raises:
        asyncpg.UniqueViolationError: without ``stored_statement``, a record's id is
            stored already (``constraint_name`` is the chain's ``key_index``); nothing
            was written.
    """
    lock_key = int(spec.lock_key)
    await driver.execute(f"BEGIN; SELECT pg_advisory_xact_lock({lock_key})")
    try:
        stored: dict[str, tuple[int, str]] = {}
        if stored_statement is None:
            row = await driver.fetchrow(
                f"SELECT seq, hash FROM {spec.qualified_table} ORDER BY seq DESC LIMIT 1"
            )
            head = GENESIS_HEAD if row is None else ChainHead(int(row[0]), str(row[1]))
        else:
            keys = [record.key for record in records if record.key is not None]
            head = GENESIS_HEAD
            for seq, digest, key, fields in await driver.fetch(stored_statement, keys):
                if key is None:
                    head = ChainHead(int(seq), str(digest))
                else:
                    stored[key] = (int(seq), fields)
        fresh = [r for r in records if r.key is None or r.key not in stored]
        linked, tail = link_encoded(head, (record.canonical for record in fresh))
        if fresh:
            await driver.copy_records_to_table(
                spec.table,
                schema_name=SCHEMA,
                columns=["seq", "prev_hash", "hash", "fields", *spec.columns],
                records=_rows(linked, fresh),
            )
        await driver.execute("COMMIT")
    except BaseException:
        if not driver.is_closed() and driver.is_in_transaction():
            with contextlib.suppress(Exception):
                await driver.execute("ROLLBACK")
        raise
    if not stored:
        return Placement.appended(linked)
    new_seqs = iter(link.seq for link in linked)
    seqs: list[int] = []
    new: list[bool] = []
    for record in records:
        found = None if record.key is None else stored.get(record.key)
        if found is None:
            seqs.append(next(new_seqs))
            new.append(True)
            continue
        seqs.append(found[0])
        new.append(False)
        if sent_content(record.canonical) != json.loads(found[1]):
            _report_different(spec, record, f"stored at seq {found[0]}")
    return Placement(seqs, new, tail)


def sent_content(canonical: bytes | str) -> Any:
    """A record's fields as sent: all but ``recorded_at``, which audit-svc adds on receipt."""
    fields = json.loads(canonical)
    fields.pop("recorded_at", None)
    return fields


def _differ(record: PendingRecord, first: PendingRecord) -> bool:
    # Equal bytes are the usual case (one request sent the record twice); requests
    # received apart differ at least in ``recorded_at``.
    return record.canonical != first.canonical and sent_content(record.canonical) != sent_content(
        first.canonical
    )


def _report_different(spec: ChainSpec, record: PendingRecord, kept: str) -> None:
    # The sender reused an id for other content (a fault: ids are made once per record).
    # The first record is kept and the other answered as its resend, so that no sender is
    # stuck resending; the fault is logged for the operators.
    _logger.error(
        "audit %s chain: a record sent with %s %s differs from the one %s; "
        "that one is kept and this one is not stored",
        spec.name,
        spec.key_field,
        record.key,
        kept,
    )


async def stored_statement(driver: Any, spec: ChainSpec) -> str:
    """One query for the locked path: the tail, and the stored records among some ids.

    Takes the ids as ``$1`` (text[]); returns the tail as ``(seq, hash, NULL, NULL)`` (no
    row for an empty chain) and each stored id as ``(seq, NULL, id, fields)`` without
    ``recorded_at``, to compare with what was sent again. The look-up repeats
    the predicate of the chain's unique index (copies stored before the index existed
    are left out of it, see migration ``audit_0003``), so that it can use that index and
    finds the first copy of such an id.
    """
    predicate = await driver.fetchval(
        "SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = to_regclass($1)",
        f"{SCHEMA}.{spec.key_index}",
    )
    key = f"(fields ->> '{spec.key_field}')"
    where = f"{key} = ANY($1::text[])" + (f" AND ({predicate})" if predicate else "")
    table = spec.qualified_table
    return (
        f"(SELECT seq, hash, NULL::text AS key, NULL::text AS content FROM {table} "
        "ORDER BY seq DESC LIMIT 1) "
        f"UNION ALL SELECT seq, NULL, {key}, (fields - 'recorded_at')::text "
        f"FROM {table} WHERE {where}"
    )


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
) -> list[LinkedHash]:
    """Append ``records`` after ``head`` in one statement.

    The statement is its own transaction and holds the chain's advisory lock (see
    :func:`insert_statement`), so it waits while another writer appends. ``seq`` is the
    primary key, so if another writer has appended after ``head``, the first record's
    ``seq`` is taken and the whole statement fails: the chain cannot fork, and nothing is
    written. The caller then reads the tail and links again.

    Raises:
        asyncpg.UniqueViolationError: ``head`` is not the tail (``constraint_name`` is the
            primary key's), or a record's id is stored already (the chain's
            ``key_index``); nothing was written.
    """
    linked, _ = link_encoded(head, (record.canonical for record in records))
    columns = list(zip(*_rows(linked, records), strict=True))
    await driver.execute(statement, *(list(column) for column in columns))
    return linked


ONE_STATEMENT_MAX = 50
"""Batches up to this many records are linked after the known tail in one statement."""

RESENDS_WINDOW_S = 30.0
"""After a resend was refused, the locked path looks stored ids up first for this long.

Resends come in runs (an outbox flushing after an outage, while live traffic goes on):
a large batch holding one would otherwise be copied in twice, refused the first time.
"""

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
        self._stored_statement: str | None = None
        self._resends_until = 0.0

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
            self._on_appended(self.spec, sum(result.recorded for result in results))

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

    async def _append(self, driver: Any, records: Sequence[PendingRecord]) -> Placement:
        """One round trip while this writer knows the tail; the locked path when it does not.

        Large batches (under load) go the locked way too: there COPY's speed per row
        outweighs the saved round trips (bench/audit.py: 0.75 of a plain INSERT's rate
        with every batch as one statement, 0.88 with COPY).

        The tail this writer last committed is kept. While no other replica appends, a
        batch is linked after it and inserted in one statement (one round trip instead of
        the locked path's four). If another writer has appended meanwhile the statement
        fails on ``seq`` without writing anything, and the batch goes the locked way,
        which reads the true tail under the chain's lock.

        If the chain's unique index on the records' ids refuses the batch (a resend),
        nothing was written either, and the batch goes the locked way deduplicating; for
        :data:`RESENDS_WINDOW_S` after that, the locked path deduplicates from the start.
        ``records`` must not repeat an id (:meth:`_commit` collapses repeats).
        """
        clock = asyncio.get_running_loop().time
        deduplicate = clock() < self._resends_until
        if self._head is not None and len(records) <= ONE_STATEMENT_MAX:
            if self._statement is None:
                self._statement = await insert_statement(driver, self.spec)
            try:
                return Placement.appended(
                    await append_after(driver, self._statement, self._head, records)
                )
            except asyncpg.UniqueViolationError as error:
                if error.constraint_name == self.spec.key_index:
                    deduplicate = True
                    self._resends_until = clock() + RESENDS_WINDOW_S
        if not deduplicate:
            try:
                return await append_locked(driver, self.spec, records)
            except asyncpg.UniqueViolationError as error:
                if error.constraint_name != self.spec.key_index:
                    raise
                self._resends_until = clock() + RESENDS_WINDOW_S
        if self._stored_statement is None:
            self._stored_statement = await stored_statement(driver, self.spec)
        return await append_locked(
            driver, self.spec, records, stored_statement=self._stored_statement
        )

    async def _commit(self, groups: list[Sequence[PendingRecord]]) -> list[AppendResult]:
        flat = [record for group in groups for record in group]
        # A batch may hold one record more than once (a resend racing its original):
        # the first is appended, the others are answered with its seq.
        unique: list[PendingRecord] = []
        slot: list[int] = []
        first_of: dict[str, int] = {}
        for record in flat:
            if record.key is None:
                slot.append(len(unique))
                unique.append(record)
                continue
            index = first_of.setdefault(record.key, len(unique))
            if index == len(unique):
                unique.append(record)
            elif _differ(record, unique[index]):
                _report_different(self.spec, record, "earlier in the same batch")
            slot.append(index)
        driver = await self._driver()
        try:
            placement = await self._append(driver, unique)
        except BaseException:
            # Committed or not, we no longer know: the next batch reads the tail.
            self._head = None
            await self._release(invalidate=True)
            raise
        self._head = placement.head
        results: list[AppendResult] = []
        claimed = [False] * len(unique)
        position = 0
        for group in groups:
            seqs: list[int] = []
            recorded = 0
            for index in slot[position : position + len(group)]:
                seqs.append(placement.seqs[index])
                if placement.new[index] and not claimed[index]:
                    claimed[index] = True
                    recorded += 1
            position += len(group)
            results.append(AppendResult(tuple(seqs), recorded))
        return results
