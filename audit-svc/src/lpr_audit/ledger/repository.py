"""SQL for the chains: records by range, checkpoints, verification of what is stored."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lpr_audit.chain import (
    ChainBreak,
    ChainHead,
    Checkpoint,
    CheckpointProblem,
    SealedRecord,
    VerificationReport,
    sign_checkpoint,
    verify_chain,
)
from lpr_audit.ledger.chains import ChainSpec

Executor = AsyncConnection | AsyncSession


def _fields(value: Any) -> dict[str, Any]:
    # asyncpg hands jsonb back as text unless a codec is set; accept both.
    loaded = json.loads(value) if isinstance(value, str | bytes) else value
    if not isinstance(loaded, dict):
        raise ValueError("stored fields are not a JSON object")
    return loaded


async def head(executor: Executor, spec: ChainSpec) -> ChainHead | None:
    """Return the stored tail of the chain, or None when it is empty."""
    row = (
        await executor.execute(
            text(f"SELECT seq, hash FROM {spec.qualified_table} ORDER BY seq DESC LIMIT 1")
        )
    ).first()
    return None if row is None else ChainHead(int(row[0]), str(row[1]))


async def record_at(executor: Executor, spec: ChainSpec, seq: int) -> SealedRecord | None:
    """Return the stored record with ``seq`` (the first one, if tampering doubled it)."""
    records = await records_between(executor, spec, seq, seq)
    return records[0] if records else None


async def records_between(
    executor: Executor, spec: ChainSpec, first: int, last: int
) -> list[SealedRecord]:
    """Return the stored records with ``first <= seq <= last`` in seq order."""
    result = await executor.execute(
        text(
            f"SELECT seq, prev_hash, hash, fields FROM {spec.qualified_table} "
            "WHERE seq BETWEEN :first AND :last ORDER BY seq"
        ),
        {"first": first, "last": last},
    )
    return [
        SealedRecord(seq=int(row[0]), prev_hash=row[1], hash=row[2], fields=_fields(row[3]))
        for row in result
    ]


async def seq_bounds(executor: Executor, spec: ChainSpec) -> tuple[int, int] | None:
    """Return the smallest and largest stored seq, or None when the chain is empty."""
    row = (
        await executor.execute(text(f"SELECT min(seq), max(seq) FROM {spec.qualified_table}"))
    ).first()
    if row is None or row[0] is None:
        return None
    return int(row[0]), int(row[1])


async def seq_range_for_time(
    executor: Executor, spec: ChainSpec, start: datetime | None, end: datetime | None
) -> tuple[int, int] | None:
    """Return the seq range of records received (``recorded_at``) in ``[start, end)``."""
    result = await executor.execute(
        text(
            f"SELECT min(seq), max(seq) FROM {spec.qualified_table} "
            "WHERE (CAST(:start AS timestamptz) IS NULL OR recorded_at >= :start) "
            "AND (CAST(:end AS timestamptz) IS NULL OR recorded_at < :end)"
        ),
        {"start": start, "end": end},
    )
    row = result.first()
    if row is None or row[0] is None:
        return None
    return int(row[0]), int(row[1])


async def checkpoints_between(
    executor: Executor, spec: ChainSpec, first: int, last: int | None
) -> list[Checkpoint]:
    """Return the stored checkpoints of the chain with ``first <= seq <= last``."""
    result = await executor.execute(
        text(
            "SELECT seq, hash, created_at, signature, key_id FROM audit.checkpoints "
            "WHERE chain = :chain AND seq >= :first "
            "AND (CAST(:last AS bigint) IS NULL OR seq <= :last) ORDER BY seq, created_at"
        ),
        {"chain": spec.name, "first": first, "last": last},
    )
    return [
        Checkpoint(
            seq=int(row[0]),
            hash=row[1],
            created_at=row[2].astimezone(UTC),
            signature=row[3],
            key_id=row[4],
        )
        for row in result
    ]


async def latest_checkpoint(executor: Executor, spec: ChainSpec) -> Checkpoint | None:
    """Return the checkpoint with the highest seq, if any."""
    result = await executor.execute(
        text(
            "SELECT seq, hash, created_at, signature, key_id FROM audit.checkpoints "
            "WHERE chain = :chain ORDER BY seq DESC, created_at DESC LIMIT 1"
        ),
        {"chain": spec.name},
    )
    row = result.first()
    if row is None:
        return None
    return Checkpoint(int(row[0]), row[1], row[2].astimezone(UTC), row[3], row[4])


async def insert_checkpoint(executor: Executor, spec: ChainSpec, checkpoint: Checkpoint) -> None:
    """Store a signed checkpoint."""
    await executor.execute(
        text(
            "INSERT INTO audit.checkpoints (chain, seq, hash, created_at, signature, key_id) "
            "VALUES (:chain, :seq, :hash, :created_at, :signature, :key_id)"
        ),
        {
            "chain": spec.name,
            "seq": checkpoint.seq,
            "hash": checkpoint.hash,
            "created_at": checkpoint.created_at,
            "signature": checkpoint.signature,
            "key_id": checkpoint.key_id,
        },
    )


async def sign_stored(
    executor: Executor, spec: ChainSpec, key: Ed25519PrivateKey, seq: int | None = None
) -> Checkpoint | None:
    """Sign and store a checkpoint at ``seq`` (default: the tail); None if there is no record."""
    if seq is None:
        target = await head(executor, spec)
    else:
        record = await record_at(executor, spec, seq)
        target = None if record is None else ChainHead(record.seq, record.hash)
    if target is None:
        return None
    checkpoint = sign_checkpoint(key, target)
    await insert_checkpoint(executor, spec, checkpoint)
    return checkpoint


@dataclass(frozen=True, slots=True)
class StoredVerification:
    """A verification of stored records, with the chain it was run on."""

    chain: str
    report: VerificationReport


async def verify_stored(
    executor: Executor,
    spec: ChainSpec,
    public_keys: Sequence[Ed25519PublicKey],
    *,
    first: int | None = None,
    last: int | None = None,
    segment: int = 50_000,
) -> StoredVerification:
    """Verify the stored chain (or ``first..last``) and its checkpoints, segment by segment.

    Each segment is verified anchored on the previous one's last hash, so memory stays
    bounded while the whole chain is still checked link by link. Without ``last`` the
    range runs to the stored tail or to the highest signed checkpoint, whichever is
    further, so records deleted from the end are caught too.
    """
    bounds = await seq_bounds(executor, spec)
    latest = await latest_checkpoint(executor, spec)
    start = first if first is not None else 1
    if last is not None:
        end = last
    else:
        known = [bounds[1]] if bounds else []
        if latest is not None:
            known.append(latest.seq)
        end = max(known, default=0)
    if end < start:
        empty = verify_chain([], [], public_keys, None)
        return StoredVerification(spec.name, empty)

    anchor: ChainHead | None = None
    if start > 1:
        before = await record_at(executor, spec, start - 1)
        anchor = None if before is None else ChainHead(before.seq, before.hash)

    reports: list[VerificationReport] = []
    low = start
    while low <= end:
        high = min(low + segment - 1, end)
        records = await records_between(executor, spec, low, high)
        checkpoints = await checkpoints_between(executor, spec, max(low - 1, 1), high)
        report = verify_chain(records, checkpoints, public_keys, (low, high), anchor=anchor)
        reports.append(report)
        if report.first_break is not None:
            break
        anchor = report.head if report.head is not None else anchor
        low = high + 1
    return StoredVerification(spec.name, _merge(reports))


def _merge(reports: list[VerificationReport]) -> VerificationReport:
    if len(reports) == 1:
        return reports[0]
    first_break: ChainBreak | None = next(
        (r.first_break for r in reports if r.first_break is not None), None
    )
    problems: list[CheckpointProblem] = []
    seen: set[tuple[int, str, str]] = set()
    for report in reports:
        for problem in report.checkpoint_problems:
            marker = (problem.seq, problem.kind.value, problem.key_id)
            if marker not in seen:
                seen.add(marker)
                problems.append(problem)
    attested = [r.attested_through for r in reports if r.attested_through is not None]
    with_records = [r for r in reports if r.last_seq is not None]
    return VerificationReport(
        ok=first_break is None and not problems,
        checked=sum(r.checked for r in reports),
        first_seq=with_records[0].first_seq if with_records else None,
        last_seq=with_records[-1].last_seq if with_records else None,
        head=with_records[-1].head if with_records else None,
        first_break=first_break,
        checkpoint_problems=tuple(problems),
        checkpoints_verified=sum(r.checkpoints_verified for r in reports),
        attested_through=max(attested) if attested else None,
        key_ids=tuple(sorted({k for r in reports for k in r.key_ids})),
    )


def now() -> datetime:
    """The current time in UTC (one place, so tests and code agree on aware datetimes)."""
    return datetime.now(UTC)
