"""Chain verification: find the first broken link and say what was done to the log.

Records are walked in ``seq`` order. Each record must carry the next ``seq``, link to the
stored hash of the record before it (record 1 to the genesis hash), and carry the hash of its
own content. The first place where this fails is reported with one of four kinds:

- ``altered``: a record's content, link or hash was changed. When the attacker also recomputed
  the row's own hash, the row itself looks sound and only the next row's ``prev_hash`` still
  names the old hash; the report then blames the changed row, not the next one.
- ``deleted``: records are missing: a gap in ``seq``, records after the last one that a signed
  checkpoint (or ``expected_range``) says exist, or a row sealed with a higher ``seq`` than it
  carries (rows removed and the rest renumbered).
- ``inserted``: an extra record: two rows with one ``seq``, or a row the next row links past.
- ``reordered``: the rows are all there but in the wrong places: a row links to one that comes
  after it, or a row sits between two rows that link to each other.

The kind is the simplest explanation of what is seen; the ``seq`` is where the evidence is.

Signed checkpoints are then checked: each signature against the known public keys, and each
signed hash against the stored hash of the record at that ``seq``. A valid checkpoint that
disagrees with the chain means the chain was rewritten (all hashes recomputed) since it was
signed. ``attested_through`` is the highest ``seq`` vouched for by a valid, matching checkpoint.

Limits: the last record altered with its hash recomputed, or the last records deleted, are
seen only against a later checkpoint or a known ``expected_range`` end, so sign checkpoints
often (a signature costs microseconds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from operator import attrgetter

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lpr_audit.chain.canonical import CanonicalEncodingError, JsonValue
from lpr_audit.chain.checkpoints import Checkpoint, key_id, verify_checkpoint
from lpr_audit.chain.records import GENESIS_HASH, ChainHead, ChainRecord, record_hash

# How far a renumbered row's original seq is searched for; each step costs one hash.
_RENUMBERING_SEARCH = 1024


class TamperKind(StrEnum):
    """What was done to the chain at the first broken link."""

    ALTERED = "altered"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first broken link: where, what kind of tampering, and the evidence in words."""

    seq: int
    kind: TamperKind
    detail: str


class CheckpointProblemKind(StrEnum):
    """Why a checkpoint does not vouch for the chain."""

    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    MISMATCH = "mismatch"
    NOT_COVERED = "not_covered"


@dataclass(frozen=True, slots=True)
class CheckpointProblem:
    """A checkpoint that failed, or (``not_covered``) records that no checkpoint vouches for."""

    seq: int
    kind: CheckpointProblemKind
    key_id: str
    detail: str


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """The outcome of verifying a chain or a range of it."""

    ok: bool
    checked: int
    first_seq: int | None
    last_seq: int | None
    head: ChainHead | None
    first_break: ChainBreak | None
    checkpoint_problems: tuple[CheckpointProblem, ...]
    checkpoints_verified: int
    attested_through: int | None
    key_ids: tuple[str, ...]

    @property
    def fully_attested(self) -> bool:
        """Whether a valid checkpoint vouches for every record checked."""
        return (
            self.last_seq is not None
            and self.attested_through is not None
            and self.attested_through >= self.last_seq
        )

    def to_json(self) -> dict[str, JsonValue]:
        """Return the report as plain JSON, for the CLI and the API."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head": None if self.head is None else {"seq": self.head.seq, "hash": self.head.hash},
            "first_break": None
            if self.first_break is None
            else {
                "seq": self.first_break.seq,
                "kind": self.first_break.kind.value,
                "detail": self.first_break.detail,
            },
            "checkpoint_problems": [
                {"seq": p.seq, "kind": p.kind.value, "key_id": p.key_id, "detail": p.detail}
                for p in self.checkpoint_problems
            ],
            "checkpoints_verified": self.checkpoints_verified,
            "attested_through": self.attested_through,
            "fully_attested": self.fully_attested,
            "key_ids": list(self.key_ids),
        }


def verify_chain(
    records: Iterable[ChainRecord],
    checkpoints: Iterable[Checkpoint],
    public_keys: Iterable[Ed25519PublicKey],
    expected_range: tuple[int, int] | None = None,
    *,
    anchor: ChainHead | None = None,
    require_coverage: bool = False,
) -> VerificationReport:
    """Verify records and checkpoints; report the first broken link and checkpoint problems.

    Args:
        records: the stored records, in any order (they are sorted by ``seq``).
        checkpoints: the stored checkpoints; all signatures are checked.
        public_keys: the keys trusted to sign checkpoints (several, across key rotations).
        expected_range: ``(first, last)`` seq that must all be present; records outside it
            are ignored. Without it the chain must start at seq 1.
        anchor: the head just before the range (``seq == first - 1``), to check the first
            record's link when the range does not start at 1. Without it a valid checkpoint
            at ``first - 1`` is used, if any; otherwise that one link is taken on trust.
        require_coverage: report records after the last valid checkpoint as a problem.

    Raises:
        ValueError: the range or the anchor is inconsistent.
    """
    start, end = expected_range if expected_range is not None else (1, None)
    if start < 1 or (end is not None and end < start):
        raise ValueError(f"invalid expected range {expected_range}")
    if anchor is not None and anchor.seq != start - 1:
        raise ValueError(f"anchor seq {anchor.seq} does not precede range start {start}")

    trusted = {key_id(key): key for key in public_keys}
    problems: list[CheckpointProblem] = []
    valid: list[Checkpoint] = []
    for checkpoint in sorted(checkpoints, key=attrgetter("seq")):
        key = trusted.get(checkpoint.key_id)
        if key is None:
            problems.append(
                CheckpointProblem(
                    checkpoint.seq,
                    CheckpointProblemKind.UNKNOWN_KEY,
                    checkpoint.key_id,
                    f"signed by key {checkpoint.key_id}, which is not a trusted key",
                )
            )
        elif not verify_checkpoint(checkpoint, key):
            problems.append(
                CheckpointProblem(
                    checkpoint.seq,
                    CheckpointProblemKind.BAD_SIGNATURE,
                    checkpoint.key_id,
                    "signature does not verify: the checkpoint was forged or changed",
                )
            )
        else:
            valid.append(checkpoint)

    if start == 1:
        anchor_hash: str | None = GENESIS_HASH
    elif anchor is not None:
        anchor_hash = anchor.hash
    else:
        anchor_hash = next((c.hash for c in valid if c.seq == start - 1), None)

    by_seq = attrgetter("seq")
    if end is not None:
        upper = end
        ordered: list[ChainRecord] = sorted(
            (r for r in records if start <= r.seq <= upper), key=by_seq
        )
    else:
        ordered = sorted(records, key=by_seq)

    in_range = [c for c in valid if c.seq >= start and (end is None or c.seq <= end)]
    wanted = {c.seq for c in in_range}
    stored_at: dict[int, str] = {}
    link_break = _walk(ordered, start, anchor_hash, wanted, stored_at)

    last_seq = ordered[-1].seq if ordered else None
    claimed_end = end if end is not None else max((c.seq for c in valid), default=None)
    if link_break is None and claimed_end is not None:
        present_through = last_seq if last_seq is not None else start - 1
        if present_through < claimed_end:
            reason = (
                f"the expected range ends at {end}"
                if end is not None
                else f"a signed checkpoint vouches for seq {claimed_end}"
            )
            missing = (
                f"record {claimed_end} is missing"
                if present_through + 1 == claimed_end
                else f"records {present_through + 1}..{claimed_end} are missing"
            )
            link_break = ChainBreak(present_through + 1, TamperKind.DELETED, f"{missing}; {reason}")

    attested: int | None = None
    verified_keys: set[str] = set()
    mismatch_break: ChainBreak | None = None
    for checkpoint in in_range:
        stored = stored_at.get(checkpoint.seq)
        if stored is None:
            continue  # the record is gone; reported as a deletion
        if stored == checkpoint.hash:
            attested = checkpoint.seq
            verified_keys.add(checkpoint.key_id)
            continue
        since = attested if attested is not None else start - 1
        problems.append(
            CheckpointProblem(
                checkpoint.seq,
                CheckpointProblemKind.MISMATCH,
                checkpoint.key_id,
                f"signed hash {checkpoint.hash[:16]}… differs from the stored hash "
                f"{stored[:16]}… of record {checkpoint.seq}",
            )
        )
        if mismatch_break is None:
            mismatch_break = ChainBreak(
                checkpoint.seq,
                TamperKind.ALTERED,
                f"record {checkpoint.seq} no longer has the hash signed at "
                f"{checkpoint.created_at.isoformat()}: records after seq {since} were "
                "rewritten with recomputed hashes",
            )

    first_break = link_break
    if mismatch_break is not None and (first_break is None or mismatch_break.seq < first_break.seq):
        first_break = mismatch_break

    if require_coverage and last_seq is not None and (attested is None or attested < last_seq):
        uncovered_from = attested + 1 if attested is not None else ordered[0].seq
        problems.append(
            CheckpointProblem(
                uncovered_from,
                CheckpointProblemKind.NOT_COVERED,
                "",
                f"records {uncovered_from}..{last_seq} are not covered by a valid checkpoint",
            )
        )

    problems.sort(key=attrgetter("seq"))
    return VerificationReport(
        ok=first_break is None and not problems,
        checked=len(ordered),
        first_seq=ordered[0].seq if ordered else None,
        last_seq=last_seq,
        head=ChainHead(ordered[-1].seq, ordered[-1].hash) if ordered else None,
        first_break=first_break,
        checkpoint_problems=tuple(problems),
        checkpoints_verified=sum(1 for c in in_range if stored_at.get(c.seq) == c.hash),
        attested_through=attested,
        key_ids=tuple(sorted(verified_keys)),
    )


def _walk(
    ordered: Sequence[ChainRecord],
    start: int,
    anchor_hash: str | None,
    wanted: set[int],
    stored_at: dict[int, str],
) -> ChainBreak | None:
    """Check every link and hash; fill ``stored_at`` for checkpoint seqs; return the first break."""
    first_break: ChainBreak | None = None
    expected_prev = anchor_hash
    index: dict[str, int] = {}

    def hash_index() -> dict[str, int]:
        # Only needed once something is wrong, so built on demand.
        if not index:
            for position in range(len(ordered) - 1, -1, -1):
                index[ordered[position].hash] = position
        return index

    for position, record in enumerate(ordered):
        seq = record.seq
        if seq in wanted and seq not in stored_at:
            stored_at[seq] = record.hash
        if first_break is None:
            first_break = _check(ordered, position, start, expected_prev, hash_index)
        expected_prev = record.hash
    return first_break


def _computed_hash(record: ChainRecord, seq: int | None = None) -> str | None:
    try:
        return record_hash(record.seq if seq is None else seq, record.prev_hash, record.fields)
    except CanonicalEncodingError:
        return None


def _check(
    ordered: Sequence[ChainRecord],
    position: int,
    start: int,
    expected_prev: str | None,
    hash_index: Callable[[], dict[str, int]],
) -> ChainBreak | None:
    record = ordered[position]
    previous = ordered[position - 1] if position else None
    expected_seq = previous.seq + 1 if previous is not None else start
    self_ok = _computed_hash(record) == record.hash
    link_ok = expected_prev is None or record.prev_hash == expected_prev

    if previous is not None and record.seq == previous.seq:
        return ChainBreak(record.seq, TamperKind.INSERTED, f"two records carry seq {record.seq}")
    if record.seq < expected_seq:
        return ChainBreak(
            record.seq, TamperKind.INSERTED, f"seq {record.seq} is before the chain starts"
        )
    if record.seq > expected_seq:
        if link_ok and expected_prev is not None:
            return ChainBreak(
                record.seq,
                TamperKind.ALTERED,
                f"record links to seq {expected_seq - 1} but carries seq {record.seq}: "
                "its seq was changed",
            )
        missing = (
            f"record {expected_seq} is missing"
            if record.seq == expected_seq + 1
            else f"records {expected_seq}..{record.seq - 1} are missing"
        )
        return ChainBreak(expected_seq, TamperKind.DELETED, missing)
    if link_ok:
        if self_ok:
            return None
        return ChainBreak(
            record.seq,
            TamperKind.ALTERED,
            "the stored hash does not match the record's content",
        )
    return _classify_link_break(ordered, position, expected_prev, self_ok, hash_index)


def _classify_link_break(
    ordered: Sequence[ChainRecord],
    position: int,
    expected_prev: str | None,
    self_ok: bool,
    hash_index: Callable[[], dict[str, int]],
) -> ChainBreak:
    record = ordered[position]
    target = hash_index().get(record.prev_hash)
    if target is not None and target > position:
        return ChainBreak(
            record.seq,
            TamperKind.REORDERED,
            f"record {record.seq} links to record {ordered[target].seq}, which comes after it",
        )
    if target is not None and target < position - 1:
        skipped_from, skipped_to = ordered[target + 1].seq, ordered[position - 1].seq
        return ChainBreak(
            skipped_from,
            TamperKind.INSERTED,
            f"record {record.seq} links to record {ordered[target].seq}: records "
            f"{skipped_from}..{skipped_to} are not part of the chain",
        )
    following = ordered[position + 1] if position + 1 < len(ordered) else None
    if following is not None and following.prev_hash == expected_prev:
        return ChainBreak(
            record.seq,
            TamperKind.REORDERED,
            f"record {following.seq} links to the record before {record.seq}: the two were swapped",
        )
    if not self_ok:
        for shift in range(1, _RENUMBERING_SEARCH + 1):
            if _computed_hash(record, record.seq + shift) == record.hash:
                return ChainBreak(
                    record.seq,
                    TamperKind.DELETED,
                    f"record {record.seq} was sealed as seq {record.seq + shift}: {shift} "
                    "record(s) before it were deleted and the rest renumbered",
                )
        return ChainBreak(
            record.seq,
            TamperKind.ALTERED,
            "neither the record's link nor its hash matches its content",
        )
    if position == 0:
        return ChainBreak(
            record.seq, TamperKind.ALTERED, "the first record does not link to the chain's start"
        )
    previous = ordered[position - 1]
    return ChainBreak(
        previous.seq,
        TamperKind.ALTERED,
        f"record {record.seq} links to a hash record {previous.seq} no longer has: "
        f"record {previous.seq} was changed and its hash recomputed",
    )
