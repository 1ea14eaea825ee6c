"""In-memory hot-list match index.

A :class:`MatchIndex` is built once from the active entries and never changes afterwards:
the service builds a new one when a list version changes and swaps one reference, so a
query always sees one consistent version and needs no lock.

How a read is matched (``n`` = read length):

- **exact / OCR-equivalent**: one dictionary lookup keyed by the read's canonical form
  (:meth:`lpr_common.plates.OcrEquivalence.canonical`); an entry whose plate equals the read
  is exact, the others are OCR-equivalent.
- **wildcard**: patterns are few, so they are bucketed by their first one to three literal
  characters (or last, for patterns that start with a wildcard); a read only tries the
  patterns of its own buckets, each a precompiled regular expression.
- **one edit** (only entries of lists that allow it, and only plates of at least
  :data:`~lpr_common.plates.MIN_EDIT_LENGTH` characters): the symmetric-delete method on canonical forms.
  Each such entry's canonical form is stored under every string obtained by deleting one of
  its characters. A read then needs ``2n + 1`` lookups: its own canonical form among the
  deletions (the read dropped a character), and each of its own deletions among the
  entries (the read has an extra character) and among the deletions (one character
  substituted, confirmed by comparing the two strings).

Ranking: exact, then OCR-equivalent, then wildcard, then one edit; within a rule, entries
whose state agrees with the read's before those whose state differs, then by list priority
(0 is the highest, as in Genetec and NCIC-fed systems), then substitution before a dropped
or added character.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Final, TypeAlias
from uuid import UUID

from lpr_common.plates import (
    DEFAULT_OCR_EQUIVALENCE,
    MIN_EDIT_LENGTH,
    InvalidPattern,
    InvalidPlate,
    OcrEquivalence,
    PlatePattern,
    Substitution,
    is_pattern,
    normalize_plate,
    parse_pattern,
    pattern_regex,
)

EntryId: TypeAlias = UUID | int | str


_NORMALISED_PLATE: Final = re.compile(r"[A-Z0-9]{1,10}")
_PREFIX_KEY_LENGTH: Final = 3


class MatchRule(StrEnum):
    """Which rule made a read match an entry, strongest first."""

    EXACT = "exact"
    OCR_EQUIVALENT = "ocr_equivalent"
    WILDCARD = "wildcard"
    ONE_EDIT = "one_edit"


class EditKind(StrEnum):
    """For a one-edit match, how the read differs from the entry."""

    SUBSTITUTED = "substituted"
    """One character of the read differs from the entry's."""
    DROPPED = "dropped"
    """The read lacks one character of the entry."""
    ADDED = "added"
    """The read has one character the entry does not."""


_RULE_RANK: Final = {
    MatchRule.EXACT: 0,
    MatchRule.OCR_EQUIVALENT: 1,
    MatchRule.WILDCARD: 2,
    MatchRule.ONE_EDIT: 3,
}
_EDIT_RANK: Final = {None: 0, EditKind.SUBSTITUTED: 0, EditKind.DROPPED: 1, EditKind.ADDED: 1}


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One active hot-list entry as the index needs it.

    Attributes:
        entry_id: The entry's id.
        list_id: The hot list's id.
        plate: The plate; normalised on build. ``None`` for a pattern-only entry.
        state: Issuing state code, ``None`` when unknown.
        pattern: A partial plate with ``*``/``?``; a pattern without wildcards is
            treated as a plate.
        list_priority: The list's priority, 0 highest; breaks ties within a rule.
        allow_one_edit: Whether the list allows one-character-edit matches.
        effective_from: Optional start; honoured only when :meth:`MatchIndex.match` gets ``at``.
        expires_at: Optional end (exclusive); honoured only when ``at`` is given.
    """

    entry_id: EntryId
    list_id: EntryId
    plate: str | None = None
    state: str | None = None
    pattern: str | None = None
    list_priority: int = 50
    allow_one_edit: bool = False
    effective_from: datetime | None = None
    expires_at: datetime | None = None


class Match:
    """One entry a read matched, with the rule that fired and why.

    Built by :meth:`MatchIndex.match`; treat as read-only. The explanation and the
    substitutions are worked out only when asked for, since most matches of a busy camera
    are ranked and dropped before anyone reads them.

    Attributes:
        entry: The matched entry.
        rule: The rule that fired.
        read: The normalised read.
        edit: For a one-edit match, how the read differs; otherwise ``None``.
        state_matches: Whether the read's state equals the entry's; ``None`` if either is
            unknown.
        rank: Sort key, smaller is stronger (see :meth:`MatchIndex.match`).
    """

    __slots__ = (
        "_equivalence",
        "_position",
        "_substitutions",
        "edit",
        "entry",
        "rank",
        "read",
        "rule",
        "state_matches",
    )

    def __init__(
        self,
        entry: IndexEntry,
        rule: MatchRule,
        read: str,
        *,
        state_matches: bool | None,
        equivalence: OcrEquivalence,
        edit: EditKind | None = None,
        position: int | None = None,
        substitutions: tuple[Substitution, ...] | None = None,
    ) -> None:
        """Record a match; ``position`` is required for substituted and added edits."""
        self.entry = entry
        self.rule = rule
        self.read = read
        self.edit = edit
        self.state_matches = state_matches
        self.rank = (
            _RULE_RANK[rule],
            1 if state_matches is False else 0,
            entry.list_priority,
            _EDIT_RANK[edit],
        )
        self._equivalence = equivalence
        self._position = position
        self._substitutions = substitutions

    @property
    def entry_id(self) -> EntryId:
        """The matched entry's id."""
        return self.entry.entry_id

    @property
    def list_id(self) -> EntryId:
        """The matched entry's hot list."""
        return self.entry.list_id

    @property
    def matched(self) -> str:
        """The entry's plate, or its pattern for a wildcard match."""
        if self.rule is MatchRule.WILDCARD:
            assert self.entry.pattern is not None
            return self.entry.pattern
        assert self.entry.plate is not None
        return self.entry.plate

    @property
    def edit_position(self) -> int | None:
        """For a one-edit match, the 0-based position of the edit.

        In the read for a substituted or added character, in the entry's plate for a
        dropped one.
        """
        if self.edit is EditKind.DROPPED and self._position is None:
            self._position = _dropped_position(self._equivalence, self.read, self.matched)
        return self._position

    @property
    def substitutions(self) -> tuple[Substitution, ...]:
        """OCR-equivalent characters the match relied on, at positions in the read."""
        if self._substitutions is None:
            self._substitutions = self._find_substitutions()
        return self._substitutions

    def _find_substitutions(self) -> tuple[Substitution, ...]:
        read, plate = self.read, self.matched
        if self.edit is None:  # exact or OCR-equivalent: same length, all differences are OCR
            return _subs_except(read, plate, -1)
        position = self.edit_position
        assert position is not None
        if self.edit is EditKind.SUBSTITUTED:
            return _subs_except(read, plate, position)
        if self.edit is EditKind.ADDED:
            return _shifted_subs(read, plate, position, longer_is_entry=False)
        return _shifted_subs(plate, read, position, longer_is_entry=True)

    @property
    def explanation(self) -> str:
        """What the officer sees, e.g. ``"read ABC1Z3 matched ABC123 (Z≈2)"``."""
        read, matched, subs = self.read, self.matched, self.substitutions
        if self.rule is MatchRule.EXACT:
            return f"read {read} matched {matched} exactly"
        if self.rule is MatchRule.OCR_EQUIVALENT:
            return f"read {read} matched {matched} ({_fmt_subs(subs)})"
        if self.rule is MatchRule.WILDCARD:
            detail = f" ({_fmt_subs(subs)})" if subs else ""
            return f"read {read} matched pattern {matched}{detail}"
        position = self.edit_position
        assert position is not None
        if self.edit is EditKind.SUBSTITUTED:
            what = f"{read[position]} in place of {matched[position]} at position {position + 1}"
        elif self.edit is EditKind.ADDED:
            what = f"extra {read[position]} at position {position + 1}"
        else:
            what = f"{matched[position]} missing at position {position + 1}"
        detail = what if not subs else f"{what}; {_fmt_subs(subs)}"
        return f"read {read} matched {matched} ({detail})"

    def __repr__(self) -> str:
        return f"Match(entry_id={self.entry_id!r}, rule={self.rule.value}, {self.explanation!r})"


@dataclass(frozen=True, slots=True)
class Rejected:
    """An entry left out of the index and why."""

    entry_id: EntryId
    reason: str


@dataclass(frozen=True, slots=True)
class _PatternSlot:
    entry: IndexEntry
    pattern: PlatePattern
    regex: re.Pattern[str]  # literals as capture groups of their equivalent characters


def _add(bucket: dict[str, list[IndexEntry]], key: str, entry: IndexEntry) -> None:
    entries = bucket.get(key)
    if entries is None:
        bucket[key] = [entry]
    else:
        entries.append(entry)


def _fmt_subs(subs: Sequence[Substitution]) -> str:
    return ", ".join(str(sub) for sub in subs)


class MatchIndex:
    """Immutable index of active hot-list entries; build with :meth:`build`.

    Safe to query from many threads or tasks at once. To update, build a new index and swap
    the reference the service holds.
    """

    __slots__ = (
        "_by_canonical",
        "_deletions",
        "_equivalence",
        "_fuzzy_by_canonical",
        "_general_patterns",
        "_pattern_count",
        "_prefix_patterns",
        "_rejected",
        "_size",
        "_suffix_patterns",
        "_table",
        "version",
    )

    def __init__(self) -> None:
        """Create an empty index; prefer :meth:`build`."""
        self._equivalence: OcrEquivalence = DEFAULT_OCR_EQUIVALENCE
        self._table: dict[int, str] = {}
        self._by_canonical: dict[str, list[IndexEntry]] = {}
        self._fuzzy_by_canonical: dict[str, list[IndexEntry]] = {}
        # Deleted-one-character key -> canonical form (a str when only one, else a list);
        # most keys have one, and a bare str saves a list per key at a million entries.
        self._deletions: dict[str, str | list[str]] = {}
        self._prefix_patterns: dict[str, list[_PatternSlot]] = {}
        self._suffix_patterns: dict[str, list[_PatternSlot]] = {}
        self._general_patterns: list[_PatternSlot] = []
        self._pattern_count = 0
        self._size = 0
        self._rejected: tuple[Rejected, ...] = ()
        self.version: str | int | None = None

    @classmethod
    def build(
        cls,
        entries: Iterable[IndexEntry],
        *,
        equivalence: OcrEquivalence = DEFAULT_OCR_EQUIVALENCE,
        version: str | int | None = None,
    ) -> MatchIndex:
        """Build an index.

        Entries with an invalid plate or pattern are left out and listed in
        :attr:`rejected` rather than failing the whole build.

        Args:
            entries: The active entries.
            equivalence: OCR classes used for canonical forms.
            version: A label the service can use to tell indexes apart.
        """
        index = cls()
        index._equivalence = equivalence
        index.version = version
        canonical_of = equivalence.canonical
        by_canonical = index._by_canonical
        fuzzy = index._fuzzy_by_canonical
        deletions = index._deletions
        rejected: list[Rejected] = []
        fast_plate = _NORMALISED_PLATE.fullmatch
        size = 0
        for entry in entries:
            plate = entry.plate
            pattern_text = entry.pattern
            if pattern_text is not None and not is_pattern(pattern_text):
                # A "pattern" with no wildcard is a whole plate.
                plate, pattern_text = plate or pattern_text, None
            if plate is None and pattern_text is None:
                rejected.append(Rejected(entry.entry_id, "entry has neither plate nor pattern"))
                continue
            try:
                if plate is not None and fast_plate(plate) is None:
                    plate = normalize_plate(plate)
                pattern = None if pattern_text is None else parse_pattern(pattern_text)
            except (InvalidPlate, InvalidPattern) as error:
                rejected.append(Rejected(entry.entry_id, str(error)))
                continue
            if plate != entry.plate or (pattern is not None and pattern.text != entry.pattern):
                entry = replace(
                    entry, plate=plate, pattern=None if pattern is None else pattern.text
                )
            size += 1
            if pattern is not None:
                index._add_pattern(entry, pattern)
            if plate is None:
                continue
            canonical = canonical_of(plate)
            _add(by_canonical, canonical, entry)
            if entry.allow_one_edit and len(canonical) >= MIN_EDIT_LENGTH:
                if canonical not in fuzzy:
                    fuzzy[canonical] = [entry]
                    for i in range(len(canonical)):
                        key = canonical[:i] + canonical[i + 1 :]
                        held = deletions.get(key)
                        if held is None:
                            deletions[key] = canonical
                        elif isinstance(held, str):
                            if held != canonical:
                                deletions[key] = [held, canonical]
                        elif held[-1] != canonical:
                            # Repeated characters give the same key twice in a row.
                            held.append(canonical)
                else:
                    fuzzy[canonical].append(entry)
        index._size = size
        index._rejected = tuple(rejected)
        index._table = str.maketrans(
            {
                char: equivalence.representative(char)
                for cls_ in equivalence.classes
                for char in cls_
            }
        )
        return index

    def _add_pattern(self, entry: IndexEntry, pattern: PlatePattern) -> None:
        slot = _PatternSlot(entry, pattern, pattern_regex(pattern, self._equivalence, capture=True))
        self._pattern_count += 1
        canonical = self._equivalence.canonical
        prefix = pattern.literal_prefix()
        suffix = pattern.literal_suffix()
        if prefix:
            self._prefix_patterns.setdefault(canonical(prefix[:_PREFIX_KEY_LENGTH]), []).append(
                slot
            )
        elif suffix:
            self._suffix_patterns.setdefault(canonical(suffix[-_PREFIX_KEY_LENGTH:]), []).append(
                slot
            )
        else:
            self._general_patterns.append(slot)

    @property
    def equivalence(self) -> OcrEquivalence:
        """The OCR classes this index was built with."""
        return self._equivalence

    @property
    def rejected(self) -> tuple[Rejected, ...]:
        """Entries left out of the index, with the reason."""
        return self._rejected

    def __len__(self) -> int:
        return self._size

    def stats(self) -> dict[str, int]:
        """Sizes of the internal tables, for logs and the benchmark."""
        return {
            "entries": self._size,
            "canonical_keys": len(self._by_canonical),
            "one_edit_canonical_keys": len(self._fuzzy_by_canonical),
            "deletion_keys": len(self._deletions),
            "patterns": self._pattern_count,
            "rejected": len(self._rejected),
        }

    def match(
        self,
        plate: str,
        state: str | None = None,
        *,
        at: datetime | None = None,
        require_state_match: bool = False,
    ) -> list[Match]:
        """Match a read against every entry.

        Args:
            plate: The plate as read; normalised here.
            state: The read's state, if the reader gave one.
            at: If given, entries not in force at this time are skipped.
            require_state_match: Leave out entries whose state differs from ``state``
                (by default they are kept, ranked after those that agree, because readers
                often misread the state).

        Returns:
            Matches, strongest first; at most one per entry (its strongest).

        Raises:
            InvalidPlate: If the read is not a valid plate.
        """
        read = plate if _NORMALISED_PLATE.fullmatch(plate) else normalize_plate(plate)
        canonical = read.translate(self._table)
        read_state = (state.strip().upper() or None) if state is not None else None
        found: dict[EntryId, Match] = {}

        entries = self._by_canonical.get(canonical)
        if entries is not None:
            for entry in entries:
                if entry.plate == read:
                    self._keep(found, entry, MatchRule.EXACT, read, read_state, at)
                else:
                    self._keep(found, entry, MatchRule.OCR_EQUIVALENT, read, read_state, at)

        if self._pattern_count:
            self._match_patterns(found, read, canonical, read_state, at)

        n = len(canonical)
        if self._deletions and n >= MIN_EDIT_LENGTH - 1:
            self._match_one_edit(found, read, canonical, read_state, at)

        if not found:
            return []  # most reads hit nothing
        matches = [
            m for m in found.values() if not (require_state_match and m.state_matches is False)
        ]
        matches.sort(key=_rank_of)
        return matches

    def _match_one_edit(
        self,
        found: dict[EntryId, Match],
        read: str,
        canonical: str,
        read_state: str | None,
        at: datetime | None,
    ) -> None:
        fuzzy = self._fuzzy_by_canonical
        deletions = self._deletions
        n = len(canonical)
        seen = {canonical}
        # The read dropped a character: the read is one of the entry's deletions.
        held = deletions.get(canonical)
        if held is not None:
            for candidate in (held,) if isinstance(held, str) else held:
                if candidate not in seen:
                    seen.add(candidate)
                    for entry in fuzzy[candidate]:
                        self._keep_edit(found, entry, EditKind.DROPPED, read, read_state, at, None)
        if n < MIN_EDIT_LENGTH:
            return  # substituted needs an entry of n, added one of n - 1 characters
        keys = [canonical[:i] + canonical[i + 1 :] for i in range(n)]
        # Set intersections run in C; almost every read meets nothing here.
        added = fuzzy.keys() & keys
        shared = deletions.keys() & keys
        if not added and not shared:
            return
        for i, key in enumerate(keys):
            # The read has an extra character at i: the entry is one of the read's deletions.
            if key in added and key not in seen:
                seen.add(key)
                for entry in fuzzy[key]:
                    self._keep_edit(found, entry, EditKind.ADDED, read, read_state, at, i)
            if key not in shared:
                continue
            # One character substituted: a deletion shared at the same position.
            held = deletions[key]
            for candidate in (held,) if isinstance(held, str) else held:
                if (
                    candidate not in seen
                    and len(candidate) == n
                    and candidate[:i] == canonical[:i]
                    and candidate[i + 1 :] == canonical[i + 1 :]
                ):
                    seen.add(candidate)
                    for entry in fuzzy[candidate]:
                        self._keep_edit(found, entry, EditKind.SUBSTITUTED, read, read_state, at, i)

    def _match_patterns(
        self,
        found: dict[EntryId, Match],
        read: str,
        canonical: str,
        read_state: str | None,
        at: datetime | None,
    ) -> None:
        # Key slices spelled out for _PREFIX_KEY_LENGTH == 3; a set, so short reads do not
        # look up (and try) one bucket twice.
        prefixes = self._prefix_patterns.keys() & {canonical[:1], canonical[:2], canonical[:3]}
        suffixes = self._suffix_patterns.keys() & {canonical[-1:], canonical[-2:], canonical[-3:]}
        if not prefixes and not suffixes and not self._general_patterns:
            return
        candidates: list[_PatternSlot] = list(self._general_patterns)
        for key in prefixes:
            candidates.extend(self._prefix_patterns[key])
        for key in suffixes:
            candidates.extend(self._suffix_patterns[key])
        n = len(read)
        for slot in candidates:
            pattern = slot.pattern
            if n < pattern.min_length or (
                pattern.max_length is not None and n > pattern.max_length
            ):
                continue
            hit = slot.regex.fullmatch(read)
            if hit is None:
                continue
            subs = []
            literals = (char for char in pattern.text if char not in "*?")
            for group, literal in enumerate(literals, start=1):
                got = hit.group(group)
                if got != literal:
                    subs.append(Substitution(hit.start(group), got, literal))
            entry = slot.entry
            if at is not None and not _in_force(entry, at):
                continue
            self._offer(
                found,
                Match(
                    entry,
                    MatchRule.WILDCARD,
                    read,
                    state_matches=_state_matches(read_state, entry.state),
                    equivalence=self._equivalence,
                    substitutions=tuple(subs),
                ),
            )

    @staticmethod
    def _offer(found: dict[EntryId, Match], match: Match) -> None:
        held = found.get(match.entry.entry_id)
        if held is None or match.rank < held.rank:
            found[match.entry.entry_id] = match

    def _keep(
        self,
        found: dict[EntryId, Match],
        entry: IndexEntry,
        rule: MatchRule,
        read: str,
        read_state: str | None,
        at: datetime | None,
    ) -> None:
        if at is not None and not _in_force(entry, at):
            return
        self._offer(
            found,
            Match(
                entry,
                rule,
                read,
                state_matches=_state_matches(read_state, entry.state),
                equivalence=self._equivalence,
            ),
        )

    def _keep_edit(
        self,
        found: dict[EntryId, Match],
        entry: IndexEntry,
        edit: EditKind,
        read: str,
        read_state: str | None,
        at: datetime | None,
        read_position: int | None,
    ) -> None:
        if at is not None and not _in_force(entry, at):
            return
        self._offer(
            found,
            Match(
                entry,
                MatchRule.ONE_EDIT,
                read,
                state_matches=_state_matches(read_state, entry.state),
                equivalence=self._equivalence,
                edit=edit,
                position=read_position,
            ),
        )


def _in_force(entry: IndexEntry, at: datetime) -> bool:
    if entry.effective_from is not None and at < entry.effective_from:
        return False
    return entry.expires_at is None or at < entry.expires_at


def _rank_of(match: Match) -> tuple[int, int, int, int]:
    return match.rank


def _state_matches(read_state: str | None, entry_state: str | None) -> bool | None:
    if read_state is None or entry_state is None:
        return None
    return read_state == entry_state


def _subs_except(read: str, plate: str, skip: int) -> tuple[Substitution, ...]:
    """Differences between equal-length, canonically equal strings, ignoring one position."""
    return tuple(
        Substitution(i, r, e)
        for i, (r, e) in enumerate(zip(read, plate, strict=True))
        if i != skip and r != e
    )


def _shifted_subs(
    longer: str, shorter: str, position: int, *, longer_is_entry: bool
) -> tuple[Substitution, ...]:
    """Differences between ``longer`` without ``position`` and ``shorter``.

    Substitutions are reported read-first, at positions in the read.
    """
    trimmed = longer[:position] + longer[position + 1 :]
    subs: list[Substitution] = []
    for i, (a, b) in enumerate(zip(trimmed, shorter, strict=True)):
        if a == b:
            continue
        if longer_is_entry:
            subs.append(Substitution(i, b, a))
        else:
            subs.append(Substitution(i if i < position else i + 1, a, b))
    return tuple(subs)


def _dropped_position(equivalence: OcrEquivalence, read: str, plate: str) -> int:
    """The position in ``plate`` whose deletion makes it equivalent to ``read``."""
    canonical_read = equivalence.canonical(read)
    canonical_plate = equivalence.canonical(plate)
    for i in range(len(plate)):
        if canonical_plate[:i] + canonical_plate[i + 1 :] == canonical_read:
            return i
    raise AssertionError("dropped-character match without a matching deletion")
