"""Audit chain benchmark: appends through the real batched chain writer vs a plain INSERT.

Both paths take the same pre-built :class:`AuditEvent` objects, arriving as ``--requests``
concurrent requests of ``--request-size`` events each (the shape of the gateway's traffic),
and insert them into tables with the same columns and indexes, in the same database:

- **chain**: each request is encoded (canonical JSON) and handed to the one
  :class:`lpr_audit.ledger.writer.ChainWriter`, which batches what is queued into one
  transaction: advisory lock, tail read, hash linking, COPY, commit. A request counts as
  done when its events are committed.
- **plain insert**: each request serialises its events (``json.dumps``) and inserts them
  in its own transaction (COPY into a twin table with no chain, no trigger), commit.
- **bulk copy** (reference only): the same rows in batches of ``--max-batch`` in one
  sequence of transactions, the fastest a single writer could go with no hashing at all.

With ``--resend-every N`` every N-th request of the chain path is sent again once it
was answered (a sender that lost the answer): the resend is stored no second time, and
the chain's rate counts only the events stored, so it shows what resends cost.

Commits are durable (fsync on). Without ``DATABASE_URL`` the benchmark starts its own
embedded PostgreSQL in a temporary directory. The last line printed is one JSON object.
Run: ``uv run python bench/audit.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lpr_audit.chain import TamperKind
from lpr_audit.ledger import repository
from lpr_audit.ledger.chains import ACCESS, encode_event
from lpr_audit.ledger.roles import use_writer_role
from lpr_audit.ledger.writer import ChainWriter
from lpr_audit.settings import SCHEMA, WRITER_ROLE
from lpr_common.audit_client import AuditEvent
from lpr_common.db import build_engine
from lpr_common.migrations import upgrade
from lprctl.postgres import EmbeddedPostgres, free_port

PLAIN_TABLE = "bench_plain_events"


def make_events(count: int) -> list[AuditEvent]:
    """Gateway-like decisions: a user, a purpose, a plate, a query, a result count."""
    purposes = ("stolen_vehicle", "amber_alert", "wanted_person", "investigation")
    return [
        AuditEvent(
            component="gateway",
            event_type="access.decision",
            outcome="denied" if i % 17 == 0 else "allowed",
            subject_kind="user",
            subject_id=f"officer-{i % 250}",
            subject_name=f"Officer {i % 250}",
            agency="CA0010000",
            roles=["officer"],
            purpose=purposes[i % len(purposes)],
            case_number=f"24-{i % 5000:05d}" if i % 3 else None,
            resource="reads",
            action="search",
            method="POST",
            path="/v1/reads/search",
            query={"plate": f"{i % 10}ABC{i % 1000:03d}", "radius_km": 2.5},
            plate=f"{i % 10}ABC{i % 1000:03d}",
            result_count=i % 40,
            rule="C.8:officer-historical-search",
            request_id=str(uuid.uuid4()),
            client_address="10.0.0.1",
        )
        for i in range(count)
    ]


def chunks(events: Sequence[AuditEvent], size: int) -> list[Sequence[AuditEvent]]:
    """Split into requests of ``size`` events."""
    return [events[i : i + size] for i in range(0, len(events), size)]


async def run_concurrently(
    work: Callable[[Sequence[AuditEvent]], Awaitable[None]],
    requests: list[Sequence[AuditEvent]],
    concurrency: int,
) -> float:
    """Run ``work`` over every request with at most ``concurrency`` in flight; return seconds."""
    queue: asyncio.Queue[Sequence[AuditEvent]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)

    async def worker() -> None:
        while not queue.empty():
            await work(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


def plain_row(event: AuditEvent) -> tuple[Any, ...]:
    """The row a plain INSERT stores: the same columns, no chain."""
    return (
        0,
        "",
        "",
        json.dumps(event.model_dump(mode="json")),
        event.occurred_at,
        event.occurred_at,
        event.event_type,
        event.outcome,
        event.subject_id,
        event.agency,
        event.purpose,
        event.case_number,
        event.plate,
        event.resource,
        event.action,
    )


async def copy_plain(engine: AsyncEngine, rows: list[tuple[Any, ...]], first_id: int) -> None:
    """Insert rows into the twin table in one transaction."""
    numbered = [(first_id + i, *row[1:]) for i, row in enumerate(rows)]
    async with engine.connect() as connection, connection.begin():
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table(
            PLAIN_TABLE,
            schema_name="bench",
            columns=["seq", "prev_hash", "hash", "fields", *ACCESS.columns],
            records=numbered,
        )


async def bench(database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run both paths and return the figures."""
    admin = build_engine(database_url, pool_size=2)
    async with admin.begin() as connection:
        await connection.execute(text("CREATE SCHEMA IF NOT EXISTS bench"))
        await connection.execute(text(f"DROP TABLE IF EXISTS bench.{PLAIN_TABLE}"))
        await connection.execute(
            text(
                f"CREATE TABLE bench.{PLAIN_TABLE} "
                "(LIKE audit.access_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                "INCLUDING INDEXES)"
            )
        )
    events = make_events(args.events)
    requests = chunks(events, args.request_size)

    writer_engine = build_engine(database_url, pool_size=4)
    use_writer_role(writer_engine, WRITER_ROLE)
    writer = ChainWriter(writer_engine, ACCESS, max_batch=args.max_batch)
    writer.start()
    async with writer_engine.connect() as connection:
        head_before = await repository.head(connection, ACCESS)

    resend_every = args.resend_every
    resends = 0

    async def chain_request(request: Sequence[AuditEvent]) -> None:
        nonlocal resends
        now = repository.now()
        await writer.append([encode_event(event, now) for event in request])
        if resend_every and hash(request[0].event_id) % resend_every == 0:
            resends += 1
            again = await writer.append([encode_event(event, now) for event in request])
            assert again.recorded == 0, "a resend was stored again"

    chain_s = await run_concurrently(chain_request, requests, args.requests)
    await writer.stop()

    plain_engine = build_engine(database_url, pool_size=args.pool_size)
    counter = iter(range(1, 1 << 62, args.request_size))

    async def plain_request(request: Sequence[AuditEvent]) -> None:
        await copy_plain(plain_engine, [plain_row(event) for event in request], next(counter))

    plain_s = await run_concurrently(plain_request, requests, args.requests)

    async with admin.begin() as connection:
        await connection.execute(text(f"TRUNCATE bench.{PLAIN_TABLE}"))
    bulk_started = time.perf_counter()
    for start in range(0, len(events), args.max_batch):
        batch = events[start : start + args.max_batch]
        await copy_plain(plain_engine, [plain_row(event) for event in batch], start + 1)
    bulk_s = time.perf_counter() - bulk_started

    # The appended range must verify: a fast chain that forks is worth nothing.
    async with writer_engine.connect() as connection:
        verified = await repository.verify_stored(
            connection, ACCESS, [], first=head_before.seq + 1 if head_before else 1
        )
    report = verified.report
    chain_ok = report.first_break is None and report.checked == args.events
    broken = report.first_break.kind if report.first_break else None

    async with admin.begin() as connection:
        await connection.execute(text(f"DROP TABLE bench.{PLAIN_TABLE}"))
    for engine in (writer_engine, plain_engine, admin):
        await engine.dispose()

    chain_rate = args.events / chain_s
    plain_rate = args.events / plain_s
    return {
        "events": args.events,
        "request_size": args.request_size,
        "concurrent_requests": args.requests,
        "resent_requests": resends,
        "chain_events_per_s": round(chain_rate),
        "plain_insert_per_s": round(plain_rate),
        "ratio_to_plain_insert": round(chain_rate / plain_rate, 3),
        "bulk_copy_per_s": round(args.events / bulk_s),
        "ratio_to_bulk_copy": round(chain_rate / (args.events / bulk_s), 3),
        "chain_verified": chain_ok,
        "chain_break": None if broken is None else TamperKind(broken).value,
        "target_met": chain_ok and chain_rate >= 5000 and chain_rate >= 0.5 * plain_rate,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, start a database if needed, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--request-size", type=int, default=20, help="events per request")
    parser.add_argument("--requests", type=int, default=64, help="concurrent requests")
    parser.add_argument("--max-batch", type=int, default=5000, help="chain writer batch size")
    parser.add_argument("--pool-size", type=int, default=16, help="plain insert connections")
    parser.add_argument(
        "--resend-every", type=int, default=0, help="resend every N-th chain request (0: none)"
    )
    args = parser.parse_args(argv)

    external = os.environ.get("DATABASE_URL")
    server: EmbeddedPostgres | None = None
    directory: Path | None = None
    if external:
        url = external
    else:
        directory = Path(tempfile.mkdtemp(prefix="lpr-bench-audit-"))
        server = EmbeddedPostgres(directory, free_port(), database="lpr_bench")
        server.start()
        url = server.url
    try:
        upgrade("lpr_audit", SCHEMA, url)
        result = asyncio.run(bench(url, args))
    finally:
        if server is not None:
            server.stop()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
    print(
        f"chain: {result['chain_events_per_s']} events/s; plain INSERT: "
        f"{result['plain_insert_per_s']} events/s (ratio {result['ratio_to_plain_insert']}); "
        f"bulk COPY reference: {result['bulk_copy_per_s']} events/s; "
        f"chain verified: {result['chain_verified']}",
        file=sys.stderr,
    )
    print(json.dumps(result))
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
