"""Verification finds the first broken link and says what was done to the log.

Each test tampers with a sealed chain the way someone with direct database access could:
changing rows (with or without recomputing the row's own hash), deleting, inserting,
reordering, forging checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lpr_audit.chain import (
    GENESIS_HEAD,
    ChainHead,
    CheckpointProblemKind,
    SealedRecord,
    TamperKind,
    VerificationReport,
    key_id,
    link_batch,
    record_hash,
    sign_checkpoint,
    verify_chain,
)

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()


def events(count: int) -> list[dict[str, object]]:
    return [
        {
            "event_type": "search",
            "user_id": f"officer-{n % 7}",
            "agency": "CA0010000",
            "purpose": "investigation",
            "case_number": f"24-{n:05d}",
            "plate": f"7ABC{n:03d}",
            "outcome": "allowed" if n % 5 else "denied",
            "occurred_at": T0 + timedelta(seconds=n),
        }
        for n in range(count)
    ]


def chain(count: int = 20) -> list[SealedRecord]:
    records, _ = link_batch(GENESIS_HEAD, events(count))
    return records


def head_of(records: list[SealedRecord], seq: int) -> ChainHead:
    record = next(r for r in records if r.seq == seq)
    return ChainHead(record.seq, record.hash)


def rehashed(record: SealedRecord, **changes: object) -> SealedRecord:
    """Change a record and recompute its own hash, as a careful attacker would."""
    changed = dataclasses.replace(record, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(
        changed, hash=record_hash(changed.seq, changed.prev_hash, changed.fields)
    )


def verify(
    records: list[SealedRecord], checkpoint_seqs: tuple[int, ...] = (), **kwargs: object
) -> VerificationReport:
    original = chain()
    checkpoints = [sign_checkpoint(KEY, head_of(original, seq)) for seq in checkpoint_seqs]
    return verify_chain(records, checkpoints, [PUBLIC], **kwargs)  # type: ignore[arg-type]


def assert_break(report: VerificationReport, seq: int, kind: TamperKind) -> None:
    assert not report.ok
    assert report.first_break is not None, report
    assert (report.first_break.seq, report.first_break.kind) == (seq, kind), report.first_break


def test_an_intact_chain_verifies() -> None:
    report = verify(chain(), checkpoint_seqs=(10, 20))
    assert report.ok
    assert report.first_break is None
    assert (report.checked, report.first_seq, report.last_seq) == (20, 1, 20)
    assert report.checkpoints_verified == 2
    assert report.attested_through == 20
    assert report.fully_attested
    assert report.key_ids == (key_id(PUBLIC),)
    assert report.head == head_of(chain(), 20)
    assert json.loads(json.dumps(report.to_json()))["fully_attested"] is True


def test_records_may_arrive_in_any_order() -> None:
    records = chain()
    random.Random(7).shuffle(records)
    assert verify(records).ok


def test_an_empty_chain_verifies() -> None:
    report = verify([])
    assert report.ok
    assert (report.checked, report.head) == (0, None)


def test_altered_content_is_caught_at_that_row() -> None:
    records = chain()
    records[6] = dataclasses.replace(records[6], fields={**records[6].fields, "plate": "FAKE1"})
    assert_break(verify(records), 7, TamperKind.ALTERED)


def test_altered_content_with_its_hash_rewritten_blames_that_row_not_the_next() -> None:
    records = chain()
    records[6] = rehashed(records[6], fields={**records[6].fields, "case_number": "24-99999"})
    report = verify(records)
    assert_break(report, 7, TamperKind.ALTERED)
    assert report.first_break is not None
    assert "hash recomputed" in report.first_break.detail


def test_an_altered_hash_column_is_caught() -> None:
    records = chain()
    records[3] = dataclasses.replace(records[3], hash="ff" * 32)
    assert_break(verify(records), 4, TamperKind.ALTERED)


def test_an_altered_link_is_caught() -> None:
    records = chain()
    records[3] = dataclasses.replace(records[3], prev_hash="ee" * 32)
    assert_break(verify(records), 4, TamperKind.ALTERED)


def test_a_changed_seq_is_caught() -> None:
    records = chain()
    records[-1] = dataclasses.replace(records[-1], seq=25)
    assert_break(verify(records), 25, TamperKind.ALTERED)


def test_a_deleted_middle_row_is_caught() -> None:
    records = chain()
    del records[8]
    assert_break(verify(records), 9, TamperKind.DELETED)


def test_deleted_rows_with_the_rest_renumbered_are_caught() -> None:
    records = chain()
    kept = records[:8] + records[11:]
    renumbered = [dataclasses.replace(r, seq=n) for n, r in enumerate(kept, start=1)]
    report = verify(renumbered)
    assert_break(report, 9, TamperKind.DELETED)
    assert report.first_break is not None
    assert "3 record(s)" in report.first_break.detail


def test_deleted_first_rows_are_caught() -> None:
    assert_break(verify(chain()[2:]), 1, TamperKind.DELETED)


def test_deleted_last_rows_after_a_checkpoint_are_caught() -> None:
    records = chain()[:15]
    report = verify(records, checkpoint_seqs=(10, 20))
    assert_break(report, 16, TamperKind.DELETED)
    assert report.attested_through == 10


def test_deleted_last_rows_are_caught_against_the_expected_range() -> None:
    report = verify(chain()[:15], expected_range=(1, 20))
    assert_break(report, 16, TamperKind.DELETED)


@pytest.mark.parametrize("forged_first", [True, False])
def test_a_forged_row_with_a_duplicate_seq_is_caught(forged_first: bool) -> None:
    records = chain()
    forged = rehashed(records[9], fields={**records[9].fields, "user_id": "nobody"})
    records.insert(9 if forged_first else 10, forged)
    assert_break(verify(records), 10, TamperKind.INSERTED)


def test_a_forged_row_with_the_rest_renumbered_is_caught() -> None:
    records = chain()
    forged = rehashed(records[9], fields={**records[9].fields, "user_id": "nobody"})
    shifted = [dataclasses.replace(r, seq=r.seq + 1) for r in records[9:]]
    report = verify([*records[:9], forged, *shifted])
    assert_break(report, 10, TamperKind.INSERTED)


def test_two_swapped_rows_are_caught() -> None:
    records = chain()
    a, b = records[4], records[5]
    records[4], records[5] = (
        dataclasses.replace(b, seq=a.seq),
        dataclasses.replace(a, seq=b.seq),
    )
    assert_break(verify(records), 5, TamperKind.REORDERED)


def test_two_swapped_rows_with_hashes_rewritten_are_caught() -> None:
    records = chain()
    a, b = records[4], records[5]
    records[4], records[5] = rehashed(b, seq=a.seq), rehashed(a, seq=b.seq)
    assert_break(verify(records), 5, TamperKind.REORDERED)


def test_two_distant_swapped_rows_are_caught() -> None:
    records = chain()
    a, b = records[3], records[12]
    records[3], records[12] = (
        rehashed(b, seq=a.seq),
        rehashed(a, seq=b.seq),
    )
    assert_break(verify(records), 4, TamperKind.REORDERED)


def rewrite_from(records: list[SealedRecord], index: int) -> list[SealedRecord]:
    """Alter one row and recompute every hash after it: only checkpoints can tell."""
    altered = [*records[:index]]
    fields = [dict(r.fields) for r in records[index:]]
    fields[0]["plate"] = "FORGED1"
    resealed, _ = link_batch(ChainHead(records[index - 1].seq, records[index - 1].hash), fields)
    return altered + resealed


def test_a_rewritten_chain_is_caught_by_the_checkpoint() -> None:
    report = verify(rewrite_from(chain(), 12), checkpoint_seqs=(10, 15, 20))
    assert_break(report, 15, TamperKind.ALTERED)
    assert report.first_break is not None
    assert "after seq 10" in report.first_break.detail
    mismatches = [p for p in report.checkpoint_problems if p.kind == CheckpointProblemKind.MISMATCH]
    assert [p.seq for p in mismatches] == [15, 20]
    assert report.attested_through == 10


def test_a_forged_checkpoint_signature_is_caught() -> None:
    records = rewrite_from(chain(), 12)
    genuine = sign_checkpoint(KEY, head_of(chain(), 20))
    forged = dataclasses.replace(genuine, hash=records[-1].hash)
    report = verify_chain(records, [forged], [PUBLIC])
    assert not report.ok
    assert [(p.seq, p.kind) for p in report.checkpoint_problems] == [
        (20, CheckpointProblemKind.BAD_SIGNATURE)
    ]
    assert report.attested_through is None


def test_a_checkpoint_signed_by_another_key_is_caught() -> None:
    records = chain()
    other = Ed25519PrivateKey.generate()
    checkpoint = sign_checkpoint(other, head_of(records, 20))
    report = verify_chain(records, [checkpoint], [PUBLIC])
    assert not report.ok
    assert [(p.seq, p.kind) for p in report.checkpoint_problems] == [
        (20, CheckpointProblemKind.UNKNOWN_KEY)
    ]
    # The forger's key wearing the agency key's id is a bad signature.
    relabelled = dataclasses.replace(checkpoint, key_id=key_id(PUBLIC))
    report = verify_chain(records, [relabelled], [PUBLIC])
    assert [p.kind for p in report.checkpoint_problems] == [CheckpointProblemKind.BAD_SIGNATURE]


def test_verifying_with_the_wrong_key_fails() -> None:
    report = verify_chain(
        chain(),
        [sign_checkpoint(KEY, head_of(chain(), 20))],
        [Ed25519PrivateKey.generate().public_key()],
    )
    assert not report.ok
    assert [p.kind for p in report.checkpoint_problems] == [CheckpointProblemKind.UNKNOWN_KEY]


def test_rotated_keys_both_verify() -> None:
    records = chain()
    new_key = Ed25519PrivateKey.generate()
    checkpoints = [
        sign_checkpoint(KEY, head_of(records, 10)),
        sign_checkpoint(new_key, head_of(records, 20)),
    ]
    report = verify_chain(records, checkpoints, [PUBLIC, new_key.public_key()])
    assert report.ok
    assert len(report.key_ids) == 2


def test_records_after_the_last_checkpoint_are_reported_when_coverage_is_required() -> None:
    assert verify(chain(), checkpoint_seqs=(10,)).ok
    report = verify(chain(), checkpoint_seqs=(10,), require_coverage=True)
    assert not report.ok
    assert report.first_break is None
    assert [(p.seq, p.kind) for p in report.checkpoint_problems] == [
        (11, CheckpointProblemKind.NOT_COVERED)
    ]


def test_a_range_verifies_from_its_anchor() -> None:
    records = chain()
    report = verify(records, expected_range=(5, 15), anchor=head_of(records, 4))
    assert report.ok
    assert (report.checked, report.first_seq, report.last_seq) == (11, 5, 15)
    wrong_anchor = ChainHead(4, "ab" * 32)
    assert_break(
        verify(records, expected_range=(5, 15), anchor=wrong_anchor), 5, TamperKind.ALTERED
    )


def test_a_range_uses_a_checkpoint_just_before_it_as_anchor() -> None:
    original = chain()
    # Records 5..20 replaced by a chain of their own, hanging off a made-up record 4.
    records, _ = link_batch(ChainHead(4, "ab" * 32), [r.fields for r in original[4:]])
    assert verify(records, expected_range=(5, 20)).ok  # no anchor: the first link is trusted
    assert_break(
        verify(records, checkpoint_seqs=(4,), expected_range=(5, 20)), 5, TamperKind.ALTERED
    )


def test_100k_records_link_and_verify(capsys: pytest.CaptureFixture[str]) -> None:
    batch = events(100_000)
    started = time.perf_counter()
    records, head = link_batch(GENESIS_HEAD, batch)
    linked = time.perf_counter()
    report = verify_chain(records, [sign_checkpoint(KEY, head)], [PUBLIC])
    verified = time.perf_counter()
    records[54_321] = rehashed(records[54_321], fields={**records[54_321].fields, "plate": "X"})
    tampered = verify_chain(records, [], [PUBLIC])
    with capsys.disabled():
        print(
            f"\n100k records: link {linked - started:.2f}s, verify {verified - linked:.2f}s "
            f"({100_000 / (verified - linked):,.0f} records/s)"
        )
    assert report.ok
    assert report.checked == 100_000
    assert report.attested_through == 100_000
    assert_break(tampered, 54_322, TamperKind.ALTERED)
