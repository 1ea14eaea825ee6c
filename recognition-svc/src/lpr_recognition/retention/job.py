"""The purge job: drop expired days, keep preserved reads, delete images, send receipts.

One run, in one database transaction:

1. Read the periods in force from audit-svc (``GET /internal/v1/retention-settings``).
   If audit-svc does not answer, the run is skipped: nothing is purged under periods
   that audit-svc did not give.
2. Add to each active plate-and-time-range legal hold the reads that arrived since.
3. **Whole days.** Every ``reads_pYYYYMMDD`` partition entirely older than the shortest
   read period is either dropped (nothing in it is kept) or rebuilt: the kept reads and
   their plates are copied aside, the day's ``plates`` then ``reads`` partitions dropped,
   empty ones made again, and the kept rows put back. A read is kept while it is under an
   active legal hold, while it still waits for hot-list matching (a read is never lost
   before its hit is known), and while its own class's period has not run out (reads tied
   to a hit follow the ``hit_reads`` period). The day keeps its partition name, so ingest,
   search and ``GET /v1/reads/{id}`` see preserved reads where they always were.
4. **Within days.** Periods shorter than a day (down to minutes) are applied row by row
   (``DELETE ... RETURNING``) on the partitions that are not entirely expired.
5. **Images.** Images of reads that are not preserved are removed once the ``images``
   period has run out, even if the read's metadata stays (its ``blob_key`` is nulled).
   The idempotency keys (``read_keys``) of deleted reads are deleted with them.
6. **Tracks.** Deleted reads leave their multi-frame fusion tracks (no foreign key ties
   a track to a read partition); a track left without frames is deleted, one that keeps
   some is voted again over them.
7. One receipt per class is stored with the run (``retention_runs``, ``receipts_queued``)
   in the purge's own transaction: the receipts exist exactly when the deletions do. Only
   after the commit do they go to audit-svc (``POST /internal/v1/retention-receipts``), so
   the access log never holds a receipt of a purge that was rolled back. If audit-svc does
   not take them then, the run has still happened (it answers ``completed`` with
   ``receipts_queued``) and :meth:`RetentionJob.deliver_receipts`, run by the service's
   flusher, resends them until audit-svc has recorded them.
8. After the commit, blob files whose last read is gone are deleted. They are queued in
   ``retention_blob_deletions`` inside the transaction, so a crash leaves them queued for
   the next run; a blob shared with a remaining read (same image bytes) is kept, and so
   is one stored again since the run began (a camera's read of it may not have committed).
9. **Orphans.** After a completed run, image files no read refers to and not written for
   ``orphan_blob_grace_minutes`` are deleted: the image of a read that was refused or
   failed after its image was stored (the image is stored before the read commits, so
   an acknowledged read always has it). No receipt: no record ever held them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lpr_common.audit_client import refused_for_good
from lpr_recognition.blobs import BlobStore
from lpr_recognition.fusion.vote import Frame, fuse
from lpr_recognition.reads.partitions import partition_name
from lpr_recognition.retention.config import RetentionConfig
from lpr_recognition.settings import SCHEMA

_logger = logging.getLogger(__name__)

SETTINGS_PATH = "/internal/v1/retention-settings"
RECEIPTS_PATH = "/internal/v1/retention-receipts"

NON_HIT_READS = "non_hit_reads"
HIT_READS = "hit_reads"
PRESERVED_READS = "preserved_reads"
IMAGES = "images"
RECEIPT_CLASSES = (NON_HIT_READS, HIT_READS, PRESERVED_READS, IMAGES)

# audit-svc's documented defaults (audit-svc/README.md), used only for a class its answer
# lacks; a run never starts without an answer from audit-svc.
DEFAULT_MINUTES = {NON_HIT_READS: 30 * 1440, HIT_READS: 365 * 1440, IMAGES: 30 * 1440}

# Serialises purge runs across replicas (an arbitrary constant of this service); a legal
# hold being placed holds it shared, so no run purges its reads before it commits.
RETENTION_LOCK_KEY = 0x4C50_5202
_DAY_PARTITION = re.compile(r"^reads_p(\d{8})$")

_HELD = (
    "r.id IN (SELECT hr.read_id FROM recognition.legal_hold_reads hr "
    "JOIN recognition.legal_holds h ON h.id = hr.hold_id WHERE h.released_at IS NULL)"
)
_AWAITING_MATCH = (
    "(r.status = 'pending' OR r.id IN (SELECT o.read_id FROM recognition.outbox o "
    "WHERE o.kind = 'match' AND o.read_id IS NOT NULL))"
)
_KEPT = (
    f"({_HELD} OR {_AWAITING_MATCH} "
    "OR (r.preserved AND r.captured_at >= :hit_cutoff) "
    "OR (NOT r.preserved AND r.captured_at >= :non_hit_cutoff))"
)


class RetentionUnavailable(Exception):
    """audit-svc cannot give the periods or take the receipts: nothing is purged."""


class ReceiptsNotRecorded(RetentionUnavailable):
    """audit-svc did not take the receipts of a committed run: they stay queued."""


class ReceiptsRefused(ReceiptsNotRecorded):
    """audit-svc refused the receipts for good (4xx): resending them as they are won't help."""


class RunInProgress(Exception):
    """Another replica is purging now, or a legal hold is being placed."""


def deleted_ids_sha256(read_ids: Iterable[UUID | str]) -> str:
    """SHA-256 (hex) of the read ids, lowercase hyphenated, sorted, joined by newlines."""
    ids = sorted(str(i).lower() for i in read_ids)
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Periods:
    """The periods in force for one run, in minutes (``None``: kept until released)."""

    minutes: dict[str, int | None]

    def of(self, retention_class: str) -> timedelta:
        """The period of a class that has one."""
        value = self.minutes.get(retention_class)
        if value is None:
            raise ValueError(f"{retention_class} has no period")
        return timedelta(minutes=value)


async def fetch_periods(audit: httpx.AsyncClient, *, timeout_s: float) -> Periods:
    """The periods in force, from audit-svc.

    Raises:
        RetentionUnavailable: audit-svc did not answer with the settings.
    """
    try:
        response = await audit.get(SETTINGS_PATH, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise RetentionUnavailable(f"audit-svc unreachable: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise RetentionUnavailable(f"audit-svc answered HTTP {response.status_code}")
    try:
        settings = {
            s["retention_class"]: s.get("period_minutes") for s in response.json()["settings"]
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise RetentionUnavailable("audit-svc sent unreadable retention settings") from exc
    minutes: dict[str, int | None] = {PRESERVED_READS: settings.get(PRESERVED_READS)}
    for retention_class, default in DEFAULT_MINUTES.items():
        value = settings.get(retention_class)
        if not isinstance(value, int) or value < 1:
            _logger.warning(
                "retention: audit-svc gave no period for %s; using the default %d minutes",
                retention_class,
                default,
            )
            value = default
        minutes[retention_class] = value
    return Periods(minutes)


@dataclass
class _Purged:
    """What one run deleted and kept, per read."""

    deleted: dict[UUID, tuple[bool, datetime]] = field(default_factory=dict)
    blob_keys: set[str] = field(default_factory=set)
    image_ids: dict[UUID, datetime] = field(default_factory=dict)
    partitions_dropped: list[str] = field(default_factory=list)
    partitions_rebuilt: list[str] = field(default_factory=list)

    def add(self, read_id: UUID, preserved: bool, captured_at: datetime, blob: str | None) -> None:
        self.deleted[read_id] = (preserved, captured_at)
        if blob is not None:
            self.blob_keys.add(blob)
            self.image_ids[read_id] = captured_at


@dataclass(frozen=True)
class RunResult:
    """The outcome of one run."""

    run_id: UUID
    outcome: str
    detail: str | None
    receipts: list[dict[str, Any]]
    first_seq: int | None = None
    last_seq: int | None = None
    blobs_deleted: int = 0
    orphan_blobs_deleted: int = 0
    receipts_queued: bool = False
    """The purge committed; audit-svc has not recorded its receipts yet (they are resent)."""


ORPHAN_PAGE = 1000
"""Blob keys checked against the reads per query of the orphan sweep."""
ORPHAN_MARGIN = timedelta(minutes=5)
"""How far before the last sweep's cutoff the next sweep starts looking again."""


async def _blobs_in_use(connection: AsyncConnection, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` a stored read still refers to (``ix_reads_blob_key``)."""
    result = await connection.execute(
        text(f'SELECT DISTINCT blob_key FROM "{SCHEMA}".reads WHERE blob_key = ANY(:keys)'),
        {"keys": list(keys)},
    )
    return {row[0] for row in result}


async def _day_partitions(connection: AsyncConnection) -> list[date]:
    result = await connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "JOIN pg_namespace n ON n.oid = p.relnamespace "
            "WHERE n.nspname = :schema AND p.relname = 'reads'"
        ),
        {"schema": SCHEMA},
    )
    days = []
    for (name,) in result:
        match = _DAY_PARTITION.match(name)
        if match:
            days.append(datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC).date())
    return sorted(days)


async def _purge_day(
    connection: AsyncConnection, day: date, cutoffs: dict[str, Any], purged: _Purged
) -> None:
    reads, plates = partition_name("reads", day), partition_name("plates", day)
    rows = (
        await connection.execute(
            text(
                f"SELECT r.id, r.preserved, r.captured_at, r.blob_key, {_KEPT} AS kept "
                f'FROM "{SCHEMA}"."{reads}" r'
            ),
            cutoffs,
        )
    ).all()
    kept = [row.id for row in rows if row.kept]
    gone = [row for row in rows if not row.kept]
    if rows and not gone:
        return  # everything in the day is still kept: nothing to drop
    if kept:
        # Copy aside only what stays; the expired rows go with the dropped partition.
        await connection.execute(
            text(
                f'CREATE TEMP TABLE retention_kept_reads ON COMMIT DROP AS SELECT * FROM "{SCHEMA}"."{reads}" '
                "WHERE id = ANY(:ids)"
            ),
            {"ids": kept},
        )
        await connection.execute(
            text(
                f'CREATE TEMP TABLE retention_kept_plates ON COMMIT DROP AS SELECT * FROM "{SCHEMA}"."{plates}" '
                "WHERE read_id = ANY(:ids)"
            ),
            {"ids": kept},
        )
    # plates first: its rows reference the reads partition. A partition that a foreign
    # key refers to cannot be dropped while attached; detaching checks no plate is left.
    for table, partition in (("plates", plates), ("reads", reads)):
        await connection.execute(
            text(f'ALTER TABLE "{SCHEMA}"."{table}" DETACH PARTITION "{SCHEMA}"."{partition}"')
        )
        await connection.execute(text(f'DROP TABLE "{SCHEMA}"."{partition}"'))
    for row in gone:
        purged.add(row.id, row.preserved, row.captured_at, row.blob_key)
    if not kept:
        purged.partitions_dropped.append(reads)
        return
    start = datetime.combine(day, time(), tzinfo=UTC)
    end = start + timedelta(days=1)
    for table in ("reads", "plates"):
        await connection.execute(
            text(
                f'CREATE TABLE "{SCHEMA}"."{partition_name(table, day)}" '
                f'PARTITION OF "{SCHEMA}"."{table}" '
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
        )
    await connection.execute(
        text(f'INSERT INTO "{SCHEMA}".reads SELECT * FROM retention_kept_reads')
    )
    await connection.execute(
        text(f'INSERT INTO "{SCHEMA}".plates SELECT * FROM retention_kept_plates')
    )
    await connection.execute(text("DROP TABLE retention_kept_plates"))
    await connection.execute(text("DROP TABLE retention_kept_reads"))
    purged.partitions_rebuilt.append(reads)


async def _purge_rows(
    connection: AsyncConnection, cutoffs: dict[str, Any], purged: _Purged
) -> None:
    # Plates go with their read (ON DELETE CASCADE).
    result = await connection.execute(
        text(
            f'DELETE FROM "{SCHEMA}".reads r '
            "WHERE r.captured_at < GREATEST(CAST(:hit_cutoff AS timestamptz), "
            f"CAST(:non_hit_cutoff AS timestamptz)) AND NOT {_KEPT} "
            "RETURNING r.id, r.preserved, r.captured_at, r.blob_key"
        ),
        cutoffs,
    )
    for row in result:
        purged.add(row.id, row.preserved, row.captured_at, row.blob_key)


async def _purge_images(
    connection: AsyncConnection, cutoffs: dict[str, Any], purged: _Purged
) -> None:
    result = await connection.execute(
        text(
            "WITH expired AS ("
            f'  SELECT r.id, r.captured_at, r.blob_key FROM "{SCHEMA}".reads r '
            "  WHERE r.captured_at < :image_cutoff AND r.blob_key IS NOT NULL "
            f"  AND NOT r.preserved AND NOT {_HELD} AND NOT {_AWAITING_MATCH} FOR UPDATE) "
            f'UPDATE "{SCHEMA}".reads r SET blob_key = NULL FROM expired '
            "WHERE r.id = expired.id AND r.captured_at = expired.captured_at "
            "RETURNING r.id, r.captured_at, expired.blob_key"
        ),
        cutoffs,
    )
    for row in result:
        purged.blob_keys.add(row.blob_key)
        purged.image_ids[row.id] = row.captured_at


async def _forget_track_frames(
    connection: AsyncConnection, read_ids: list[UUID], now: datetime
) -> None:
    """Take purged reads off their tracks (multi-frame fusion).

    A track whose frames are all gone is deleted; one that keeps some frames (others are
    held or preserved) is voted again over what is left, so nothing purged lives on in it.
    """
    touched = [
        row[0]
        for row in await connection.execute(
            text(
                f'WITH gone AS (DELETE FROM "{SCHEMA}".track_members WHERE read_id = ANY(:ids) '
                "RETURNING track_id) SELECT DISTINCT track_id FROM gone"
            ),
            {"ids": read_ids},
        )
    ]
    if not touched:
        return
    await connection.execute(
        text(
            f'DELETE FROM "{SCHEMA}".tracks t WHERE t.id = ANY(:ids) AND NOT EXISTS '
            f'(SELECT 1 FROM "{SCHEMA}".track_members m WHERE m.track_id = t.id)'
        ),
        {"ids": touched},
    )
    members = (
        await connection.execute(
            text(
                "SELECT track_id, text, confidence, character_confidences, captured_at "
                f'FROM "{SCHEMA}".track_members WHERE track_id = ANY(:ids)'
            ),
            {"ids": touched},
        )
    ).all()
    by_track: dict[UUID, list[Any]] = {}
    for row in members:
        by_track.setdefault(row.track_id, []).append(row)
    for track_id, rows in by_track.items():
        fused = fuse([Frame.of(r.text, r.confidence, r.character_confidences) for r in rows])
        await connection.execute(
            text(
                f'UPDATE "{SCHEMA}".tracks SET fused_text = :text, fused_confidence = :confidence, '
                "character_confidences = :characters, member_count = :count, "
                "first_captured_at = :first, last_captured_at = :last, updated_at = :now "
                "WHERE id = :id"
            ),
            {
                "id": track_id,
                "text": fused.text,
                "confidence": fused.confidence,
                "characters": list(fused.confidences),
                "count": len(rows),
                "first": min(r.captured_at for r in rows),
                "last": max(r.captured_at for r in rows),
                "now": now,
            },
        )


async def _remaining(connection: AsyncConnection, cutoffs: dict[str, Any]) -> dict[str, Any]:
    """Reads past a period that stay, and why (the receipts' preserved counts)."""
    row = (
        await connection.execute(
            text(
                "SELECT "
                "count(*) FILTER (WHERE r.captured_at < :non_hit_cutoff) AS non_hit_range, "
                "count(*) FILTER (WHERE r.captured_at < :non_hit_cutoff AND r.preserved) AS hits, "
                f"count(*) FILTER (WHERE r.captured_at < :non_hit_cutoff AND {_HELD}) AS held, "
                "count(*) FILTER (WHERE r.captured_at < :non_hit_cutoff "
                f"  AND {_AWAITING_MATCH}) AS awaiting, "
                "count(*) FILTER (WHERE r.preserved AND r.captured_at < :hit_cutoff) AS hit_range, "
                "count(*) FILTER (WHERE r.captured_at < :image_cutoff AND r.blob_key IS NOT NULL) "
                "  AS images, "
                "min(r.captured_at) AS oldest "
                f'FROM "{SCHEMA}".reads r WHERE r.captured_at < GREATEST('
                "CAST(:hit_cutoff AS timestamptz), CAST(:non_hit_cutoff AS timestamptz), "
                "CAST(:image_cutoff AS timestamptz))"
            ),
            cutoffs,
        )
    ).one()
    holds = (
        await connection.execute(
            text(
                "SELECT count(DISTINCT h.id) AS active_holds, count(DISTINCT hr.read_id) AS held "
                f'FROM "{SCHEMA}".legal_holds h LEFT JOIN "{SCHEMA}".legal_hold_reads hr '
                "ON hr.hold_id = h.id WHERE h.released_at IS NULL"
            )
        )
    ).one()
    return {**row._asdict(), "active_holds": int(holds[0]), "all_held": int(holds[1])}


def _receipt(
    retention_class: str,
    *,
    ids: dict[UUID, datetime],
    cutoff: datetime,
    oldest: datetime | None,
    preserved: int,
    period: int | None,
    purged_at: datetime,
    details: dict[str, Any],
) -> dict[str, Any]:
    times = [t for t in (*ids.values(), oldest) if t is not None]
    start = min(times) if times else cutoff
    # Stored with the run and sent as is on every try: a resend carries the same id, which
    # is also in the chain (``details.extra.receipt_id``) so an auditor can tell one apart.
    receipt_id = str(uuid4())
    return {
        "receipt_id": receipt_id,
        "retention_class": retention_class,
        "range_start": min(start, cutoff).isoformat(),
        "range_end": cutoff.isoformat(),
        "deleted_count": len(ids),
        "preserved_count": preserved,
        "deleted_ids_sha256": deleted_ids_sha256(ids),
        "purged_at": purged_at.isoformat(),
        "period_minutes": period,
        "details": {**details, "receipt_id": receipt_id},
    }


class RetentionJob:
    """Runs purges for one process; replicas serialise on a database advisory lock."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        audit: httpx.AsyncClient | None,
        blobs: BlobStore,
        config: RetentionConfig,
    ) -> None:
        """Purge with this engine, send receipts with ``audit``, delete blobs from ``blobs``."""
        self.engine = engine
        self.audit = audit
        self.blobs = blobs
        self.config = config
        self._lock = asyncio.Lock()
        # Image files written before this were checked by an earlier orphan sweep of this
        # process (None: none yet, so the first sweep looks at every file).
        self._orphans_checked_until: datetime | None = None

    async def run(self, *, trigger: str, triggered_by: str | None = None) -> RunResult:
        """Run one purge now and record it; never raises for an expected refusal."""
        async with self._lock:
            run_id, started = uuid4(), datetime.now(UTC)
            try:
                result = await self._run(run_id, started, trigger, triggered_by)
            except (RetentionUnavailable, RunInProgress) as exc:
                _logger.warning("retention run skipped: %s", exc)
                result = RunResult(run_id, "skipped", str(exc), [])
                await self._record(run_id, started, trigger, triggered_by, result, None)
            except DBAPIError as exc:
                _logger.exception("retention run failed")
                result = RunResult(run_id, "failed", f"database: {type(exc.orig).__name__}", [])
                await self._record(run_id, started, trigger, triggered_by, result, None)
            result = await self._delete_queued_blobs(result, written_before=started)
            if result.outcome == "completed":
                result = await self._sweep_orphan_blobs(result)
            return result

    async def _record(
        self,
        run_id: UUID,
        started: datetime,
        trigger: str,
        triggered_by: str | None,
        result: RunResult,
        periods: Periods | None,
        connection: AsyncConnection | None = None,
    ) -> None:
        statement = text(
            f'INSERT INTO "{SCHEMA}".retention_runs (id, trigger, triggered_by, started_at, '
            "finished_at, outcome, detail, periods, receipts, first_seq, last_seq, "
            "receipts_queued) VALUES "
            "(:id, :trigger, :triggered_by, :started_at, :finished_at, :outcome, :detail, "
            "CAST(:periods AS jsonb), CAST(:receipts AS jsonb), :first_seq, :last_seq, "
            ":receipts_queued)"
        )
        values = {
            "id": run_id,
            "trigger": trigger,
            "triggered_by": triggered_by,
            "started_at": started,
            "finished_at": datetime.now(UTC),
            "outcome": result.outcome,
            "detail": result.detail,
            "periods": None if periods is None else json.dumps(periods.minutes),
            "receipts": json.dumps(result.receipts),
            "first_seq": result.first_seq,
            "last_seq": result.last_seq,
            "receipts_queued": result.receipts_queued,
        }
        if connection is not None:
            await connection.execute(statement, values)
            return
        async with self.engine.begin() as own:
            await own.execute(statement, values)

    async def _run(
        self, run_id: UUID, started: datetime, trigger: str, triggered_by: str | None
    ) -> RunResult:
        if self.audit is None:
            raise RetentionUnavailable("no audit-svc client: receipts cannot be recorded")
        periods = await fetch_periods(self.audit, timeout_s=self.config.audit_timeout_s)
        now = datetime.now(UTC)
        cutoffs = {
            "non_hit_cutoff": now - periods.of(NON_HIT_READS),
            "hit_cutoff": now - periods.of(HIT_READS),
            "image_cutoff": now - periods.of(IMAGES),
        }
        purged = _Purged()
        async with self.engine.connect() as connection, connection.begin():
            await connection.execute(
                text(f"SET LOCAL lock_timeout = '{int(self.config.lock_timeout_s * 1000)}ms'")
            )
            locked = (
                await connection.execute(
                    text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RETENTION_LOCK_KEY}
                )
            ).scalar_one()
            if not locked:
                raise RunInProgress(
                    "another retention run, or a legal hold being placed, holds the lock"
                )
            await self._extend_plate_holds(connection)
            expired_before = max(cutoffs["non_hit_cutoff"], cutoffs["hit_cutoff"])
            days = [
                d
                for d in await _day_partitions(connection)
                if datetime.combine(d + timedelta(days=1), time(), tzinfo=UTC) <= expired_before
            ]
            if days:
                # Ingest writes reads then plates: lock in the same order, so the two
                # never wait on each other in a cycle; nothing is written to a day while
                # its kept rows are copied aside.
                await connection.execute(
                    text(f'LOCK TABLE "{SCHEMA}".reads, "{SCHEMA}".plates IN ACCESS EXCLUSIVE MODE')
                )
            for day in days:
                await _purge_day(connection, day, cutoffs, purged)
            await _purge_rows(connection, cutoffs, purged)
            await _purge_images(connection, cutoffs, purged)
            if purged.deleted:
                # The camera's read id no longer names a read we keep.
                await connection.execute(
                    text(f'DELETE FROM "{SCHEMA}".read_keys WHERE read_id = ANY(:ids)'),
                    {"ids": list(purged.deleted)},
                )
                await _forget_track_frames(connection, list(purged.deleted), now)
            remaining = await _remaining(connection, cutoffs)
            if purged.blob_keys:
                await connection.execute(
                    text(
                        f'INSERT INTO "{SCHEMA}".retention_blob_deletions (blob_key) '
                        "SELECT unnest(CAST(:keys AS text[])) ON CONFLICT DO NOTHING"
                    ),
                    {"keys": sorted(purged.blob_keys)},
                )
            receipts = self._receipts(run_id, trigger, periods, cutoffs, purged, remaining, now)
            result = RunResult(
                run_id,
                "completed",
                f"{len(purged.deleted)} reads and {len(purged.image_ids)} images deleted",
                receipts,
                receipts_queued=True,
            )
            await self._stage(
                connection,
                result,
                started=started,
                trigger=trigger,
                triggered_by=triggered_by,
                periods=periods,
            )
        # Committed: the receipts are true now, and durable whatever happens next.
        result = await self._deliver_after_commit(result)
        _logger.info(
            "retention run %s: %d reads deleted, partitions dropped %s, rebuilt %s",
            run_id,
            len(purged.deleted),
            purged.partitions_dropped,
            purged.partitions_rebuilt,
        )
        return result

    async def _stage(
        self,
        connection: AsyncConnection,
        result: RunResult,
        *,
        started: datetime,
        trigger: str,
        triggered_by: str | None,
        periods: Periods,
    ) -> None:
        """Record the run and queue its receipts in the purge's own transaction."""
        await self._record(
            result.run_id, started, trigger, triggered_by, result, periods, connection
        )

    async def _deliver_after_commit(self, result: RunResult) -> RunResult:
        """Send the committed run's receipts (and any queued before); never raises.

        The purge has happened: whatever goes wrong now leaves the receipts queued for
        the flusher, and the run is still reported completed.
        """
        try:
            delivered = await self.deliver_receipts()
        except Exception:
            _logger.exception("retention run %s: receipts stay queued", result.run_id)
            delivered = {}
        if result.run_id in delivered:
            first_seq, last_seq = delivered[result.run_id]
            return dataclasses.replace(
                result, first_seq=first_seq, last_seq=last_seq, receipts_queued=False
            )
        _logger.warning(
            "retention run %s committed; its receipts are queued until audit-svc records them",
            result.run_id,
        )
        return dataclasses.replace(
            result,
            detail=f"{result.detail}; receipts queued: the audit log has not recorded them "
            "yet, they are resent until it has",
        )

    async def deliver_receipts(
        self, *, min_age: timedelta = timedelta(0)
    ) -> dict[UUID, tuple[int | None, int | None]]:
        """Send the queued receipts of committed runs, oldest run first, until one fails.

        Each run is taken ``FOR UPDATE SKIP LOCKED`` while its receipts are sent, so a
        run's own delivery, the flusher and other replicas never send a run twice at once;
        a run is unqueued, with the seqs audit-svc gave, only once audit-svc answered 201.

        Args:
            min_age: Leave runs finished more recently alone (their own run sends them).

        Returns:
            The runs delivered now, each with its receipts' first and last seq.
        """
        delivered: dict[UUID, tuple[int | None, int | None]] = {}
        if self.audit is None:
            return delivered
        # Runs audit-svc refused for good this time: they stay queued (and are tried again
        # next time), but must not hold back the runs after them.
        refused: list[UUID] = []
        while True:
            try:
                async with self.engine.connect() as connection, connection.begin():
                    row = (
                        await connection.execute(
                            text(
                                f'SELECT id, receipts FROM "{SCHEMA}".retention_runs '
                                "WHERE receipts_queued AND finished_at <= :before "
                                "AND id <> ALL(CAST(:refused AS uuid[])) "
                                "ORDER BY started_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
                            ),
                            {"before": datetime.now(UTC) - min_age, "refused": refused},
                        )
                    ).first()
                    if row is None:
                        return delivered
                    try:
                        answer = await self._send(row.receipts)
                    except ReceiptsRefused as exc:
                        _logger.error(
                            "retention run %s: receipts refused, they stay queued: %s", row.id, exc
                        )
                        refused.append(row.id)
                        continue
                    seqs = (answer.get("first_seq"), answer.get("last_seq"))
                    await connection.execute(
                        text(
                            f'UPDATE "{SCHEMA}".retention_runs SET receipts_queued = false, '
                            "first_seq = :first_seq, last_seq = :last_seq WHERE id = :id"
                        ),
                        {"id": row.id, "first_seq": seqs[0], "last_seq": seqs[1]},
                    )
            except ReceiptsNotRecorded as exc:
                _logger.warning("retention receipts stay queued: %s", exc)
                return delivered
            delivered[row.id] = seqs
            _logger.info("retention run %s: receipts recorded at seq %s..%s", row.id, *seqs)

    async def _extend_plate_holds(self, connection: AsyncConnection) -> None:
        # A camera may upload a backlog after an outage: reads of a held plate and time
        # range that arrived after the hold was placed are held too.
        await connection.execute(
            text(
                f'INSERT INTO "{SCHEMA}".legal_hold_reads (hold_id, read_id, captured_at) '
                f'SELECT h.id, r.id, r.captured_at FROM "{SCHEMA}".legal_holds h '
                f'JOIN "{SCHEMA}".plates p ON p.normalized_text = h.plate '
                "AND p.captured_at >= h.range_start AND p.captured_at < h.range_end "
                f'JOIN "{SCHEMA}".reads r ON r.id = p.read_id AND r.captured_at = p.captured_at '
                "AND r.agency = h.agency "
                "WHERE h.released_at IS NULL AND h.plate IS NOT NULL ON CONFLICT DO NOTHING"
            )
        )

    def _receipts(
        self,
        run_id: UUID,
        trigger: str,
        periods: Periods,
        cutoffs: dict[str, datetime],
        purged: _Purged,
        remaining: dict[str, Any],
        now: datetime,
    ) -> list[dict[str, Any]]:
        common = {"run_id": str(run_id), "trigger": trigger, "component": "recognition"}
        non_hit = {i: t for i, (hit, t) in purged.deleted.items() if not hit}
        hits = {i: t for i, (hit, t) in purged.deleted.items() if hit}
        oldest = remaining["oldest"]
        return [
            _receipt(
                NON_HIT_READS,
                ids=non_hit,
                cutoff=cutoffs["non_hit_cutoff"],
                oldest=oldest,
                preserved=int(remaining["non_hit_range"]),
                period=periods.minutes[NON_HIT_READS],
                purged_at=now,
                details={
                    **common,
                    "preserved_hits": int(remaining["hits"]),
                    "preserved_legal_hold": int(remaining["held"]),
                    "awaiting_match": int(remaining["awaiting"]),
                    "partitions_dropped": purged.partitions_dropped,
                    "partitions_rebuilt": purged.partitions_rebuilt,
                },
            ),
            _receipt(
                HIT_READS,
                ids=hits,
                cutoff=cutoffs["hit_cutoff"],
                oldest=oldest,
                preserved=int(remaining["hit_range"]),
                period=periods.minutes[HIT_READS],
                purged_at=now,
                details=common,
            ),
            _receipt(
                PRESERVED_READS,
                ids={},
                cutoff=now,
                oldest=oldest,
                preserved=int(remaining["all_held"]),
                period=periods.minutes.get(PRESERVED_READS),
                purged_at=now,
                details={**common, "active_holds": remaining["active_holds"]},
            ),
            _receipt(
                IMAGES,
                ids=purged.image_ids,
                cutoff=cutoffs["image_cutoff"],
                oldest=oldest,
                preserved=int(remaining["images"]),
                period=periods.minutes[IMAGES],
                purged_at=now,
                details={**common, "blobs_queued": len(purged.blob_keys)},
            ),
        ]

    async def _send(self, receipts: Sequence[dict[str, Any]]) -> dict[str, Any]:
        assert self.audit is not None
        try:
            response = await self.audit.post(
                RECEIPTS_PATH,
                json={"receipts": list(receipts)},
                timeout=self.config.audit_timeout_s,
            )
        except httpx.HTTPError as exc:
            raise ReceiptsNotRecorded(f"receipts not recorded: {type(exc).__name__}") from exc
        if response.status_code != 201:
            # A 4xx other than a timeout or a rate limit will be answered to a resend too.
            permanent = refused_for_good(response.status_code)
            raise (ReceiptsRefused if permanent else ReceiptsNotRecorded)(
                f"receipts not recorded: audit-svc answered HTTP {response.status_code} "
                f"{response.text[:300]}"
            )
        body: dict[str, Any] = response.json()
        return body

    async def _delete_queued_blobs(
        self, result: RunResult, *, written_before: datetime
    ) -> RunResult:
        """Delete queued blobs no remaining read uses; the queue survives a crash.

        A file stored again since ``written_before`` (the run's start) is kept: a camera
        may have just posted the same image, and its read may not have committed yet. If
        that read never commits, the orphan sweep deletes the file later.
        """
        async with self.engine.connect() as connection:
            queued = [
                row[0]
                for row in await connection.execute(
                    text(f'SELECT blob_key FROM "{SCHEMA}".retention_blob_deletions')
                )
            ]
            if not queued:
                return result
            in_use = await _blobs_in_use(connection, queued)
            await connection.rollback()
        deleted = 0
        for key in queued:
            if key not in in_use and await self.blobs.delete(key, written_before=written_before):
                deleted += 1
        async with self.engine.begin() as connection:
            await connection.execute(
                text(
                    f'DELETE FROM "{SCHEMA}".retention_blob_deletions WHERE blob_key = ANY(:keys)'
                ),
                {"keys": queued},
            )
        return dataclasses.replace(result, blobs_deleted=result.blobs_deleted + deleted)

    async def _sweep_orphan_blobs(self, result: RunResult) -> RunResult:
        """Delete image files no read refers to, last written before the grace period.

        A file once checked needs no second look: a read that used it can only go through
        the purge, which queues the file itself. So after its first sweep a process looks
        only at files written since its last cutoff (less a margin for clock steps).
        """
        cutoff = datetime.now(UTC) - timedelta(minutes=self.config.orphan_blob_grace_minutes)
        checked = self._orphans_checked_until
        since = checked - ORPHAN_MARGIN if checked is not None else None
        deleted, after = 0, None
        while keys := await self.blobs.written_before(
            cutoff, since=since, after=after, limit=ORPHAN_PAGE
        ):
            after = keys[-1]
            async with self.engine.connect() as connection:
                in_use = await _blobs_in_use(connection, keys)
                await connection.rollback()
            for key in keys:
                # Checked again at the file: an ingest storing the same bytes meanwhile
                # made it new, and keeps it.
                if key not in in_use and await self.blobs.delete(key, written_before=cutoff):
                    deleted += 1
        self._orphans_checked_until = cutoff
        if deleted:
            _logger.info("retention run %s: %d orphan image files deleted", result.run_id, deleted)
        return dataclasses.replace(result, orphan_blobs_deleted=deleted)
