"""The packaged model and baseline policy parse and only name known vocabulary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lpr_policy import (
    PERMISSIONS,
    Action,
    PolicyEngine,
    PolicyRowError,
    Purpose,
    Resource,
    Role,
    default_model_path,
    default_policy_path,
    read_policy_file,
)
from lpr_policy.conditions import parse_conditions

CLAUSE = re.compile(r"(A\.[1-3](-[1-3])?|B\.[1-3](\.[a-f])?|C\.[1-8]|D\.[12]|E)")


def test_policy_csv_parses_into_known_vocabulary() -> None:
    rows = read_policy_file(default_policy_path())
    p_rows = [fields for ptype, *fields in rows if ptype == "p"]
    assert p_rows, "baseline policy is empty"
    for subject, agency, resource, action, conditions, rule in p_rows:
        assert subject in set(Role), subject
        assert agency == "*"
        assert Action(action) in PERMISSIONS[Resource(resource)], (resource, action)
        parse_conditions(conditions)
        clause, _, name = rule.partition(":")
        assert CLAUSE.fullmatch(clause), rule
        assert name


def test_rule_ids_are_unique() -> None:
    rules = [row[-1] for row in read_policy_file(default_policy_path()) if row[0] == "p"]
    assert len(rules) == len(set(rules))


def test_every_known_permission_is_granted_to_some_role() -> None:
    granted = {(row[3], row[4]) for row in read_policy_file(default_policy_path()) if row[0] == "p"}
    known = {
        (resource.value, action.value)
        for resource, actions in PERMISSIONS.items()
        for action in actions
    }
    assert known - granted == set()


def test_model_conf_is_packaged_with_the_library() -> None:
    text = default_model_path().read_text(encoding="utf-8")
    assert "r = sub, dom, obj, act, env" in text
    assert "g = _, _, _" in text


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param(
            "p, officer, *, plates, read, , A.1-2:x", "unknown permission", id="unknown-resource"
        ),
        pytest.param(
            "p, officer, *, reads, purge, , A.1-2:x", "unknown permission", id="unknown-action"
        ),
        pytest.param(
            "p, officer, *, reads, read, magic, A.1-2:x",
            "unknown condition",
            id="unknown-condition",
        ),
        pytest.param(
            "p, officer, *, reads, read, purpose, no-clause",
            "CLAUSE:name",
            id="rule-without-clause",
        ),
        pytest.param("p, officer, *, reads, read", "p row needs", id="short-row"),
        pytest.param("g, user:1, auditor", "g row needs", id="g-row-without-agency"),
        pytest.param("x, a, b", "unknown ptype", id="unknown-ptype"),
    ],
)
def test_malformed_policy_file_is_refused(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "policy.csv"
    path.write_text(f"# comment\n\n{line}\n", encoding="utf-8")
    with pytest.raises(PolicyRowError, match=message):
        PolicyEngine.from_files(policy_path=path)


def test_vague_purpose_cannot_be_administered() -> None:
    with pytest.raises(ValueError, match="vague"):
        Purpose("other", "Other")
