"""API shapes of the access log and the dissemination log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from lpr_audit.chain import Checkpoint
from lpr_audit.ledger.writer import AppendResult
from lpr_common.audit_client import AuditEvent, DisseminationRecord
from lpr_common.values import Int4, StorableDatetime


def _now() -> datetime:
    return datetime.now(UTC)


class IncomingEvent(AuditEvent):
    """An event as the access log takes it: its time fits the ``timestamptz`` column."""

    occurred_at: StorableDatetime = Field(default_factory=_now)


class IncomingDissemination(DisseminationRecord):
    """A record as the dissemination log takes it: its time and count fit their columns."""

    occurred_at: StorableDatetime = Field(default_factory=_now)
    record_count: Int4


class EventBatch(BaseModel):
    """Events to append to the access log, in order."""

    events: list[IncomingEvent] = Field(min_length=1)


class DisseminationBatch(BaseModel):
    """Records to append to the dissemination log, in order."""

    records: list[IncomingDissemination] = Field(min_length=1)


class AppendAnswer(BaseModel):
    """Where the records are in the chain; they are durable when this is returned.

    A record whose id (``event_id``, ``record_id``) is stored already, a resend, is not
    stored again: it counts in ``already_recorded`` and its seq is the stored one.
    """

    accepted: int = Field(description="records taken: every one is now in the chain")
    recorded: int = Field(description="records this request appended")
    already_recorded: int = Field(description="records stored before (resends), not again")
    first_seq: int = Field(description="the lowest seq of the records")
    last_seq: int = Field(description="the highest seq of the records")
    seqs: list[int] = Field(description="the seq of each record, in request order")

    @classmethod
    def of(cls, result: AppendResult) -> AppendAnswer:
        """The answer for one request's append."""
        return cls(
            accepted=result.count,
            recorded=result.recorded,
            already_recorded=result.already_recorded,
            first_seq=result.first_seq,
            last_seq=result.last_seq,
            seqs=list(result.seqs),
        )


class ChainEntryPublic(BaseModel):
    """A stored chain record: its place in the chain and its hashed fields."""

    seq: int
    prev_hash: str
    hash: str
    fields: dict[str, Any]


class EntryPage(BaseModel):
    """One page of records in seq order; pass ``next_after_seq`` to get the next page."""

    items: list[ChainEntryPublic]
    next_after_seq: int | None


class CheckpointPublic(BaseModel):
    """A signed checkpoint."""

    chain: str
    seq: int
    hash: str
    created_at: datetime
    signature: str
    key_id: str

    @classmethod
    def of(cls, chain: str, checkpoint: Checkpoint) -> CheckpointPublic:
        """Build from a chain name and a checkpoint."""
        return cls(
            chain=chain,
            seq=checkpoint.seq,
            hash=checkpoint.hash,
            created_at=checkpoint.created_at,
            signature=checkpoint.signature,
            key_id=checkpoint.key_id,
        )


class CheckpointRequest(BaseModel):
    """Which chain to checkpoint now."""

    chain: Literal["access", "dissemination"] = "access"


class MisuseRule(BaseModel):
    """One rule of the misuse report, with the thresholds in force."""

    rule: str
    statement: str


class MisuseFlag(BaseModel):
    """A user flagged by one rule, with the evidence."""

    subject_id: str
    rule: str
    statement: str
    evidence: dict[str, Any]


class MisuseReport(BaseModel):
    """Users whose searches are unusual against their peers and their own habits."""

    period_start: datetime
    period_end: datetime
    searches_considered: int
    users_considered: int
    rules: list[MisuseRule]
    flags: list[MisuseFlag]
