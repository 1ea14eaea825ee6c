"""Record hashing and linking a batch after the chain's head."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime
from uuid import UUID

import pytest

from lpr_audit.chain import (
    GENESIS_HASH,
    GENESIS_HEAD,
    CanonicalEncodingError,
    ChainHead,
    canonical_json,
    link_batch,
    link_encoded,
    record_hash,
)

EVENT = {
    "event_type": "search",
    "user_id": "officer-17",
    "purpose": "investigation",
    "case_number": "24-00017",
    "plate": "7ABC123",
    "outcome": "allowed",
    "occurred_at": datetime(2025, 6, 1, 12, 0, tzinfo=UTC),
    "request_id": UUID("0b7f5a52-3f2d-4c59-9b6e-6a1fd0c3a001"),
}


def test_record_hash_is_sha256_of_the_canonical_envelope() -> None:
    envelope = {"seq": 7, "prev_hash": "ab" * 32, "fields": EVENT}
    expected = hashlib.sha256(canonical_json(envelope)).hexdigest()
    assert record_hash(7, "ab" * 32, EVENT) == expected
    assert canonical_json(envelope).startswith(b'{"fields":{"case_number":"24-00017"')


@pytest.mark.parametrize(
    ("seq", "prev_hash", "fields"),
    [
        (8, "ab" * 32, EVENT),
        (7, "ac" * 32, EVENT),
        (7, "ab" * 32, {**EVENT, "plate": "7ABC124"}),
        (7, "ab" * 32, {**EVENT, "extra": None}),
    ],
)
def test_any_change_changes_the_hash(seq: int, prev_hash: str, fields: dict[str, object]) -> None:
    assert record_hash(seq, prev_hash, fields) != record_hash(7, "ab" * 32, EVENT)


def test_a_batch_links_from_genesis() -> None:
    batch = [{**EVENT, "case_number": f"24-{n:05d}"} for n in range(5)]
    records, head = link_batch(GENESIS_HEAD, batch)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS_HASH == "0" * 64
    for before, after in itertools.pairwise(records):
        assert after.prev_hash == before.hash
    for record in records:
        assert record.hash == record_hash(record.seq, record.prev_hash, record.fields)
    assert head == ChainHead(seq=5, hash=records[-1].hash)


def test_sealed_fields_are_plain_json_with_the_same_hash() -> None:
    (record,), _ = link_batch(GENESIS_HEAD, [EVENT])
    assert record.fields["occurred_at"] == "2025-06-01T12:00:00.000000Z"
    assert record.fields["request_id"] == "0b7f5a52-3f2d-4c59-9b6e-6a1fd0c3a001"
    assert json.loads(json.dumps(record.fields)) == record.fields
    assert record.hash == record_hash(1, GENESIS_HASH, EVENT)


def test_batches_continue_the_chain_as_one_batch_would() -> None:
    batch = [{**EVENT, "case_number": f"24-{n:05d}"} for n in range(6)]
    whole, whole_head = link_batch(GENESIS_HEAD, batch)
    first, head = link_batch(GENESIS_HEAD, batch[:2])
    second, head = link_batch(head, batch[2:])
    assert first + second == whole
    assert head == whole_head


def test_an_empty_batch_keeps_the_head() -> None:
    head = ChainHead(seq=41, hash="cd" * 32)
    assert link_batch(head, []) == ([], head)


def test_a_bad_item_fails_the_whole_batch_and_names_it() -> None:
    batch = [EVENT, {**EVENT, "speed": float("nan")}]
    with pytest.raises(CanonicalEncodingError, match="batch item 1: speed"):
        link_batch(GENESIS_HEAD, batch)
    with pytest.raises(CanonicalEncodingError, match="mapping"):
        link_batch(GENESIS_HEAD, [["not", "a", "mapping"]])  # type: ignore[list-item]


def test_link_encoded_gives_the_hashes_link_batch_gives() -> None:
    head = ChainHead(41, "cd" * 32)
    batch: list[dict[str, object]] = [EVENT, {**EVENT, "plate": "8XYZ999"}, {"n": 1.5}]
    sealed, sealed_head = link_batch(head, batch)
    linked, linked_head = link_encoded(head, [canonical_json(item) for item in batch])
    assert [(r.seq, r.prev_hash, r.hash) for r in sealed] == [
        (r.seq, r.prev_hash, r.hash) for r in linked
    ]
    assert linked_head == sealed_head
    assert linked[0].prev_hash == head.hash
    assert linked_head.seq == 44
