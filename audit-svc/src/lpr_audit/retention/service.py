"""Retention settings (append-only history; the newest row per class is in force) and receipts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from lpr_audit.ledger.service import Ledger
from lpr_audit.ledger.writer import AppendResult
from lpr_audit.retention.schemas import (
    DEFAULT_MINUTES,
    DESCRIPTIONS,
    MAXIMUM_MINUTES,
    MAXIMUM_YEARS,
    MINIMUM_MINUTES,
    MINUTES_PER_DAY,
    OPEN_ENDED,
    RetentionClass,
    RetentionReceipt,
    RetentionSettingPublic,
    RetentionSettingsPublic,
)
from lpr_common.audit_client import AuditEvent
from lpr_common.context import RequestContext
from lpr_common.errors import FieldError, InvalidInput


def deleted_ids_digest(read_ids: Iterable[str]) -> str:
    """The receipt's hash over deleted ids: SHA-256 of the sorted ids joined by newlines."""
    return hashlib.sha256("\n".join(sorted(read_ids)).encode("utf-8")).hexdigest()


async def current_settings(session: AsyncSession) -> RetentionSettingsPublic:
    """Return the period in force for every class (its default until first set)."""
    result = await session.execute(
        text(
            "SELECT DISTINCT ON (retention_class) retention_class, period_minutes, changed_by, "
            "changed_at, reason FROM audit.retention_setting_changes "
            "ORDER BY retention_class, changed_at DESC"
        )
    )
    stored = {row[0]: row for row in result}
    settings: list[RetentionSettingPublic] = []
    for retention_class in RetentionClass:
        row = stored.get(retention_class.value)
        minutes = row[1] if row is not None else DEFAULT_MINUTES[retention_class]
        settings.append(
            RetentionSettingPublic(
                retention_class=retention_class,
                period_minutes=minutes,
                period_days=None if minutes is None else round(minutes / MINUTES_PER_DAY, 4),
                default_minutes=DEFAULT_MINUTES[retention_class],
                minimum_minutes=MINIMUM_MINUTES[retention_class],
                maximum_minutes=MAXIMUM_MINUTES,
                description=DESCRIPTIONS[retention_class],
                changed_by=None if row is None else row[2],
                changed_at=None if row is None else row[3],
                reason=None if row is None else row[4],
            )
        )
    return RetentionSettingsPublic(settings=settings)


def validate_periods(periods: dict[RetentionClass, int | None]) -> None:
    """Refuse the whole change if any period breaks its class's rule.

    Raises:
        InvalidInput: naming each refused class.
    """
    errors: list[FieldError] = []
    for retention_class, minutes in periods.items():
        where = f"periods.{retention_class.value}"
        if minutes is None:
            if retention_class not in OPEN_ENDED:
                errors.append(FieldError(field=where, reason="a period is required"))
        elif minutes < MINIMUM_MINUTES[retention_class]:
            errors.append(
                FieldError(
                    field=where,
                    reason=f"at least {MINIMUM_MINUTES[retention_class]} minutes",
                )
            )
        elif minutes > MAXIMUM_MINUTES:
            errors.append(
                FieldError(
                    field=where,
                    reason=f"at most {MAXIMUM_MINUTES} minutes ({MAXIMUM_YEARS} years)",
                )
            )
    if errors:
        raise InvalidInput("retention periods refused", errors=errors)


async def change_settings(
    *,
    session: AsyncSession,
    ledger: Ledger,
    context: RequestContext,
    periods: dict[RetentionClass, int | None],
    reason: str,
) -> RetentionSettingsPublic:
    """Record new periods and the audit event of the change; all or nothing."""
    validate_periods(periods)
    changed_at = datetime.now(UTC)
    for retention_class, minutes in periods.items():
        await session.execute(
            text(
                "INSERT INTO audit.retention_setting_changes "
                "(retention_class, period_minutes, changed_by, reason, changed_at) "
                "VALUES (:retention_class, :minutes, :changed_by, :reason, :changed_at)"
            ),
            {
                "retention_class": retention_class.value,
                "minutes": minutes,
                "changed_by": context.subject_id,
                "reason": reason,
                "changed_at": changed_at,
            },
        )
    # Recorded before the session commits: if the event cannot be recorded the change
    # is rolled back with the request (fail closed).
    await ledger.append_events(
        [
            AuditEvent.for_context(
                context,
                component="audit",
                event_type="retention.settings_changed",
                resource="retention",
                action="manage",
                reason=reason,
                details={"periods": {k.value: v for k, v in periods.items()}},
            )
        ]
    )
    return await current_settings(session)


async def record_receipts(
    *, ledger: Ledger, component: str, receipts: list[RetentionReceipt]
) -> AppendResult:
    """Append each purge receipt to the access log chain as a ``retention.purge`` event."""
    events = [
        AuditEvent(
            # A receipt's own id, where the sender gives one, makes a resend a duplicate
            # the chain stores once (audit_0003).
            **({"event_id": receipt.receipt_id} if receipt.receipt_id is not None else {}),
            occurred_at=receipt.purged_at,
            component=component,
            event_type="retention.purge",
            outcome="success",
            subject_kind="service",
            subject_id=component,
            resource="images" if receipt.retention_class == RetentionClass.IMAGES else "reads",
            action="delete",
            result_count=receipt.deleted_count,
            details={
                "retention_class": receipt.retention_class.value,
                "range_start": receipt.range_start,
                "range_end": receipt.range_end,
                "deleted_count": receipt.deleted_count,
                "preserved_count": receipt.preserved_count,
                "deleted_ids_sha256": receipt.deleted_ids_sha256,
                "period_minutes": receipt.period_minutes,
                **({"extra": receipt.details} if receipt.details else {}),
            },
        )
        for receipt in receipts
    ]
    return await ledger.append_events(events)
