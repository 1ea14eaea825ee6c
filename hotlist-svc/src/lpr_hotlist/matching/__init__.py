"""Hot-list matching: the immutable in-memory index that every read is matched against."""

from lpr_hotlist.matching.index import (
    MIN_ONE_EDIT_LENGTH,
    EditKind,
    EntryId,
    IndexEntry,
    Match,
    MatchIndex,
    MatchRule,
    Rejected,
)

__all__ = [
    "MIN_ONE_EDIT_LENGTH",
    "EditKind",
    "EntryId",
    "IndexEntry",
    "Match",
    "MatchIndex",
    "MatchRule",
    "Rejected",
]
