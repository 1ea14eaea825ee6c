"""Transparency report (Minnesota and New Hampshire fields), computed from the chains.

Counted from events other services send (see docs/internal-api.md, "Event types
audit-svc counts"): ``read.ingested``, ``alert.created``, ``alert.disposition`` (or
``alert.transition`` to ``dispositioned``),
``access.decision`` with action ``search``, ``retention.purge``; and from the
dissemination log for sharing. Only counts leave this module, never a plate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text

from lpr_audit.ledger.repository import Executor


class Count(BaseModel):
    """One bar of the report."""

    key: str
    count: int


class Sharing(BaseModel):
    """Data shared with one agency."""

    recipient_agency: str
    disseminations: int
    records: int


class Deletions(BaseModel):
    """What retention deleted in one class."""

    retention_class: str
    purges: int
    deleted: int
    preserved: int


class TransparencyReport(BaseModel):
    """Aggregate counts for a period."""

    period_start: datetime
    period_end: datetime
    reads: int
    hits_by_list_category: list[Count]
    alerts_by_disposition: list[Count]
    searches_by_purpose: list[Count]
    sharing_by_recipient_agency: list[Sharing]
    deletions_by_retention_class: list[Deletions]
    requests_by_outcome: list[Count]


_WINDOW = "occurred_at >= :start AND occurred_at < :end"


async def _counts(executor: Executor, sql: str, params: dict[str, Any]) -> list[Count]:
    result = await executor.execute(text(sql), params)
    return [Count(key=row[0] or "unspecified", count=int(row[1])) for row in result]


async def build_report(executor: Executor, start: datetime, end: datetime) -> TransparencyReport:
    """Aggregate the chains' events that occurred in ``[start, end)``."""
    params = {"start": start, "end": end}
    reads = (
        await executor.execute(
            text(
                "SELECT coalesce(sum(coalesce((fields->>'result_count')::bigint, 1)), 0) "
                f"FROM audit.access_events WHERE event_type = 'read.ingested' AND {_WINDOW}"
            ),
            params,
        )
    ).scalar_one()
    hits = await _counts(
        executor,
        "SELECT coalesce(fields->'details'->>'category', fields->'details'->>'list_category') "
        "AS key, count(*) FROM audit.access_events "
        f"WHERE event_type = 'alert.created' AND {_WINDOW} GROUP BY key ORDER BY key",
        params,
    )
    dispositions = await _counts(
        executor,
        "SELECT coalesce(fields->'details'->>'disposition', fields->'details'->>'code') AS key, "
        "count(*) FROM audit.access_events WHERE (event_type = 'alert.disposition' OR "
        "(event_type = 'alert.transition' AND fields->'details'->>'to' = 'dispositioned')) "
        f"AND {_WINDOW} GROUP BY key ORDER BY key",
        params,
    )
    searches = await _counts(
        executor,
        "SELECT purpose AS key, count(*) FROM audit.access_events "
        "WHERE event_type = 'access.decision' AND action = 'search' AND outcome = 'allowed' "
        f"AND {_WINDOW} GROUP BY key ORDER BY key",
        params,
    )
    outcomes = await _counts(
        executor,
        "SELECT outcome AS key, count(*) FROM audit.access_events "
        f"WHERE event_type = 'access.decision' AND {_WINDOW} GROUP BY key ORDER BY key",
        params,
    )
    sharing_rows = await executor.execute(
        text(
            "SELECT recipient_agency, count(*), coalesce(sum(record_count), 0) "
            f"FROM audit.dissemination_records WHERE {_WINDOW} "
            "GROUP BY recipient_agency ORDER BY recipient_agency"
        ),
        params,
    )
    deletion_rows = await executor.execute(
        text(
            "SELECT fields->'details'->>'retention_class' AS key, count(*), "
            "coalesce(sum((fields->'details'->>'deleted_count')::bigint), 0), "
            "coalesce(sum((fields->'details'->>'preserved_count')::bigint), 0) "
            f"FROM audit.access_events WHERE event_type = 'retention.purge' AND {_WINDOW} "
            "GROUP BY key ORDER BY key"
        ),
        params,
    )
    return TransparencyReport(
        period_start=start,
        period_end=end,
        reads=int(reads),
        hits_by_list_category=hits,
        alerts_by_disposition=dispositions,
        searches_by_purpose=searches,
        sharing_by_recipient_agency=[
            Sharing(recipient_agency=r[0], disseminations=int(r[1]), records=int(r[2]))
            for r in sharing_rows
        ],
        deletions_by_retention_class=[
            Deletions(
                retention_class=r[0] or "unspecified",
                purges=int(r[1]),
                deleted=int(r[2]),
                preserved=int(r[3]),
            )
            for r in deletion_rows
        ],
        requests_by_outcome=outcomes,
    )


def summary_lines(report: TransparencyReport) -> list[str]:
    """The report as short lines of text, for the CLI and the demo."""

    def joined(counts: list[Count]) -> str:
        return ", ".join(f"{c.key} {c.count}" for c in counts) or "none"

    sharing = ", ".join(
        f"{s.recipient_agency} {s.disseminations} ({s.records} records)"
        for s in report.sharing_by_recipient_agency
    )
    deletions = ", ".join(
        f"{d.retention_class} {d.deleted} deleted/{d.preserved} preserved"
        for d in report.deletions_by_retention_class
    )
    return [
        f"period: {report.period_start.isoformat()} .. {report.period_end.isoformat()}",
        f"reads: {report.reads}",
        f"hits by list category: {joined(report.hits_by_list_category)}",
        f"alerts by disposition: {joined(report.alerts_by_disposition)}",
        f"searches by purpose: {joined(report.searches_by_purpose)}",
        f"sharing by recipient agency: {sharing or 'none'}",
        f"deletions by retention class: {deletions or 'none'}",
        f"requests by outcome: {joined(report.requests_by_outcome)}",
    ]
