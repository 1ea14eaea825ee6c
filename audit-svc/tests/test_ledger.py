"""The stored chain: appends, no forks under concurrency, append-only, tamper detection."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from lpr_audit.chain import TamperKind, canonical_json, record_hash
from lpr_audit.ledger import repository
from lpr_audit.ledger.chains import ACCESS, encode_event
from lpr_audit.ledger.roles import use_writer_role
from lpr_audit.ledger.writer import AppendResult, ChainWriter
from lpr_audit.settings import WRITER_ROLE
from lpr_common.audit_client import AuditEvent
from lpr_common.db import build_engine


def make_event(**overrides: object) -> AuditEvent:
    values: dict[str, object] = {
        "component": "gateway",
        "event_type": "access.decision",
        "outcome": "allowed",
        "subject_kind": "user",
        "subject_id": f"officer-{uuid.uuid4().hex[:8]}",
        "agency": "CA0010000",
        "purpose": "stolen_vehicle",
        "resource": "reads",
        "action": "search",
        "plate": "7ABC123",
    }
    values.update(overrides)
    return AuditEvent.model_validate(values)


@pytest.fixture
async def writer_engine(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine whose connections act as the service's writer role."""
    built = build_engine(migrated_database_url, pool_size=4)
    use_writer_role(built, WRITER_ROLE)
    try:
        yield built
    finally:
        await built.dispose()


@contextlib.asynccontextmanager
async def running(chain_writer: ChainWriter) -> AsyncIterator[ChainWriter]:
    """``chain_writer`` started, and stopped afterwards."""
    chain_writer.start()
    try:
        yield chain_writer
    finally:
        await chain_writer.stop()


@pytest.fixture
async def writer(writer_engine: AsyncEngine) -> AsyncIterator[ChainWriter]:
    """The access chain's writer, running."""
    async with running(ChainWriter(writer_engine, ACCESS, max_batch=500)) as chain_writer:
        yield chain_writer


Append = Callable[[int], Awaitable[AppendResult]]


async def request(chain_writer: ChainWriter, size: int) -> AppendResult:
    """One request of ``size`` fresh events to ``chain_writer``."""
    now = repository.now()
    return await chain_writer.append([encode_event(make_event(), now) for _ in range(size)])


@pytest.fixture
def append(writer: ChainWriter) -> Append:
    """Append ``n`` fresh events and return where they landed."""
    return functools.partial(request, writer)


@pytest.fixture
async def other_writer(migrated_database_url: str) -> AsyncIterator[ChainWriter]:
    """A second replica's writer: its own engine, racing for the same tail."""
    other_engine = build_engine(migrated_database_url, pool_size=2)
    use_writer_role(other_engine, WRITER_ROLE)
    try:
        async with running(ChainWriter(other_engine, ACCESS, max_batch=7)) as other:
            yield other
    finally:
        await other_engine.dispose()


async def test_append_links_records_after_the_tail(
    append: Append, session: AsyncSession, checkpoint_key: Ed25519PrivateKey
) -> None:
    first = await append(3)
    second = await append(2)
    assert (first.count, second.count) == (3, 2)
    assert second.first_seq == first.last_seq + 1
    records = await repository.records_between(session, ACCESS, first.first_seq, second.last_seq)
    assert [r.seq for r in records] == list(range(first.first_seq, second.last_seq + 1))
    for previous, record in itertools.pairwise(records):
        assert record.prev_hash == previous.hash
        assert record.hash == record_hash(record.seq, record.prev_hash, record.fields)
    verified = await repository.verify_stored(
        session,
        ACCESS,
        [checkpoint_key.public_key()],
        first=first.first_seq,
        last=second.last_seq,
    )
    assert verified.report.ok, verified.report.to_json()
    assert verified.report.checked == 5


async def test_stored_fields_are_exactly_what_was_hashed(
    writer: ChainWriter, session: AsyncSession
) -> None:
    event = make_event(query={"plate": "7ABC123", "radius_km": 1.5, "n": 3}, roles=["officer"])
    pending = encode_event(event, repository.now())
    landed = await writer.append([pending])
    stored = await repository.record_at(session, ACCESS, landed.first_seq)
    assert stored is not None
    assert canonical_json(stored.fields) == pending.canonical
    assert stored.fields["subject_id"] == event.subject_id


async def test_concurrent_appends_from_two_replicas_do_not_fork(
    writer: ChainWriter,
    other_writer: ChainWriter,
    session: AsyncSession,
    checkpoint_key: Ed25519PrivateKey,
) -> None:
    results = await asyncio.gather(
        *(request(writer if i % 2 else other_writer, 1 + i % 5) for i in range(60))
    )

    landed = sorted(seq for r in results for seq in range(r.first_seq, r.last_seq + 1))
    assert len(landed) == len(set(landed)) == sum(1 + i % 5 for i in range(60))
    low, high = min(landed), max(landed)
    rows = (
        await session.execute(
            text("SELECT seq, prev_hash FROM audit.access_events WHERE seq BETWEEN :a AND :b"),
            {"a": low, "b": high},
        )
    ).all()
    prev_hashes = [row[1] for row in rows]
    assert len(prev_hashes) == len(set(prev_hashes)), "two records link to the same parent"
    verified = await repository.verify_stored(
        session, ACCESS, [checkpoint_key.public_key()], first=low, last=high
    )
    assert verified.report.ok, verified.report.to_json()


async def test_a_writer_whose_tail_is_stale_links_after_the_other_replica(
    writer: ChainWriter,
    other_writer: ChainWriter,
    session: AsyncSession,
    checkpoint_key: Ed25519PrivateKey,
) -> None:
    # Each writer keeps the tail it committed and appends after it in one statement.
    # Here the other replica appends in between: the first writer's next batch must not
    # take the seq the other one used, nor link to the tail it remembered.
    first = await request(writer, 2)
    second = await request(writer, 1)  # the one-statement path: its tail is known
    between = await request(other_writer, 3)
    after = await request(writer, 2)  # stale tail: refused whole, then relinked

    assert second.first_seq == first.last_seq + 1
    assert between.first_seq == second.last_seq + 1
    assert after.first_seq == between.last_seq + 1
    rows = (
        await session.execute(
            text(
                "SELECT seq, prev_hash, hash FROM audit.access_events "
                "WHERE seq BETWEEN :a AND :b ORDER BY seq"
            ),
            {"a": first.first_seq, "b": after.last_seq},
        )
    ).all()
    assert [row[0] for row in rows] == list(range(first.first_seq, after.last_seq + 1))
    assert all(rows[i + 1][1] == rows[i][2] for i in range(len(rows) - 1))
    verified = await repository.verify_stored(
        session, ACCESS, [checkpoint_key.public_key()], first=first.first_seq, last=after.last_seq
    )
    assert verified.report.ok, verified.report.to_json()


class _RivalAfterTail:
    """A writer's asyncpg connection that starts ``rival`` right after reading the tail."""

    def __init__(self, driver: Any, rival: Callable[[], Awaitable[None]]) -> None:
        self._driver = driver
        self._rival: Callable[[], Awaitable[None]] | None = rival

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        row = await self._driver.fetchrow(query, *args)
        if self._rival is not None and "ORDER BY seq DESC" in query:
            rival, self._rival = self._rival, None
            await rival()
        return row


async def test_a_locked_append_survives_the_other_replicas_one_statement_append(
    writer: ChainWriter,
    other_writer: ChainWriter,
    session: AsyncSession,
    checkpoint_key: Ed25519PrivateKey,
) -> None:
    # The other replica starts on the locked path (it does not know the tail) while the
    # first writer, which does, appends in one statement right after the locked path has
    # read the tail. That statement must wait for the chain's lock, not take tail + 1
    # from under the locked path: its COPY would fail and a request alone in its batch
    # would be answered 503.
    first = await request(writer, 1)
    rival: asyncio.Task[AppendResult] | None = None
    lock_key = ACCESS.lock_key

    async def append_between() -> None:
        nonlocal rival
        rival = asyncio.create_task(request(writer, 1))
        # Until it has landed (the locked path is broken) or it waits for the chain's lock.
        for _ in range(200):
            if rival.done():
                return
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid::bigint = :high AND objid::bigint = :low"
                ),
                {"high": lock_key >> 32, "low": lock_key & 0xFFFFFFFF},
            )
            if waiting:
                return
            await asyncio.sleep(0.05)
        pytest.fail("the one-statement append neither landed nor waited for the chain's lock")

    real_driver = other_writer._driver

    async def driver() -> Any:
        return _RivalAfterTail(await real_driver(), append_between)

    other_writer._driver = driver  # type: ignore[method-assign]
    landed = await request(other_writer, 1)
    assert rival is not None
    between = await rival

    assert landed.first_seq == first.last_seq + 1
    assert between.first_seq == landed.last_seq + 1
    verified = await repository.verify_stored(
        session, ACCESS, [checkpoint_key.public_key()], first=first.first_seq, last=between.last_seq
    )
    assert verified.report.ok, verified.report.to_json()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit.access_events SET outcome = 'denied' WHERE seq = :seq",
        "DELETE FROM audit.access_events WHERE seq = :seq",
        "TRUNCATE audit.access_events",
        "UPDATE audit.checkpoints SET hash = 'x' WHERE seq = :seq",
    ],
    ids=["update", "delete", "truncate", "update-checkpoint"],
)
async def test_the_service_role_cannot_change_or_remove_records(
    append: Append, writer_engine: AsyncEngine, statement: str
) -> None:
    landed = await append(1)
    async with writer_engine.connect() as connection:
        role = (await connection.execute(text("SELECT current_user"))).scalar_one()
        assert role == WRITER_ROLE
        with pytest.raises(DBAPIError, match="permission denied"):
            await connection.execute(text(statement), {"seq": landed.first_seq})
        await connection.rollback()


async def test_the_trigger_refuses_changes_even_for_a_superuser(
    append: Append, session: AsyncSession
) -> None:
    landed = await append(1)
    with pytest.raises(DBAPIError, match="append-only"):
        async with session.begin_nested():
            await session.execute(
                text("UPDATE audit.access_events SET outcome = 'denied' WHERE seq = :seq"),
                {"seq": landed.first_seq},
            )
    with pytest.raises(DBAPIError, match="append-only"):
        async with session.begin_nested():
            await session.execute(
                text("DELETE FROM audit.access_events WHERE seq = :seq"),
                {"seq": landed.first_seq},
            )


TAMPERING = {
    "altered": [
        "UPDATE audit.access_events SET fields = jsonb_set(fields, '{outcome}', '\"denied\"') "
        "WHERE seq = :k"
    ],
    "deleted": ["DELETE FROM audit.access_events WHERE seq = :k"],
    "reordered": [
        "UPDATE audit.access_events SET seq = 900000000 + :k WHERE seq = :k",
        "UPDATE audit.access_events SET seq = :k WHERE seq = :k + 1",
        "UPDATE audit.access_events SET seq = :k + 1 WHERE seq = 900000000 + :k",
    ],
}
EXPECTED = {
    "altered": TamperKind.ALTERED,
    "deleted": TamperKind.DELETED,
    "reordered": TamperKind.REORDERED,
}


@pytest.mark.parametrize("tampering", sorted(TAMPERING))
@pytest.mark.parametrize("disable", ["replication-role", "disable-trigger"])
async def test_superuser_tampering_is_caught_with_its_kind_and_seq(
    append: Append,
    session: AsyncSession,
    checkpoint_key: Ed25519PrivateKey,
    tampering: str,
    disable: str,
) -> None:
    landed = await append(6)
    target = landed.first_seq + 2
    keys = [checkpoint_key.public_key()]
    before = await repository.verify_stored(
        session, ACCESS, keys, first=landed.first_seq, last=landed.last_seq
    )
    assert before.report.ok
    # The attacker is a superuser: switch the append-only trigger off, then rewrite.
    if disable == "replication-role":
        await session.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        await session.execute(text("ALTER TABLE audit.access_events DISABLE TRIGGER USER"))
    for statement in TAMPERING[tampering]:
        await session.execute(text(statement), {"k": target})
    after = await repository.verify_stored(
        session, ACCESS, keys, first=landed.first_seq, last=landed.last_seq
    )
    assert not after.report.ok
    assert after.report.first_break is not None
    assert after.report.first_break.kind == EXPECTED[tampering]
    assert after.report.first_break.seq == target


COPIED_COLUMN_TAMPERING = {
    "plate": "plate = NULL",
    "outcome": "outcome = 'denied'",
    "subject_id": "subject_id = 'someone-else'",
    "occurred_at": "occurred_at = occurred_at - interval '1 microsecond'",
}


@pytest.mark.parametrize("column", sorted(COPIED_COLUMN_TAMPERING))
async def test_a_changed_query_column_is_caught_naming_its_seq_and_column(
    append: Append, session: AsyncSession, checkpoint_key: Ed25519PrivateKey, column: str
) -> None:
    landed = await append(3)
    target = landed.first_seq + 1
    keys = [checkpoint_key.public_key()]
    before = await repository.verify_stored(
        session, ACCESS, keys, first=landed.first_seq, last=landed.last_seq
    )
    assert before.report.ok, before.report.to_json()
    # The copies are not hashed, yet auditors' queries and reports select by them.
    await session.execute(text("SET LOCAL session_replication_role = replica"))
    await session.execute(
        text(f"UPDATE audit.access_events SET {COPIED_COLUMN_TAMPERING[column]} WHERE seq = :k"),
        {"k": target},
    )
    after = await repository.verify_stored(
        session, ACCESS, keys, first=landed.first_seq, last=landed.last_seq
    )
    assert not after.report.ok
    assert after.report.first_break is not None
    assert after.report.first_break.kind == TamperKind.ALTERED
    assert after.report.first_break.seq == target
    assert f"the {column} column of record {target}" in after.report.first_break.detail


async def test_rewriting_the_rest_of_the_chain_is_caught_by_a_signed_checkpoint(
    append: Append,
    writer_engine: AsyncEngine,
    session: AsyncSession,
    checkpoint_key: Ed25519PrivateKey,
) -> None:
    landed = await append(5)
    async with writer_engine.connect() as connection, connection.begin():
        checkpoint = await repository.sign_stored(connection, ACCESS, checkpoint_key)
    assert checkpoint is not None
    assert checkpoint.seq == landed.last_seq
    target = landed.first_seq + 1
    await session.execute(text("SET LOCAL session_replication_role = replica"))
    # Alter one record and recompute every hash after it, so every link matches again.
    records = await repository.records_between(session, ACCESS, target - 1, landed.last_seq)
    prev_hash = records[0].hash
    for record in records[1:]:
        fields = dict(record.fields)
        if record.seq == target:
            fields["outcome"] = "denied"
        digest = record_hash(record.seq, prev_hash, fields)
        await session.execute(
            text(
                "UPDATE audit.access_events SET fields = CAST(:fields AS jsonb), "
                "prev_hash = :prev, hash = :hash WHERE seq = :seq"
            ),
            {
                "fields": canonical_json(fields).decode(),
                "prev": prev_hash,
                "hash": digest,
                "seq": record.seq,
            },
        )
        prev_hash = digest
    verified = await repository.verify_stored(
        session,
        ACCESS,
        [checkpoint_key.public_key()],
        first=landed.first_seq,
        last=landed.last_seq,
    )
    assert not verified.report.ok
    assert verified.report.first_break is not None
    assert verified.report.first_break.kind == TamperKind.ALTERED
    assert [p.kind.value for p in verified.report.checkpoint_problems] == ["mismatch"]


@pytest.mark.parametrize(
    ("reason", "refused"),
    [("nul\x00here", True), ("a literal \\u0000 is text", False), ("\\\x00", True)],
    ids=["nul", "literal-escape-text", "backslash-then-nul"],
)
def test_only_a_real_nul_character_is_refused(reason: str, refused: bool) -> None:
    event = make_event(reason=reason)
    if refused:
        with pytest.raises(ValueError, match="U\\+0000"):
            encode_event(event, repository.now())
    else:
        assert encode_event(event, repository.now()).canonical
