"""The in-memory hot-list match index."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta

import pytest

from lpr_common.plates import InvalidPlate, OcrEquivalence
from lpr_hotlist.matching import EditKind, IndexEntry, MatchIndex, MatchRule


def entry(
    entry_id: int,
    plate: str | None = None,
    *,
    pattern: str | None = None,
    state: str | None = None,
    list_priority: int = 50,
    allow_one_edit: bool = False,
    effective_from: datetime | None = None,
    expires_at: datetime | None = None,
) -> IndexEntry:
    return IndexEntry(
        entry_id=entry_id,
        list_id="L",
        plate=plate,
        pattern=pattern,
        state=state,
        list_priority=list_priority,
        allow_one_edit=allow_one_edit,
        effective_from=effective_from,
        expires_at=expires_at,
    )


def test_exact_read_matches_and_says_so() -> None:
    index = MatchIndex.build([entry(1, "ABC123"), entry(2, "XYZ789")])
    [match] = index.match("abc-123")
    assert match.entry_id == 1
    assert match.rule is MatchRule.EXACT
    assert match.explanation == "read ABC123 matched ABC123 exactly"


def test_ocr_equivalent_read_explains_the_substitution() -> None:
    index = MatchIndex.build([entry(1, "ABC123")])
    [match] = index.match("ABC1Z3")
    assert match.rule is MatchRule.OCR_EQUIVALENT
    assert match.explanation == "read ABC1Z3 matched ABC123 (Z≈2)"
    assert [(s.position, s.read, s.entry) for s in match.substitutions] == [(4, "Z", "2")]


def test_unrelated_read_matches_nothing() -> None:
    index = MatchIndex.build([entry(1, "ABC123", allow_one_edit=True)])
    assert index.match("XYZ789") == []
    # Two edits away is not a one-edit match.
    assert index.match("ABC199") == []


def test_one_edit_only_for_lists_that_allow_it() -> None:
    index = MatchIndex.build(
        [entry(1, "ABC123", allow_one_edit=False), entry(2, "KLM456", allow_one_edit=True)]
    )
    assert index.match("ABC124") == []
    [match] = index.match("KLM457")
    assert match.entry_id == 2
    assert match.rule is MatchRule.ONE_EDIT
    assert match.edit is EditKind.SUBSTITUTED


@pytest.mark.parametrize(
    ("read", "edit", "position", "explanation"),
    [
        (
            "ABC124",
            EditKind.SUBSTITUTED,
            5,
            "read ABC124 matched ABC123 (4 in place of 3 at position 6)",
        ),
        ("ABC13", EditKind.DROPPED, 4, "read ABC13 matched ABC123 (2 missing at position 5)"),
        ("ABC1293", EditKind.ADDED, 5, "read ABC1293 matched ABC123 (extra 9 at position 6)"),
        (
            "A8C124",
            EditKind.SUBSTITUTED,
            5,
            "read A8C124 matched ABC123 (4 in place of 3 at position 6; 8≈B)",
        ),
        ("A8C13", EditKind.DROPPED, 4, "read A8C13 matched ABC123 (2 missing at position 5; 8≈B)"),
    ],
)
def test_one_edit_kinds_are_explained(
    read: str, edit: EditKind, position: int, explanation: str
) -> None:
    index = MatchIndex.build([entry(1, "ABC123", allow_one_edit=True)])
    [match] = index.match(read)
    assert match.rule is MatchRule.ONE_EDIT
    assert match.edit is edit
    assert match.edit_position == position
    assert match.explanation == explanation


def test_wildcard_patterns_match_with_explanation() -> None:
    index = MatchIndex.build(
        [
            entry(1, pattern="AB?12*"),
            entry(2, pattern="*789"),
            entry(3, pattern="?Q?"),  # neither prefix nor suffix literal
        ]
    )
    [match] = index.match("ABX12Z9")
    assert match.rule is MatchRule.WILDCARD
    assert match.matched == "AB?12*"
    assert match.explanation == "read ABX12Z9 matched pattern AB?12*"
    [match] = index.match("A8X12")
    assert match.explanation == "read A8X12 matched pattern AB?12* (8≈B)"
    assert [m.entry_id for m in index.match("7KL789")] == [2]
    assert [m.entry_id for m in index.match("A0B")] == [3]
    assert index.match("AB12") == []
    assert index.match("XYZ788") == []


def test_ranking_rule_first_then_state_then_priority() -> None:
    index = MatchIndex.build(
        [
            entry(1, "ABC124", list_priority=0, allow_one_edit=True),
            entry(2, pattern="ABC*", list_priority=0),
            entry(3, "A8C123", list_priority=0),
            entry(4, "ABC123", list_priority=90),
            entry(5, "ABC123", list_priority=10),
            entry(6, "ABC123", list_priority=0, state="TX"),
        ]
    )
    ranked = index.match("ABC123", "CA")
    assert [m.entry_id for m in ranked] == [5, 4, 6, 3, 2, 1]
    assert [m.rule for m in ranked] == [
        MatchRule.EXACT,
        MatchRule.EXACT,
        MatchRule.EXACT,
        MatchRule.OCR_EQUIVALENT,
        MatchRule.WILDCARD,
        MatchRule.ONE_EDIT,
    ]
    assert ranked[2].state_matches is False
    assert ranked[0].state_matches is None
    assert [m.entry_id for m in index.match("ABC123", "CA", require_state_match=True)][:2] == [5, 4]
    assert 6 not in [m.entry_id for m in index.match("ABC123", "CA", require_state_match=True)]


def test_one_entry_reported_once_with_its_strongest_rule() -> None:
    index = MatchIndex.build([entry(1, "ABC123", pattern="AB*", allow_one_edit=True)])
    [match] = index.match("ABC123")
    assert match.rule is MatchRule.EXACT


def test_short_plates_do_not_take_part_in_one_edit() -> None:
    index = MatchIndex.build([entry(1, "AB1", allow_one_edit=True)])
    assert index.match("AB2") == []
    assert index.match("AB1")[0].rule is MatchRule.EXACT


def test_entries_out_of_force_are_skipped_when_asked() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    index = MatchIndex.build(
        [
            entry(1, "ABC123", expires_at=now - timedelta(days=1)),
            entry(2, "ABC123", effective_from=now + timedelta(days=1)),
            entry(
                3,
                "ABC123",
                effective_from=now - timedelta(days=1),
                expires_at=now + timedelta(days=1),
            ),
        ]
    )
    assert [m.entry_id for m in index.match("ABC123", at=now)] == [3]
    assert len(index.match("ABC123")) == 3


def test_bad_entries_are_rejected_not_fatal() -> None:
    index = MatchIndex.build(
        [entry(1, "ab-123"), entry(2, "AB#1"), entry(3, pattern="**"), entry(4)]
    )
    assert len(index) == 1
    assert index.match("AB123")[0].entry_id == 1
    assert sorted(r.entry_id for r in index.rejected) == [2, 3, 4]


def test_invalid_read_raises() -> None:
    index = MatchIndex.build([entry(1, "ABC123")])
    with pytest.raises(InvalidPlate):
        index.match("AB#123")


def test_custom_equivalence_changes_what_is_equivalent() -> None:
    entries = [entry(1, "ABC123")]
    assert MatchIndex.build(entries).match("ABC1Z3")
    assert MatchIndex.build(entries, equivalence=OcrEquivalence(["0O"])).match("ABC1Z3") == []


def test_new_index_does_not_change_the_old_one() -> None:
    old = MatchIndex.build([entry(1, "ABC123")], version=1)
    new = MatchIndex.build([entry(2, "XYZ789")], version=2)
    assert [m.entry_id for m in old.match("ABC123")] == [1]
    assert new.match("ABC123") == []
    assert (old.version, new.version) == (1, 2)


def _brute_force(entries: list[IndexEntry], read: str, eq: OcrEquivalence) -> set[int]:
    canon = eq.canonical(read)
    hits: set[int] = set()
    for e in entries:
        assert e.plate is not None
        c = eq.canonical(e.plate)
        if c == canon or (
            e.allow_one_edit and len(c) >= 4 and len(canon) >= 3 and _one_edit(c, canon)
        ):
            hits.add(int(e.entry_id))
    return hits


def _one_edit(a: str, b: str) -> bool:
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    if abs(len(a) - len(b)) != 1:
        return False
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def test_index_agrees_with_brute_force() -> None:
    rng = random.Random(7)
    alphabet = "ABCZ2O0815"  # small alphabet: many near neighbours and OCR collisions
    entries = [
        entry(i, "".join(rng.choices(alphabet, k=rng.choice((4, 5, 6)))), allow_one_edit=i % 2 == 0)
        for i in range(400)
    ]
    index = MatchIndex.build(entries)
    eq = index.equivalence
    for _ in range(300):
        read = "".join(rng.choices(alphabet + string.digits, k=rng.choice((3, 4, 5, 6, 7))))
        got = {int(m.entry_id) for m in index.match(read)}
        assert got == _brute_force(entries, read, eq), read
        for m in index.match(read):
            assert m.explanation.startswith(f"read {read} matched ")
