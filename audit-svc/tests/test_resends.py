"""A record is stored once: resends of an event or a dissemination record are not appended again.

A sender whose answer was lost (a timeout, a reset connection) resends what audit-svc had
already committed; the resend must be answered as a success pointing at the stored record,
and the chain must go on linking after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

import lpr_audit.migrations
from lpr_audit.ledger import repository
from lpr_audit.ledger.chains import ACCESS, DISSEMINATION, ChainSpec, encode_event
from lpr_audit.ledger.roles import use_writer_role
from lpr_audit.ledger.writer import ONE_STATEMENT_MAX, ChainWriter, stored_statement
from lpr_audit.settings import WRITER_ROLE
from lpr_common.audit_client import AuditEvent
from lpr_common.db import build_engine

ServiceHeaders = Callable[[str, str], dict[str, str]]


def event(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "component": "gateway",
        "event_type": "access.result",
        "outcome": "success",
        "subject_kind": "user",
        "subject_id": f"officer-{uuid.uuid4().hex[:8]}",
        "agency": "CA0010000",
        "purpose": "stolen_vehicle",
        "resource": "reads",
        "action": "search",
        "result_count": 2,
    }
    values.update(overrides)
    return values


def dissemination(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "record_id": str(uuid.uuid4()),
        "occurred_at": datetime.now(UTC).isoformat(),
        "recipient_agency": "NV0020000",
        "mou_id": "mou-1",
        "purpose": "stolen_vehicle",
        "data_class": "reads",
        "record_ids": ["r1", "r2"],
        "record_count": 2,
        "released_by": "officer-9",
        "released_by_agency": "CA0010000",
    }
    values.update(overrides)
    return values


async def post(
    client: httpx.AsyncClient, service_headers: ServiceHeaders, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=service_headers("POST", path))
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def post_events(
    client: httpx.AsyncClient, service_headers: ServiceHeaders, events: list[dict[str, Any]]
) -> dict[str, Any]:
    return await post(client, service_headers, "/internal/v1/events", {"events": events})


async def stored_seqs(session: AsyncSession, spec: ChainSpec, record_id: str) -> list[int]:
    """The seqs of every stored record of ``spec`` with that id (by scan, not the index)."""
    field = "event_id" if spec is ACCESS else "record_id"
    rows = await session.execute(
        text(
            f"SELECT seq FROM {spec.qualified_table} "
            f"WHERE fields ->> '{field}' || '' = :id ORDER BY seq"
        ),
        {"id": record_id},
    )
    return [int(row[0]) for row in rows]


async def assert_verifies(
    session: AsyncSession, key: Ed25519PrivateKey, spec: ChainSpec, first: int, last: int
) -> None:
    verified = await repository.verify_stored(
        session, spec, [key.public_key()], first=first, last=last
    )
    assert verified.report.ok, verified.report.to_json()
    assert verified.report.checked == last - first + 1


async def test_an_event_sent_twice_is_recorded_once_and_the_resend_succeeds(
    client: httpx.AsyncClient,
    service_headers: ServiceHeaders,
    session: AsyncSession,
    checkpoint_key: Ed25519PrivateKey,
) -> None:
    sent = event()
    first = await post_events(client, service_headers, [sent])
    again = await post_events(client, service_headers, [sent])

    # Stored once (counted by a scan, so without the index too), and the resend succeeded.
    assert len(await stored_seqs(session, ACCESS, sent["event_id"])) == 1
    assert again["accepted"] == 1
    assert (first["recorded"], first["already_recorded"]) == (1, 0)
    assert (again["recorded"], again["already_recorded"]) == (0, 1)
    assert again["seqs"] == first["seqs"] == [first["first_seq"]]
    assert (again["first_seq"], again["last_seq"]) == (first["first_seq"], first["last_seq"])
    after = await post_events(client, service_headers, [event()])
    await assert_verifies(session, checkpoint_key, ACCESS, first["first_seq"], after["last_seq"])


async def test_an_event_twice_in_one_request_is_recorded_once(
    client: httpx.AsyncClient,
    service_headers: ServiceHeaders,
    session: AsyncSession,
    checkpoint_key: Ed25519PrivateKey,
) -> None:
    sent, other = event(), event()
    answer = await post_events(client, service_headers, [sent, other, sent])

    assert len(await stored_seqs(session, ACCESS, sent["event_id"])) == 1
    assert (answer["accepted"], answer["recorded"], answer["already_recorded"]) == (3, 2, 1)
    seq = answer["seqs"][0]
    assert answer["seqs"] == [seq, seq + 1, seq]
    assert await stored_seqs(session, ACCESS, sent["event_id"]) == [seq]
    assert await stored_seqs(session, ACCESS, other["event_id"]) == [seq + 1]
    await assert_verifies(session, checkpoint_key, ACCESS, seq, seq + 1)


async def test_a_resent_batch_with_new_events_appends_only_the_new_ones(
    client: httpx.AsyncClient,
    service_headers: ServiceHeaders,
    session: AsyncSession,
    checkpoint_key: Ed25519PrivateKey,
) -> None:
    # The outbox resends its batch with events queued since: the old ones are stored.
    old = [event(), event()]
    first = await post_events(client, service_headers, old)
    new = [event(), event()]
    again = await post_events(client, service_headers, [new[0], *old, new[1]])

    for sent in [*old, *new]:
        assert len(await stored_seqs(session, ACCESS, sent["event_id"])) == 1
    assert (again["accepted"], again["recorded"], again["already_recorded"]) == (4, 2, 2)
    assert again["seqs"][1:3] == first["seqs"]
    assert again["seqs"][0] == first["last_seq"] + 1
    assert again["seqs"][3] == again["seqs"][0] + 1
    await assert_verifies(session, checkpoint_key, ACCESS, first["first_seq"], again["last_seq"])


async def test_an_id_reused_for_other_content_keeps_the_stored_record_and_is_logged(
    client: httpx.AsyncClient,
    service_headers: ServiceHeaders,
    session: AsyncSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Ids are made once per record, so this is a sender's fault: the first record stays,
    # the sender is not left resending forever, and the operators are told.
    sent = event()
    first = await post_events(client, service_headers, [sent])
    other = event()
    with caplog.at_level(logging.ERROR, logger="lpr_audit.ledger.writer"):
        again = await post_events(client, service_headers, [{**sent, "outcome": "failure"}])
        same_batch = await post_events(
            client, service_headers, [other, {**other, "outcome": "failure"}]
        )

    assert len(await stored_seqs(session, ACCESS, sent["event_id"])) == 1
    assert await stored_seqs(session, ACCESS, sent["event_id"]) == first["seqs"]
    assert (again["seqs"], again["already_recorded"]) == (first["seqs"], 1)
    stored = await repository.record_at(session, ACCESS, first["first_seq"])
    assert stored is not None
    assert stored.fields["outcome"] == "success"
    assert same_batch["seqs"][0] == same_batch["seqs"][1]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(
        sent["event_id"] in m and f"stored at seq {first['first_seq']}" in m for m in messages
    ), messages
    assert any(other["event_id"] in m and "same batch" in m for m in messages), messages


async def test_concurrent_resends_of_one_event_are_recorded_once(
    client: httpx.AsyncClient,
    service_headers: ServiceHeaders,
    session: AsyncSession,
    checkpoint_key: Ed25519PrivateKey,
) -> None:
    sent = event()
    others = [event() for _ in range(12)]
    # Interleaved with other events, so the resends fall into several batches.
    answers = await asyncio.gather(
        *(
            post_events(client, service_headers, [sent] if i % 2 else [others[i // 2]])
            for i in range(24)
        )
    )

    resends = [answer for i, answer in enumerate(answers) if i % 2]
    stored = await stored_seqs(session, ACCESS, sent["event_id"])
    assert len(stored) == 1
    assert all(answer["seqs"] == stored for answer in resends)
    assert sum(answer["recorded"] for answer in resends) == 1
    assert sum(answer["already_recorded"] for answer in resends) == 11
    low = min(answer["first_seq"] for answer in answers)
    high = max(answer["last_seq"] for answer in answers)
    assert high - low + 1 == 13
    await assert_verifies(session, checkpoint_key, ACCESS, low, high)


async def test_a_dissemination_record_sent_twice_is_recorded_once(
    client: httpx.AsyncClient,
    service_headers: ServiceHeaders,
    session: AsyncSession,
    checkpoint_key: Ed25519PrivateKey,
) -> None:
    path = "/internal/v1/disseminations"
    sent = dissemination()
    first = await post(client, service_headers, path, {"records": [sent]})
    again = await post(client, service_headers, path, {"records": [sent, sent]})
    after = await post(client, service_headers, path, {"records": [dissemination()]})

    assert len(await stored_seqs(session, DISSEMINATION, sent["record_id"])) == 1
    assert await stored_seqs(session, DISSEMINATION, sent["record_id"]) == first["seqs"]
    assert (again["accepted"], again["recorded"], again["already_recorded"]) == (2, 0, 2)
    assert again["seqs"] == first["seqs"] * 2
    assert after["first_seq"] == first["last_seq"] + 1
    await assert_verifies(
        session, checkpoint_key, DISSEMINATION, first["first_seq"], after["last_seq"]
    )


def make_event() -> AuditEvent:
    return AuditEvent.model_validate(event())


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
async def running(engine: AsyncEngine) -> AsyncIterator[ChainWriter]:
    chain_writer = ChainWriter(engine, ACCESS, max_batch=500)
    chain_writer.start()
    try:
        yield chain_writer
    finally:
        await chain_writer.stop()


async def test_a_resend_refused_on_the_one_statement_path_does_not_break_the_next_appends(
    writer_engine: AsyncEngine, session: AsyncSession, checkpoint_key: Ed25519PrivateKey
) -> None:
    sent = make_event()
    async with running(writer_engine) as writer:
        first = await writer.append([encode_event(sent, repository.now())])
        # The writer knows the tail now: the resend goes the one-statement way and is
        # refused by the unique index, then placed at its stored seq.
        assert writer._head is not None
        again = await writer.append([encode_event(sent, repository.now())])
        assert len(await stored_seqs(session, ACCESS, str(sent.event_id))) == 1
        assert (again.seqs, again.recorded) == (first.seqs, 0)
        # The tail is still known and still right: the next appends link after it.
        assert writer._head is not None
        assert writer._head.seq == first.last_seq
        fresh = [make_event() for _ in range(3)]
        next_one = await writer.append([encode_event(fresh[0], repository.now())])
        mixed = await writer.append(
            [encode_event(e, repository.now()) for e in (fresh[1], sent, fresh[2])]
        )
        big = await writer.append(
            [encode_event(make_event(), repository.now()) for _ in range(ONE_STATEMENT_MAX + 5)]
            + [encode_event(sent, repository.now())]
        )

    assert await stored_seqs(session, ACCESS, str(sent.event_id)) == [first.first_seq]
    assert next_one.seqs == (first.last_seq + 1,)
    assert mixed.seqs == (first.last_seq + 2, first.last_seq, first.last_seq + 3)
    assert mixed.recorded == 2
    assert big.seqs[-1] == first.last_seq
    assert big.seqs[0] == mixed.last_seq + 1
    assert big.recorded == ONE_STATEMENT_MAX + 5
    await assert_verifies(session, checkpoint_key, ACCESS, first.first_seq, big.seqs[-2])


async def test_a_resend_to_another_replica_is_recorded_once(
    writer_engine: AsyncEngine,
    migrated_database_url: str,
    session: AsyncSession,
    checkpoint_key: Ed25519PrivateKey,
) -> None:
    # The replica that gets the resend has never written: it takes the locked path, whose
    # COPY the unique index refuses; it then places the event where the first one stored it.
    sent = make_event()
    other_engine = build_engine(migrated_database_url, pool_size=2)
    use_writer_role(other_engine, WRITER_ROLE)
    try:
        async with running(writer_engine) as writer, running(other_engine) as other:
            first = await writer.append([encode_event(sent, repository.now())])
            again = await other.append(
                [encode_event(e, repository.now()) for e in (sent, make_event())]
            )
            after = await writer.append([encode_event(make_event(), repository.now())])
    finally:
        await other_engine.dispose()

    assert await stored_seqs(session, ACCESS, str(sent.event_id)) == [first.first_seq]
    assert again.seqs[0] == first.first_seq
    assert again.recorded == 1
    assert after.first_seq == again.seqs[1] + 1
    await assert_verifies(session, checkpoint_key, ACCESS, first.first_seq, after.last_seq)


async def test_the_same_events_sent_to_two_replicas_at_once_are_recorded_once(
    writer_engine: AsyncEngine,
    migrated_database_url: str,
    session: AsyncSession,
    checkpoint_key: Ed25519PrivateKey,
) -> None:
    sent = [make_event() for _ in range(10)]
    other_engine = build_engine(migrated_database_url, pool_size=2)
    use_writer_role(other_engine, WRITER_ROLE)
    try:
        async with running(writer_engine) as writer, running(other_engine) as other:
            answers = await asyncio.gather(
                *(
                    replica.append([encode_event(e, repository.now())])
                    for e in sent
                    for replica in (writer, other)
                )
            )
    finally:
        await other_engine.dispose()

    for e in sent:
        assert len(await stored_seqs(session, ACCESS, str(e.event_id))) == 1
    for i in range(0, len(answers), 2):
        assert answers[i].seqs == answers[i + 1].seqs
        assert answers[i].recorded + answers[i + 1].recorded == 1
    seqs = sorted(answer.first_seq for answer in answers[::2])
    assert seqs == list(range(seqs[0], seqs[0] + len(sent)))
    await assert_verifies(session, checkpoint_key, ACCESS, seqs[0], seqs[-1])


async def test_the_unique_index_refuses_a_second_copy_written_by_hand(
    writer_engine: AsyncEngine, session: AsyncSession
) -> None:
    # Whatever path a record takes, the database itself never stores an event id twice.
    async with running(writer_engine) as writer:
        landed = await writer.append([encode_event(make_event(), repository.now())])
    with pytest.raises(Exception, match="uq_access_events_event_id"):
        async with session.begin_nested():
            await session.execute(
                text(
                    "INSERT INTO audit.access_events "
                    "SELECT seq + 1000000000, prev_hash, hash, fields, occurred_at, recorded_at, "
                    "event_type, outcome, subject_id, agency, purpose, case_number, plate, "
                    "resource, action FROM audit.access_events WHERE seq = :seq"
                ),
                {"seq": landed.first_seq},
            )


def _migration() -> Any:
    """The migration module that adds the unique indexes (its helpers are tested here)."""
    versions = Path(lpr_audit.migrations.__file__).parent / "versions"
    (path,) = versions.glob("*_0003_record_ids_unique.py")
    spec = importlib.util.spec_from_file_location("audit_0003", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_copies_stored_before_the_index_stay_and_their_id_is_still_refused(
    session: AsyncSession,
) -> None:
    # A log that stored resends before the unique index existed: the migration may not
    # delete them, yet from then on no id may be stored again, the first copy included.
    table = f"legacy_{uuid.uuid4().hex[:12]}"
    await session.execute(
        text(
            f"CREATE TABLE audit.{table} "
            "(LIKE audit.access_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
    )
    ids = {name: str(uuid.uuid4()) for name in "abcd"}

    async def store(seq: int, name: str) -> None:
        await session.execute(
            text(
                f"INSERT INTO audit.{table} (seq, prev_hash, hash, fields, occurred_at, "
                "recorded_at, event_type, outcome) VALUES (:seq, 'p', :hash, "
                "CAST(:fields AS jsonb), now(), now(), 'access.result', 'success')"
            ),
            {"seq": seq, "hash": f"h{seq}", "fields": f'{{"event_id": "{ids[name]}"}}'},
        )

    for seq, name in enumerate("abacba", start=1):
        await store(seq, name)
    index = f"uq_{table}_event_id"
    migration = _migration()
    await session.run_sync(
        lambda sync: migration.create_unique_index(sync.connection(), table, "event_id", index)
    )

    rows = await session.execute(text(f"SELECT seq FROM audit.{table} ORDER BY seq"))
    assert [row[0] for row in rows] == [1, 2, 3, 4, 5, 6]
    for name in "abc":
        with pytest.raises(Exception, match=index):
            async with session.begin_nested():
                await store(7, name)
    await store(7, "d")

    spec = ChainSpec("legacy", table, ACCESS.columns, 1, "event_id", index)
    raw = await (await session.connection()).get_raw_connection()
    driver: Any = raw.driver_connection
    statement = await stored_statement(driver, spec)
    found = await driver.fetch(statement, list(ids.values()))
    assert sorted((row[2], row[0]) for row in found if row[2] is not None) == sorted(
        (ids[name], seq) for name, seq in (("a", 1), ("b", 2), ("c", 4), ("d", 7))
    )
    assert [(row[0], row[1]) for row in found if row[2] is None] == [(7, "h7")]
    # The look-up repeats the index's predicate, so it can use the index.
    await session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(r[0] for r in await driver.fetch(f"EXPLAIN {statement}", [ids["a"]]))
    assert f"Index Scan using {index}" in plan, plan
    for chain in (ACCESS, DISSEMINATION):
        statement = await stored_statement(driver, chain)
        plan = "\n".join(r[0] for r in await driver.fetch(f"EXPLAIN {statement}", [ids["a"]]))
        assert f"Index Scan using {chain.key_index}" in plan, plan
