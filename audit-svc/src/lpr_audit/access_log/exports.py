"""Export bundles of a chain range, with checkpoints signed on demand to cover it."""

from __future__ import annotations

from datetime import datetime

from fastapi import Response
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from lpr_audit.access_log import repository as queries
from lpr_audit.access_log.schemas import ChainEntryPublic, EntryPage
from lpr_audit.chain import ChainHead, RecordsFormat, VerificationReport, build_bundle
from lpr_audit.deps import record_access
from lpr_audit.ledger import repository
from lpr_audit.ledger.chains import ChainSpec
from lpr_audit.ledger.service import Ledger
from lpr_common.context import RequestContext
from lpr_common.errors import Conflict, InvalidInput, NotFound

MAX_EXPORT_RECORDS = 1_000_000


async def resolve_range(
    session: AsyncSession,
    spec: ChainSpec,
    *,
    from_seq: int | None,
    to_seq: int | None,
    start: datetime | None,
    end: datetime | None,
) -> tuple[int, int]:
    """Turn seq bounds or a reception time window into a contiguous seq range.

    Seq bounds are held to where the chain must reach (:func:`repository.claimed_end`),
    not to what is stored: records deleted from the end below a signed checkpoint stay
    in the range, so the export refuses instead of ending quietly before them.

    Raises:
        NotFound: no record lies in the range.
        InvalidInput: the range is inverted or too large for one export.
    """
    found: tuple[int, int] | None
    if start is not None or end is not None:
        found = await repository.seq_range_for_time(session, spec, start, end)
    else:
        claimed = await repository.claimed_end(session, spec)
        found = None if claimed is None else (1, claimed)
    if found is None:
        raise NotFound(f"the {spec.name} log holds no record in this range")
    first = max(found[0], from_seq) if from_seq is not None else found[0]
    last = min(found[1], to_seq) if to_seq is not None else found[1]
    if last < first:
        raise InvalidInput.field("to_seq", "the range holds no record (to_seq before from_seq)")
    if last - first + 1 > MAX_EXPORT_RECORDS:
        raise InvalidInput.field(
            "to_seq", f"at most {MAX_EXPORT_RECORDS} records per export; split the range"
        )
    return first, last


def _refusal(spec: ChainSpec, low: int, high: int, report: VerificationReport) -> Conflict:
    found = report.first_break
    if found is not None:
        what = f"{found.kind.value} at seq {found.seq}: {found.detail}"
    else:
        what = "; ".join(f"checkpoint {p.seq}: {p.detail}" for p in report.checkpoint_problems)
    return Conflict(
        f"the stored {spec.name} log does not verify from seq {low} to {high} ({what}); "
        "an export would hide it, so none is signed. GET /v1/audit/verification reports it."
    )


async def build_export(
    session: AsyncSession,
    ledger: Ledger,
    spec: ChainSpec,
    first: int,
    last: int,
    fmt: RecordsFormat,
) -> tuple[bytes, int]:
    """Return the bundle of ``first..last`` and the number of records in it.

    The stored range is verified first, as :func:`repository.verify_stored` does, with
    one record more on each side where the chain has one: the record before links the
    range to the chain, and the record after shows that none was deleted at the range's
    end (which a time window cannot see). Only then is a checkpoint at ``last`` (and one
    at ``first - 1``, the anchor) signed if none exists, over the very hashes verified,
    so the whole bundle verifies offline. Earlier checkpoints inside the range are
    included too: they catch a rewrite made before this export.

    Raises:
        Conflict: the stored range does not verify (records missing, altered, or a
            checkpoint that does not vouch for them); nothing is signed.
    """
    claimed = await repository.claimed_end(session, spec)
    low = max(first - 1, 1)
    high = last + 1 if claimed is not None and claimed > last else last
    anchor = await repository.anchor_before(session, spec, low)
    verified = await repository.verify_range(
        session, spec, ledger.public_keys, low, high, anchor=anchor
    )
    if not verified.report.ok:
        raise _refusal(spec, low, high, verified.report)
    hashes = {record.seq: record.hash for record in verified.records}
    existing = [c for c in verified.checkpoints if max(first - 1, 1) <= c.seq <= last]
    wanted = [last] if first == 1 else [first - 1, last]
    for seq in wanted:
        if not any(checkpoint.seq == seq for checkpoint in existing):
            existing.append(await ledger.sign_verified(spec, ChainHead(seq, hashes[seq])))
    records = [record for record in verified.records if first <= record.seq <= last]
    bundle = build_bundle(records, existing, ledger.public_key_pem, fmt)
    return bundle, len(records)


ZIP = "application/zip"


async def export_response(
    *,
    context: RequestContext,
    session: AsyncSession,
    ledger: Ledger,
    spec: ChainSpec,
    resource: str,
    records_format: RecordsFormat,
    from_seq: int | None,
    to_seq: int | None,
    start: datetime | None,
    end: datetime | None,
) -> Response:
    """Export a range of one chain as a zip bundle, recording the access in the chain."""
    first, last = await resolve_range(
        session, spec, from_seq=from_seq, to_seq=to_seq, start=start, end=end
    )
    bundle, count = await build_export(session, ledger, spec, first, last, records_format)
    await record_access(
        ledger,
        context,
        resource=resource,
        action="export",
        query={"format": records_format, "from_seq": first, "to_seq": last},
        result_count=count,
    )
    return Response(
        bundle,
        media_type=ZIP,
        headers={
            "Content-Disposition": f'attachment; filename="{spec.name}-log-{first}-{last}.zip"',
            "X-LPR-Result-Count": str(count),
        },
    )


async def query_page(
    *,
    context: RequestContext,
    session: AsyncSession,
    ledger: Ledger,
    response: Response,
    table: Table,
    resource: str,
    filters: dict[str, str | None],
    start: datetime | None,
    end: datetime | None,
    after_seq: int | None,
    limit: int,
) -> EntryPage:
    """One page of a chain's records matching ``filters``, recording the access in the chain."""
    rows = await queries.page(
        session, table, equals=filters, start=start, end=end, after_seq=after_seq, limit=limit
    )
    await record_access(
        ledger,
        context,
        resource=resource,
        action="read",
        query={
            **filters,
            "from": None if start is None else start.isoformat(),
            "to": None if end is None else end.isoformat(),
            "after_seq": after_seq,
        },
        result_count=len(rows),
    )
    response.headers["X-LPR-Result-Count"] = str(len(rows))
    return EntryPage(
        items=[
            ChainEntryPublic(seq=r.seq, prev_hash=r.prev_hash, hash=r.hash, fields=r.fields)
            for r in rows
        ],
        next_after_seq=rows[-1].seq if len(rows) == limit else None,
    )
