"""The facts a decision is made from, and the decision itself.

Plain frozen dataclasses so the library stays independent of the gateway's database
models: the gateway builds them from its records (users, training, MOUs, approvals,
cameras) for every request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

from lpr_policy.vocabulary import Action, DataClass, Resource, SubjectKind

VAGUE_TERMS = frozenset(
    {
        "",
        "other",
        "others",
        "test",
        "testing",
        "misc",
        "miscellaneous",
        "general",
        "n/a",
        "na",
        "none",
        "unknown",
        "various",
        "curiosity",
        "personal",
        "law enforcement",
        "official business",
    }
)
"""Words that never state a purpose on their own (IACP A.1-2); compared case-insensitively.

``investigation`` is not here: it is an administered purpose that is vague until an
offense is named, which :class:`Purpose.requires_offense` expresses.
"""


def is_vague(text: str | None) -> bool:
    """Return True when ``text`` is missing or one of :data:`VAGUE_TERMS`."""
    if text is None:
        return True
    return " ".join(text.lower().replace("_", " ").split()) in VAGUE_TERMS


class MouStatus(StrEnum):
    """Lifecycle of a memorandum of understanding."""

    DRAFT = "draft"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class Purpose:
    """One entry of the administered list of public-safety purposes.

    Attributes:
        code: Stable identifier sent by clients, e.g. ``stolen_vehicle``.
        label: Text shown to users.
        requires_offense: The purpose is only specific once an offense is named
            (``investigation`` of burglary, homicide, ...).
    """

    code: str
    label: str
    requires_offense: bool = False

    def __post_init__(self) -> None:
        if is_vague(self.code):
            raise ValueError(f"purpose code {self.code!r} is vague and cannot be administered")


DEFAULT_PURPOSES: tuple[Purpose, ...] = (
    Purpose("stolen_vehicle", "Stolen vehicle"),
    Purpose("stolen_plate", "Stolen license plate"),
    Purpose("amber_alert", "AMBER alert"),
    Purpose("missing_person", "Missing or endangered person"),
    Purpose("wanted_person", "Wanted person / warrant"),
    Purpose("investigation", "Investigation of a named offense", requires_offense=True),
)
"""Purposes used until the gateway loads the administered list."""


@dataclass(frozen=True, slots=True)
class Mou:
    """A memorandum of understanding under which ``owner_agency`` shares data (IACP D.2).

    Attributes:
        id: The MOU's identifier (recorded in dissemination records).
        owner_agency: Agency whose data is shared.
        partner_agency: Agency that receives it.
        status: Lifecycle state; only ``active`` is in force.
        data_classes: Which data classes may be shared.
        purposes: Purpose codes the partner may use.
        max_lookback_days: How far back a partner may search.
        signed_on: Date both parties signed; unsigned MOUs are not in force.
        expires_on: Last day the MOU is in force; None means no end date.
    """

    id: str
    owner_agency: str
    partner_agency: str
    status: MouStatus
    data_classes: frozenset[DataClass]
    purposes: frozenset[str]
    max_lookback_days: int
    signed_on: date | None
    expires_on: date | None


@dataclass(frozen=True, slots=True)
class Approval:
    """An administrator's time-bound authorization of a data-access request (IACP B.1.f).

    Attributes:
        id: The approval record's identifier.
        resource: Resource the approval covers.
        action: Action the approval covers.
        not_before: Start of the window (inclusive).
        not_after: End of the window (exclusive).
        case_number: When set, the approval only covers requests for this case.
        max_lookback_days: For searches, how far back the approval allows.
        approved_by: The administrator who approved it.
    """

    id: str
    resource: Resource
    action: Action
    not_before: datetime
    not_after: datetime
    case_number: str | None = None
    max_lookback_days: int | None = None
    approved_by: str | None = None

    def in_window(self, now: datetime) -> bool:
        """Return True when ``now`` lies inside the approval's window."""
        return self.not_before <= now < self.not_after


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """State of the posting camera and its deployment (IACP B.1.e, B.2, C.7).

    Attributes:
        in_service: False after a failed equipment check until a passing one (B.2).
        deployment_approved: The camera's current deployment is approved and in its period.
        special_detail: The deployment is a special detail (C.7), which needs an
            administrator's approval.
    """

    in_service: bool
    deployment_approved: bool
    special_detail: bool = False


@dataclass(frozen=True, slots=True)
class Subject:
    """Who is asking.

    Attributes:
        kind: How the caller authenticated.
        id: User id, partner client id or camera id.
        agency: The caller's own agency.
        roles: Roles held in ``agency`` (from the gateway's users table); unknown role
            names are allowed and simply grant nothing.
        training_expires_at: End of the user's current LPR training (B.1.d, C.2).
        mou: For partners (or users acting for another agency), the MOU they call under.
        approvals: The user's approvals; expired ones may be included, the policy
            checks the window.
        camera: For cameras, the device and deployment state.
    """

    kind: SubjectKind
    id: str
    agency: str
    roles: frozenset[str] = frozenset()
    training_expires_at: datetime | None = None
    mou: Mou | None = None
    approvals: tuple[Approval, ...] = ()
    camera: CameraStatus | None = None

    @property
    def key(self) -> str:
        """The Casbin subject name, as used in ``g`` rows: ``user:42``, ``camera:cam-7``."""
        return f"{self.kind.value}:{self.id}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AccessContext:
    """Why and on what the request acts.

    Attributes:
        target_agency: Agency that owns the data or record (the Casbin domain).
        purpose: Purpose code from the administered list (A.1-2).
        offense: The named offense, for purposes that require one.
        case_number: Case number (required for historical search, C.8).
        since: Earliest time of the data asked for; with ``now`` gives the lookback.
        lookback_days: Lookback in days, when the caller states it directly.
        reason: Documented reason (manual hot-list entries C.6, legal hold release).
        now: Decision time (timezone-aware).
    """

    target_agency: str
    purpose: str | None = None
    offense: str | None = None
    case_number: str | None = None
    since: datetime | None = None
    lookback_days: int | None = None
    reason: str | None = None
    now: datetime = field(default_factory=_utcnow)

    def effective_lookback_days(self) -> int | None:
        """Days between ``since`` and ``now`` rounded up, or ``lookback_days``, or None."""
        if self.lookback_days is not None:
            return self.lookback_days
        if self.since is None:
            return None
        return max(0, math.ceil((self.now - self.since).total_seconds() / 86400))


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one policy decision, ready for the audit event and problem response.

    Attributes:
        allowed: Whether the request may proceed.
        rule: The rule that decided: the granting policy row on allow, the failed check
            (``vague-purpose``, ``training-expired``, ``deny-by-default``...) on deny.
        reason: A sentence for the caller and the audit log.
        clause: The IACP clause the rule encodes, e.g. ``C.8``.
        grant: The policy row (its rule id) that granted, or whose condition failed.
    """

    allowed: bool
    rule: str
    reason: str
    clause: str
    grant: str | None = None
