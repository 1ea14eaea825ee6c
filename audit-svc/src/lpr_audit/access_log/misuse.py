"""The misuse report (IACP A.2): four rules over the gateway's decisions, each one stated.

A search is an ``access.decision`` event with action ``search`` (allowed or denied: an
attempt counts). Peers are the other users who searched in the same period.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from lpr_audit.access_log.repository import SearchRow
from lpr_audit.access_log.schemas import MisuseFlag, MisuseReport, MisuseRule
from lpr_audit.settings import Settings

NO_CASE = "searches-without-case-number"
SAME_PLATE = "same-plate-across-cases"
OFF_SHIFT = "searches-outside-shift-hours"
DENIED = "high-share-of-denied-requests"


def rules(settings: Settings) -> list[MisuseRule]:
    """The rules with the thresholds in force, in words."""
    s = settings
    return [
        MisuseRule(
            rule=NO_CASE,
            statement=(
                f"at least {s.audit_misuse_min_searches} searches without a case number, and at "
                f"least {s.audit_misuse_peer_factor:g} times the median of the user's peers"
            ),
        ),
        MisuseRule(
            rule=SAME_PLATE,
            statement=(
                f"the same plate searched under at least {s.audit_misuse_distinct_cases} "
                "different case numbers"
            ),
        ),
        MisuseRule(
            rule=OFF_SHIFT,
            statement=(
                f"at least {s.audit_misuse_min_searches} searches, of which at least "
                f"{s.audit_misuse_off_shift_share:.0%} outside shift hours "
                f"{s.audit_shift_start_hour:02d}:00-{s.audit_shift_end_hour:02d}:00 "
                f"{s.audit_shift_timezone}"
            ),
        ),
        MisuseRule(
            rule=DENIED,
            statement=(
                f"at least {s.audit_misuse_min_requests} requests, of which at least "
                f"{s.audit_misuse_denied_share:.0%} were denied by the policy"
            ),
        ),
    ]


def off_shift(moment: datetime, settings: Settings) -> bool:
    """True when ``moment`` falls outside shift hours on the agency's clock."""
    hour = moment.astimezone(ZoneInfo(settings.audit_shift_timezone)).hour
    start, end = settings.audit_shift_start_hour, settings.audit_shift_end_hour
    within = start <= hour < end if start <= end else hour >= start or hour < end
    return not within


def evaluate(
    rows: Sequence[SearchRow], settings: Settings, start: datetime, end: datetime
) -> MisuseReport:
    """Apply the four rules to the decisions of a period."""
    statements = {rule.rule: rule.statement for rule in rules(settings)}
    searches = [row for row in rows if row.action == "search"]
    by_user: dict[str, list[SearchRow]] = defaultdict(list)
    for row in searches:
        by_user[row.subject_id].append(row)
    flags: list[MisuseFlag] = []

    without_case = {user: sum(1 for r in rs if not r.case_number) for user, rs in by_user.items()}
    for user, count in sorted(without_case.items()):
        peers = [c for other, c in without_case.items() if other != user]
        peer_median = statistics.median(peers) if peers else 0.0
        if (
            count >= settings.audit_misuse_min_searches
            and count >= settings.audit_misuse_peer_factor * peer_median
        ):
            flags.append(
                MisuseFlag(
                    subject_id=user,
                    rule=NO_CASE,
                    statement=statements[NO_CASE],
                    evidence={
                        "searches_without_case_number": count,
                        "searches": len(by_user[user]),
                        "peer_median": peer_median,
                    },
                )
            )

    for user, user_rows in sorted(by_user.items()):
        cases_by_plate: dict[str, set[str]] = defaultdict(set)
        for row in user_rows:
            if row.plate and row.case_number:
                cases_by_plate[row.plate].add(row.case_number)
        for plate, cases in sorted(cases_by_plate.items()):
            if len(cases) >= settings.audit_misuse_distinct_cases:
                flags.append(
                    MisuseFlag(
                        subject_id=user,
                        rule=SAME_PLATE,
                        statement=statements[SAME_PLATE],
                        evidence={"plate": plate, "case_numbers": sorted(cases)},
                    )
                )

    for user, user_rows in sorted(by_user.items()):
        outside = sum(1 for row in user_rows if off_shift(row.occurred_at, settings))
        share = outside / len(user_rows)
        if (
            len(user_rows) >= settings.audit_misuse_min_searches
            and share >= settings.audit_misuse_off_shift_share
        ):
            flags.append(
                MisuseFlag(
                    subject_id=user,
                    rule=OFF_SHIFT,
                    statement=statements[OFF_SHIFT],
                    evidence={
                        "searches": len(user_rows),
                        "outside_shift": outside,
                        "share": round(share, 3),
                    },
                )
            )

    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        outcomes[row.subject_id][row.outcome] += 1
    for user, counter in sorted(outcomes.items()):
        total = sum(counter.values())
        share = counter["denied"] / total
        if (
            total >= settings.audit_misuse_min_requests
            and share >= settings.audit_misuse_denied_share
        ):
            flags.append(
                MisuseFlag(
                    subject_id=user,
                    rule=DENIED,
                    statement=statements[DENIED],
                    evidence={
                        "requests": total,
                        "denied": counter["denied"],
                        "share": round(share, 3),
                    },
                )
            )

    return MisuseReport(
        period_start=start,
        period_end=end,
        searches_considered=len(searches),
        users_considered=len(outcomes),
        rules=rules(settings),
        flags=flags,
    )
