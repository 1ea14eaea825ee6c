"""The two chains audit-svc keeps, and how a record of each is encoded for the writer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from lpr_audit.chain import CanonicalEncodingError, canonical_json
from lpr_common.audit_client import AuditEvent, DisseminationRecord


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """Where a chain is stored: its table, the columns copied out of ``fields``, its lock.

    ``key_field`` names the field of ``fields`` that identifies a record across resends
    (the sender's id for it); ``key_index`` is the unique index on it (migration
    ``audit_0003``), so the same record is never stored twice.
    """

    name: str
    table: str
    columns: tuple[str, ...]
    lock_key: int
    key_field: str
    key_index: str

    @property
    def qualified_table(self) -> str:
        """The schema-qualified table name for SQL text."""
        return f"audit.{self.table}"


ACCESS: Final = ChainSpec(
    name="access",
    table="access_events",
    columns=(
        "occurred_at",
        "recorded_at",
        "event_type",
        "outcome",
        "subject_id",
        "agency",
        "purpose",
        "case_number",
        "plate",
        "resource",
        "action",
    ),
    # Constant advisory lock keys ("LPRA" + chain number): one tail lock per chain.
    lock_key=0x4C505241_0001,
    key_field="event_id",
    key_index="uq_access_events_event_id",
)

DISSEMINATION: Final = ChainSpec(
    name="dissemination",
    table="dissemination_records",
    columns=(
        "occurred_at",
        "recorded_at",
        "recipient_agency",
        "released_by",
        "released_by_agency",
        "mou_id",
        "purpose",
        "case_number",
        "data_class",
        "record_count",
    ),
    lock_key=0x4C505241_0002,
    key_field="record_id",
    key_index="uq_dissemination_records_record_id",
)

CHAINS: Final = {ACCESS.name: ACCESS, DISSEMINATION.name: DISSEMINATION}


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """A record encoded and waiting for its place in the chain.

    ``canonical`` is the canonical JSON of its fields (what the hash covers and what is
    stored in ``fields``); ``columns`` are the values of the chain's query columns; ``key``
    is its id (the chain's ``key_field``) as ``fields ->> key_field`` reads it back, or
    None for a record that has none (never deduplicated).
    """

    canonical: bytes
    columns: tuple[Any, ...]
    key: str | None = None


_NUL_ESCAPE: Final = b"\\u0000"


def _has_nul(canonical: bytes) -> bool:
    """Whether the canonical text holds an escaped U+0000 (not a literal backslash-u0000)."""
    found = canonical.find(_NUL_ESCAPE)
    while found != -1:
        backslashes = 0
        position = found - 1
        while position >= 0 and canonical[position] == 0x5C:
            backslashes += 1
            position -= 1
        if backslashes % 2 == 0:
            return True
        found = canonical.find(_NUL_ESCAPE, found + 1)
    return False


def _encode(fields: dict[str, Any], where: str) -> bytes:
    canonical = canonical_json(fields)
    # PostgreSQL's jsonb cannot hold U+0000; refusing it here keeps the stored JSON
    # exactly the JSON that was hashed. Checked on the encoded bytes: one C-speed scan.
    if _has_nul(canonical):
        raise CanonicalEncodingError(f"{where}: text contains U+0000")
    return canonical


def encode_event(event: AuditEvent, recorded_at: datetime) -> PendingRecord:
    """Encode an access log event; ``recorded_at`` (when audit-svc took it) is hashed too.

    Raises:
        CanonicalEncodingError: the event cannot be stored exactly (naive time, U+0000, ...).
    """
    fields = event.model_dump()
    fields["recorded_at"] = recorded_at
    canonical = _encode(fields, "event")
    return PendingRecord(
        canonical,
        (
            event.occurred_at,
            recorded_at,
            event.event_type,
            event.outcome,
            event.subject_id,
            event.agency,
            event.purpose,
            event.case_number,
            event.plate,
            event.resource,
            event.action,
        ),
        # The canonical text of a UUID is str(UUID): what ``fields ->> 'event_id'`` reads.
        str(event.event_id),
    )


def encode_dissemination(record: DisseminationRecord, recorded_at: datetime) -> PendingRecord:
    """Encode a dissemination record for its chain.

    Raises:
        CanonicalEncodingError: the record cannot be stored exactly.
    """
    fields = record.model_dump()
    fields["recorded_at"] = recorded_at
    canonical = _encode(fields, "record")
    return PendingRecord(
        canonical,
        (
            record.occurred_at,
            recorded_at,
            record.recipient_agency,
            record.released_by,
            record.released_by_agency,
            record.mou_id,
            record.purpose,
            record.case_number,
            record.data_class,
            record.record_count,
        ),
        str(record.record_id),
    )
