"""Hot-list matching: the immutable in-memory index that every read is matched against."""

from lpr_hotlist.matching.index import (
    EditKind,
    EntryId,
    IndexEntry,
    Match,
    MatchIndex,
    MatchRule,
    Rejected,
)

__all__ = [
    "EditKind",
    "EntryId",
    "IndexEntry",
    "Match",
    "MatchIndex",
    "MatchRule",
    "Rejected",
]
