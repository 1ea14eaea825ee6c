"""Runtime grants from the database: the adapter rows, reload, and the atomic swap."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lpr_policy import (
    AccessContext,
    Action,
    PolicyEngine,
    PolicyRowError,
    Purpose,
    Resource,
    Subject,
    SubjectKind,
    default_policy_path,
)

NOW = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)
HOME = "pd-a"
CASE = "PD-2025-001234"


def officer(user_id: str = "42") -> Subject:
    return Subject(
        kind=SubjectKind.USER,
        id=user_id,
        agency=HOME,
        roles=frozenset({"officer"}),
        training_expires_at=NOW + timedelta(days=100),
    )


def context(**fields: object) -> AccessContext:
    return AccessContext(target_agency=HOME, now=NOW, **fields)  # type: ignore[arg-type]


class Table:
    """Stands in for the gateway's policy-rule table (ptype, v0..v5, NULL padded)."""

    def __init__(self) -> None:
        self.rows: list[Sequence[str | None]] = []

    def load(self) -> list[Sequence[str | None]]:
        return list(self.rows)

    async def load_async(self) -> list[Sequence[str | None]]:
        return list(self.rows)


async def test_role_assignment_from_database_takes_effect_on_reload() -> None:
    table = Table()
    engine = PolicyEngine(extra_rules_loader=table.load)
    await engine.reload()
    assert not engine.decide(officer(), Resource.AUDIT, Action.READ, context()).allowed

    table.rows.append(("g", "user:42", "auditor", HOME, None, None, None))
    await engine.reload()
    decision = engine.decide(officer(), Resource.AUDIT, Action.READ, context())
    assert decision.allowed
    assert decision.rule == "B.1.c:auditor-queries-access-log"
    # Another user and another agency are not affected by the assignment.
    assert not engine.decide(officer("43"), Resource.AUDIT, Action.READ, context()).allowed
    other = Subject(
        kind=SubjectKind.USER,
        id="42",
        agency="pd-b",
        roles=frozenset({"officer"}),
        training_expires_at=NOW + timedelta(days=100),
    )
    assert not engine.decide(
        other, Resource.AUDIT, Action.READ, AccessContext("pd-b", now=NOW)
    ).allowed

    table.rows.clear()
    await engine.reload()
    assert not engine.decide(officer(), Resource.AUDIT, Action.READ, context()).allowed


async def test_time_bound_grant_from_async_loader_applies_only_in_its_window() -> None:
    table = Table()
    window = (
        f"window:{(NOW - timedelta(hours=1)).isoformat()}/{(NOW + timedelta(hours=8)).isoformat()}"
    )
    table.rows.append(
        (
            "p",
            "user:42",
            HOME,
            "reads",
            "search",
            f"purpose case_number lookback:365 {window}",
            "B.1.f:apr-9",
        )
    )
    engine = PolicyEngine(extra_rules_loader=table.load_async)
    await engine.reload()
    search = {"purpose": "stolen_vehicle", "case_number": CASE, "lookback_days": 300}

    decision = engine.decide(officer(), Resource.READS, Action.SEARCH, context(**search))
    assert (decision.allowed, decision.rule) == (True, "B.1.f:apr-9")

    later = AccessContext(target_agency=HOME, now=NOW + timedelta(hours=9), **search)  # type: ignore[arg-type]
    decision = engine.decide(officer(), Resource.READS, Action.SEARCH, later)
    assert not decision.allowed
    # The first row that matched by role (the baseline search row) names the failure.
    assert decision.rule == "lookback-exceeds-limit"
    assert decision.clause == "B.1.f"
    assert not engine.decide(
        officer("43"), Resource.READS, Action.SEARCH, context(**search)
    ).allowed


async def test_agency_specific_row_applies_only_in_that_agency() -> None:
    table = Table()
    table.rows.append(
        ("p", "officer", "pd-b", "audit", "read", "", "B.1.c:pd-b-officers-read-audit")
    )
    engine = PolicyEngine(extra_rules_loader=table.load)
    await engine.reload()
    assert not engine.decide(officer(), Resource.AUDIT, Action.READ, context()).allowed
    pd_b = Subject(
        kind=SubjectKind.USER,
        id="7",
        agency="pd-b",
        roles=frozenset({"officer"}),
        training_expires_at=NOW + timedelta(days=100),
    )
    decision = engine.decide(pd_b, Resource.AUDIT, Action.READ, AccessContext("pd-b", now=NOW))
    assert decision.allowed


async def test_bad_row_keeps_previous_policy_in_force() -> None:
    table = Table()
    table.rows.append(("g", "user:42", "auditor", HOME))
    engine = PolicyEngine(extra_rules_loader=table.load)
    await engine.reload()
    rules_before = engine.rules

    table.rows.append(("p", "officer", "*", "plates", "read", "", "A.1-2:bad"))
    with pytest.raises(PolicyRowError, match="unknown permission"):
        await engine.reload()
    assert engine.rules == rules_before
    assert engine.decide(officer(), Resource.AUDIT, Action.READ, context()).allowed


async def test_purposes_reload_from_loader() -> None:
    purposes = [Purpose("stolen_vehicle", "Stolen vehicle")]
    engine = PolicyEngine(purposes_loader=lambda: list(purposes))
    await engine.reload()
    read = {"purpose": "hit_and_run", "case_number": CASE}
    decision = engine.decide(officer(), Resource.READS, Action.READ, context(**read))
    assert decision.rule == "unknown-purpose"

    purposes.append(Purpose("hit_and_run", "Hit and run"))
    await engine.reload()
    assert engine.decide(officer(), Resource.READS, Action.READ, context(**read)).allowed
    assert set(engine.purposes) == {"stolen_vehicle", "hit_and_run"}


def test_removing_a_baseline_row_removes_the_grant(tmp_path: Path) -> None:
    text = default_policy_path().read_text(encoding="utf-8")
    kept = [line for line in text.splitlines() if "auditor-queries-access-log" not in line]
    path = tmp_path / "policy.csv"
    path.write_text("\n".join(kept), encoding="utf-8")
    auditor = Subject(
        kind=SubjectKind.USER,
        id="9",
        agency=HOME,
        roles=frozenset({"auditor"}),
        training_expires_at=NOW + timedelta(days=10),
    )
    assert PolicyEngine.from_files().decide(auditor, Resource.AUDIT, Action.READ, context()).allowed
    decision = PolicyEngine.from_files(policy_path=path).decide(
        auditor, Resource.AUDIT, Action.READ, context()
    )
    assert decision.rule == "deny-by-default"


def test_case_number_pattern_is_configurable() -> None:
    engine = PolicyEngine(case_number_pattern=r"\d{8}")
    search = {"purpose": "stolen_vehicle", "lookback_days": 10}
    assert engine.decide(
        officer(), Resource.READS, Action.SEARCH, context(case_number="20250001", **search)
    ).allowed
    decision = engine.decide(
        officer(), Resource.READS, Action.SEARCH, context(case_number=CASE, **search)
    )
    assert decision.rule == "case-number-format"


def test_decisions_from_many_threads_do_not_mix() -> None:
    # FastAPI runs sync dependencies in a thread pool; each thread must get its own answer.
    engine = PolicyEngine.from_files()
    auditor = Subject(
        kind=SubjectKind.USER,
        id="9",
        agency=HOME,
        roles=frozenset({"auditor"}),
        training_expires_at=NOW + timedelta(days=10),
    )
    cases = [(officer(), False), (auditor, True)] * 3000

    def decide(case: tuple[Subject, bool]) -> bool:
        subject, expected = case
        return engine.decide(subject, Resource.AUDIT, Action.READ, context()).allowed == expected

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads mid-decision, as a loaded server does
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert all(pool.map(decide, cases))
    finally:
        sys.setswitchinterval(interval)


def test_a_new_engine_answers_its_first_decisions_from_many_threads_at_once() -> None:
    # A reloaded engine is first used by requests already waiting in several threads.
    # Casbin adds to a dict shared by all of them on its first call; none may fail for it.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(100):
            engine = PolicyEngine.from_files()
            start = threading.Barrier(8)

            def decide(
                _: int, engine: PolicyEngine = engine, start: threading.Barrier = start
            ) -> bool:
                start.wait()
                return not engine.decide(officer(), Resource.AUDIT, Action.READ, context()).allowed

            with ThreadPoolExecutor(max_workers=8) as pool:
                assert all(pool.map(decide, range(8)))
    finally:
        sys.setswitchinterval(interval)
