"""Attribute checks: the conditions named in ``policy.csv`` and the subject gates.

A policy row's ``conditions`` column is a space-separated list of condition tokens,
``name`` or ``name:argument``. Every check returns None when it holds, or a
:class:`Failure` naming the rule and IACP clause that denies.

Condition tokens:
    ``purpose``               purpose present, administered, specific (A.1-2)
    ``case_number``           case number present and well formed (C.8)
    ``lookback[:DAYS]``       time range stated and within the limit; a user may exceed the
                              default with an approval in its window (C.8, B.1.f); a
                              partner is held to the MOU's lookback (D.2)
    ``approval``              an approval for this resource and action, in its window (B.1.f)
    ``reason``                a documented reason (C.6 for manual entries)
    ``camera_in_service``     the posting camera passed its last equipment check (B.2)
    ``deployment_approved``   the camera's deployment is approved (B.1.e, C.7)
    ``window:START/END``      the row itself only applies between two ISO 8601 instants
                              (time-bound grants loaded from the database, B.1.f)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from lpr_policy.models import (
    AccessContext,
    Approval,
    Mou,
    MouStatus,
    Purpose,
    Subject,
    is_vague,
)
from lpr_policy.vocabulary import DATA_CLASS_OF, Action, Resource, SubjectKind

DEFAULT_CASE_NUMBER_PATTERN = r"(?:[A-Z]{1,4}-?)?\d{2,4}-\d{3,8}"
"""Default case number format: optional agency prefix, year, sequence (``PD-2024-001234``)."""

MIN_REASON_LENGTH = 10


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a check denies.

    Attributes:
        rule: Short name of the failed check, e.g. ``vague-purpose``.
        reason: Sentence for the caller and the audit log.
        clause: IACP clause; None means "the clause of the policy row that asked".
    """

    rule: str
    reason: str
    clause: str | None


@dataclass(frozen=True, slots=True)
class Settings:
    """Agency-wide parameters of the checks."""

    purposes: Mapping[str, Purpose]
    default_lookback_days: int
    case_number_pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything a check may look at for one request."""

    subject: Subject
    context: AccessContext
    resource: Resource
    action: Action
    settings: Settings

    @property
    def cross_agency(self) -> bool:
        """True when the caller reads another agency's data."""
        return self.subject.agency != self.context.target_agency


Check = Callable[[Facts, str | None], Failure | None]


def check_purpose(facts: Facts, _argument: str | None) -> Failure | None:
    """Purpose present, specific and on the administered list (IACP A.1-2)."""
    context = facts.context
    code = (context.purpose or "").strip()
    if not code:
        return Failure("vague-purpose", "vague purpose: no public-safety purpose stated", "A.1-2")
    if is_vague(code):
        return Failure(
            "vague-purpose",
            f"vague purpose {code!r}: state one of the administered public-safety purposes",
            "A.1-2",
        )
    purpose = facts.settings.purposes.get(code)
    if purpose is None:
        return Failure(
            "unknown-purpose", f"purpose {code!r} is not on the administered list", "A.1-2"
        )
    if purpose.requires_offense and (
        is_vague(context.offense) or len((context.offense or "").strip()) < 3
    ):
        return Failure(
            "vague-purpose",
            f"vague purpose: {code!r} must name the offense under investigation",
            "A.1-2",
        )
    return None


def check_case_number(facts: Facts, _argument: str | None) -> Failure | None:
    """Case number present and in the agency's format (IACP C.8)."""
    case_number = (facts.context.case_number or "").strip()
    if not case_number:
        return Failure("case-number-required", "a case number is required for this request", "C.8")
    if not facts.settings.case_number_pattern.fullmatch(case_number):
        return Failure(
            "case-number-format",
            f"case number {case_number!r} does not match the agency's case number format",
            "C.8",
        )
    return None


def _approval_for(facts: Facts) -> tuple[Approval | None, Approval | None]:
    """Return (an approval usable now, an approval for this request outside its window)."""
    usable: Approval | None = None
    stale: Approval | None = None
    for approval in facts.subject.approvals:
        if approval.resource != facts.resource or approval.action != facts.action:
            continue
        if approval.case_number is not None and approval.case_number != (
            facts.context.case_number or ""
        ):
            continue
        if approval.in_window(facts.context.now):
            usable = approval
            break
        stale = approval
    return usable, stale


def check_approval(facts: Facts, _argument: str | None) -> Failure | None:
    """An approval covering this resource, action (and case) is in its window (B.1.f)."""
    usable, stale = _approval_for(facts)
    if usable is not None:
        return None
    if stale is not None:
        return Failure(
            "approval-outside-window",
            f"approval {stale.id} is valid from {stale.not_before.isoformat()} "
            f"to {stale.not_after.isoformat()}, not now",
            "B.1.f",
        )
    return Failure(
        "approval-required",
        f"{facts.resource.value}:{facts.action.value} requires an administrator's approval",
        "B.1.f",
    )


def check_lookback(facts: Facts, argument: str | None) -> Failure | None:
    """The time range is stated and within the subject's lookback limit (C.8, B.1.f, D.2)."""
    days = facts.context.effective_lookback_days()
    if days is None:
        return Failure(
            "time-range-required", "a bounded time range is required for this search", "C.8"
        )
    mou = facts.subject.mou
    if facts.subject.kind is SubjectKind.PARTNER or facts.cross_agency:
        # Partners never get approvals from the owner's administrators: the MOU is the limit.
        limit = mou.max_lookback_days if mou is not None else 0
        if days > limit:
            return Failure(
                "mou-lookback",
                f"lookback of {days} days exceeds the MOU's {limit} days",
                "D.2",
            )
        return None
    limit = int(argument) if argument else facts.settings.default_lookback_days
    if days <= limit:
        return None
    usable, stale = _approval_for(facts)
    if usable is not None and (
        usable.max_lookback_days is None or days <= usable.max_lookback_days
    ):
        return None
    if usable is not None:
        return Failure(
            "lookback-exceeds-approval",
            f"lookback of {days} days exceeds the {usable.max_lookback_days} days "
            f"of approval {usable.id}",
            "B.1.f",
        )
    if stale is not None:
        return Failure(
            "approval-outside-window",
            f"lookback of {days} days exceeds {limit} days and approval {stale.id} "
            "is not in its window",
            "B.1.f",
        )
    return Failure(
        "lookback-exceeds-limit",
        f"lookback of {days} days exceeds {limit} days without an approval",
        "B.1.f",
    )


def check_reason(facts: Facts, _argument: str | None) -> Failure | None:
    """A documented, specific reason accompanies the request (C.6 for manual entries)."""
    reason = (facts.context.reason or "").strip()
    if is_vague(reason) or len(reason) < MIN_REASON_LENGTH:
        return Failure(
            "reason-required",
            f"a documented reason of at least {MIN_REASON_LENGTH} characters is required",
            None,
        )
    return None


def check_camera_in_service(facts: Facts, _argument: str | None) -> Failure | None:
    """The posting camera is in service (IACP B.2)."""
    camera = facts.subject.camera
    if camera is None or not camera.in_service:
        return Failure(
            "camera-out-of-service",
            "camera is out of service until a passing equipment check",
            "B.2",
        )
    return None


def check_deployment_approved(facts: Facts, _argument: str | None) -> Failure | None:
    """The camera's deployment is approved; a special detail by an administrator (B.1.e, C.7)."""
    camera = facts.subject.camera
    if camera is not None and camera.deployment_approved:
        return None
    if camera is not None and camera.special_detail:
        return Failure(
            "special-detail-not-approved",
            "special detail deployment is not approved by an administrator",
            "C.7",
        )
    return Failure(
        "deployment-not-approved", "camera has no approved deployment in its period", "B.1.e"
    )


def check_window(facts: Facts, argument: str | None) -> Failure | None:
    """The policy row applies only inside its ISO 8601 ``START/END`` window (B.1.f)."""
    try:
        start_text, end_text = (argument or "").split("/", 1)
        start, end = datetime.fromisoformat(start_text), datetime.fromisoformat(end_text)
        inside = start <= facts.context.now < end
    except (TypeError, ValueError):
        # A malformed or naive window in a stored row must never grant anything.
        inside = False
    if not inside:
        return Failure(
            "grant-outside-window", f"time-bound grant is valid {argument}, not now", "B.1.f"
        )
    return None


CONDITIONS: dict[str, Check] = {
    "purpose": check_purpose,
    "case_number": check_case_number,
    "lookback": check_lookback,
    "approval": check_approval,
    "reason": check_reason,
    "camera_in_service": check_camera_in_service,
    "deployment_approved": check_deployment_approved,
    "window": check_window,
}
"""Condition tokens usable in the ``conditions`` column of a policy row."""


def parse_conditions(text: str) -> list[tuple[str, str | None]]:
    """Split a conditions column into (name, argument) pairs.

    Raises:
        ValueError: A token names no known condition.
    """
    parsed: list[tuple[str, str | None]] = []
    for token in text.split():
        name, _, argument = token.partition(":")
        if name not in CONDITIONS:
            raise ValueError(f"unknown condition {name!r} in {text!r}")
        parsed.append((name, argument or None))
    return parsed


def mou_in_force(mou: Mou, today: date) -> Failure | None:
    """The MOU is active, signed and not expired on ``today`` (IACP D.2)."""
    if mou.status is not MouStatus.ACTIVE:
        return Failure("mou-not-in-force", f"MOU {mou.id} is {mou.status.value}", "D.2")
    if mou.signed_on is None or mou.signed_on > today:
        return Failure("mou-not-in-force", f"MOU {mou.id} is not signed", "D.2")
    if mou.expires_on is not None and mou.expires_on < today:
        return Failure(
            "mou-expired", f"MOU {mou.id} expired on {mou.expires_on.isoformat()}", "D.2"
        )
    return None


def check_training(facts: Facts) -> Failure | None:
    """A user's LPR training is current (IACP B.1.d, C.2)."""
    expires_at = facts.subject.training_expires_at
    if expires_at is None:
        return Failure("training-missing", "user has no LPR training on record", "C.2")
    if expires_at <= facts.context.now:
        return Failure(
            "training-expired", f"LPR training expired on {expires_at.date().isoformat()}", "C.2"
        )
    return None


def check_sharing(facts: Facts) -> Failure | None:
    """Data leaving its agency is covered by an MOU in force (IACP D.1, D.2).

    Checks the MOU's parties, status, data class, purpose and (when stated) lookback.
    """
    subject, context = facts.subject, facts.context
    if subject.kind is SubjectKind.CAMERA:
        return Failure(
            "cross-agency-camera", "a camera may only post reads to its own agency", "D.2"
        )
    mou = subject.mou
    if (
        mou is None
        or mou.owner_agency != context.target_agency
        or mou.partner_agency != subject.agency
    ):
        return Failure(
            "mou-missing",
            f"no MOU shares {context.target_agency}'s data with {subject.agency}",
            "D.2",
        )
    failure = mou_in_force(mou, context.now.date())
    if failure is not None:
        return failure
    data_class = DATA_CLASS_OF.get(facts.resource)
    if data_class is None:
        return Failure(
            "mou-data-class",
            f"{facts.resource.value} is not LPR data an MOU can share",
            "D.2",
        )
    if data_class not in mou.data_classes:
        return Failure("mou-data-class", f"MOU {mou.id} does not cover {data_class.value}", "D.2")
    purpose_failure = check_purpose(facts, None)
    if purpose_failure is not None:
        return purpose_failure
    if context.purpose not in mou.purposes:
        return Failure("mou-purpose", f"purpose {context.purpose!r} is outside MOU {mou.id}", "D.2")
    days = context.effective_lookback_days()
    if days is not None and days > mou.max_lookback_days:
        return Failure(
            "mou-lookback",
            f"lookback of {days} days exceeds the MOU's {mou.max_lookback_days} days",
            "D.2",
        )
    return None
