"""SQL for the chains: records by range, checkpoints, verification of what is stored."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
    TamperKind,
    VerificationReport,
    parse_timestamp,
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


async def claimed_end(executor: Executor, spec: ChainSpec) -> int | None:
    """Where the chain must reach: its stored tail or its highest checkpoint, if further.

    Records deleted from the end leave a checkpoint above the stored tail; this is the end
    that verification and exports must hold the chain to. None for an empty chain.
    """
    bounds = await seq_bounds(executor, spec)
    latest = await latest_checkpoint(executor, spec)
    known = [bounds[1]] if bounds else []
    if latest is not None:
        known.append(latest.seq)
    return max(known, default=None)


def _copy_matches(copied: Any, hashed: Any) -> bool:
    """Whether a copied query column holds the value of its field in the hashed ``fields``."""
    if isinstance(copied, datetime):
        try:
            return isinstance(hashed, str) and parse_timestamp(hashed) == copied
        except ValueError:
            return False
    return type(copied) is type(hashed) and bool(copied == hashed)


def _copy_break(
    spec: ChainSpec, seq: int, fields: dict[str, Any], copies: Sequence[Any]
) -> ChainBreak | None:
    for column, copied in zip(spec.columns, copies, strict=True):
        if not _copy_matches(copied, fields.get(column)):
            return ChainBreak(
                seq,
                TamperKind.ALTERED,
                f"the {column} column of record {seq} differs from its hashed fields: "
                f"queries and reports that select by {column} read a changed value",
            )
    return None


async def _records_checking_copies(
    executor: Executor, spec: ChainSpec, first: int, last: int
) -> tuple[list[SealedRecord], ChainBreak | None]:
    """The records of ``first..last`` and the first whose copied columns disagree with ``fields``.

    The copied columns are not hashed, yet auditors' queries and reports select by them;
    a copy that no longer matches the hashed fields is tampering like any other.
    """
    result = await executor.execute(
        text(
            f"SELECT seq, prev_hash, hash, fields, {', '.join(spec.columns)} "
            f"FROM {spec.qualified_table} WHERE seq BETWEEN :first AND :last ORDER BY seq"
        ),
        {"first": first, "last": last},
    )
    records: list[SealedRecord] = []
    first_break: ChainBreak | None = None
    for row in result:
        seq, fields = int(row[0]), _fields(row[3])
        records.append(SealedRecord(seq=seq, prev_hash=row[1], hash=row[2], fields=fields))
        if first_break is None:
            first_break = _copy_break(spec, seq, fields, tuple(row[4:]))
    return records, first_break


@dataclass(frozen=True, slots=True)
class VerifiedRange:
    """One range verified as stored: the report, and the records and checkpoints it checked."""

    report: VerificationReport
    records: list[SealedRecord]
    checkpoints: list[Checkpoint]


async def anchor_before(executor: Executor, spec: ChainSpec, first: int) -> ChainHead | None:
    """The stored record just before ``first`` as a head to link to; None at 1 or if missing."""
    if first <= 1:
        return None
    before = await record_at(executor, spec, first - 1)
    return None if before is None else ChainHead(before.seq, before.hash)


async def verify_range(
    executor: Executor,
    spec: ChainSpec,
    public_keys: Sequence[Ed25519PublicKey],
    first: int,
    last: int,
    *,
    anchor: ChainHead | None,
) -> VerifiedRange:
    """Verify the stored ``first..last`` (all must be present), its checkpoints and copies."""
    records, copy_break = await _records_checking_copies(executor, spec, first, last)
    checkpoints = await checkpoints_between(executor, spec, max(first - 1, 1), last)
    report = verify_chain(records, checkpoints, public_keys, (first, last), anchor=anchor)
    if copy_break is not None and (
        report.first_break is None or copy_break.seq < report.first_break.seq
    ):
        report = replace(report, ok=False, first_break=copy_break)
    return VerifiedRange(report, records, checkpoints)


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
    further, so records deleted from the end are caught too. The columns copied out of
    ``fields`` for queries are compared with ``fields``, so a changed copy is caught too.
    """
    start = first if first is not None else 1
    end = last if last is not None else (await claimed_end(executor, spec) or 0)
    if end < start:
        empty = verify_chain([], [], public_keys, None)
        return StoredVerification(spec.name, empty)

    anchor = await anchor_before(executor, spec, start)
    reports: list[VerificationReport] = []
    low = start
    while low <= end:
        high = min(low + segment - 1, end)
        report = (await verify_range(executor, spec, public_keys, low, high, anchor=anchor)).report
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
