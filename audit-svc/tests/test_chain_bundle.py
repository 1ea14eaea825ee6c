"""Offline export bundles: an auditor verifies the log with no access to the system."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lpr_audit.chain import (
    GENESIS_HEAD,
    BundleError,
    ChainHead,
    Checkpoint,
    CheckpointProblemKind,
    RecordsFormat,
    SealedRecord,
    TamperKind,
    build_bundle,
    key_id,
    link_batch,
    public_keys_pem,
    read_bundle,
    sign_checkpoint,
    verify_bundle,
)

KEY = Ed25519PrivateKey.generate()
PEM = public_keys_pem(KEY.public_key())
T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def awkward_events(count: int) -> list[dict[str, object]]:
    # Text that trips up CSV and line-based formats, numbers that trip up JSON round trips.
    return [
        {
            "event_type": "export",
            "recipient_agency": 'County "North", Unit 4',
            "note": f"line one\nline two\r\n, tab\t \u2028 \u00e9\u20ac\U0001f600 #{n}",
            "case_number": None if n % 3 else f"24-{n:05d}",
            "count": n * 1000,
            "ratio": n / 7,
            "reads": [f"read-{n}-{i}" for i in range(3)],
            "query": {"plate": "7AB*", "from": T0 + timedelta(days=n)},
            "at": T0 + timedelta(seconds=n),
        }
        for n in range(count)
    ]


def sealed(count: int = 40) -> list[SealedRecord]:
    records, _ = link_batch(GENESIS_HEAD, awkward_events(count))
    return records


def checkpoint_at(records: list[SealedRecord], seq: int) -> list[Checkpoint]:
    record = records[seq - 1]
    return [sign_checkpoint(KEY, ChainHead(record.seq, record.hash))]


FORMATS: list[RecordsFormat] = ["jsonl", "csv"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_bundle_round_trips_and_verifies(fmt: RecordsFormat) -> None:
    records = sealed()
    checkpoints = [
        sign_checkpoint(KEY, ChainHead(r.seq, r.hash)) for r in (records[19], records[39])
    ]
    data = build_bundle(records, checkpoints, PEM, fmt=fmt)

    bundle = read_bundle(data)
    assert bundle.records == records
    assert bundle.checkpoints == checkpoints
    assert bundle.manifest["records_format"] == fmt
    assert (bundle.manifest["record_count"], bundle.manifest["first_seq"]) == (40, 1)
    assert bundle.manifest["last_seq"] == 40

    report = verify_bundle(data)
    assert report.ok
    assert (report.checked, report.attested_through) == (40, 40)
    assert report.key_ids == (key_id(KEY.public_key()),)
    assert verify_bundle(data, trusted_public_keys=[KEY.public_key()]).ok


def test_a_range_bundle_verifies() -> None:
    records = sealed()[10:25]
    data = build_bundle(records, [sign_checkpoint(KEY, ChainHead(25, records[-1].hash))], PEM)
    report = verify_bundle(data)
    assert report.ok
    assert (report.first_seq, report.last_seq) == (11, 25)


def test_the_csv_keeps_canonical_fields_in_one_column() -> None:
    records = sealed(3)
    data = build_bundle(records, [], PEM, fmt="csv")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        rows = list(csv.reader(io.StringIO(archive.read("records.csv").decode(), newline="")))
    assert rows[0] == ["seq", "prev_hash", "hash", "fields"]
    assert [row[0] for row in rows[1:]] == ["1", "2", "3"]
    assert json.loads(rows[1][3]) == records[0].fields


def rewrite_member(data: bytes, name: str, change: str, to: str) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            body = source.read(item)
            if item.filename == name:
                assert change.encode() in body
                body = body.replace(change.encode(), to.encode(), 1)
            target.writestr(item, body)
    return out.getvalue()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_record_altered_in_the_bundle_is_caught(fmt: RecordsFormat) -> None:
    records = sealed()
    data = build_bundle(records, checkpoint_at(records, 40), PEM, fmt=fmt)
    tampered = rewrite_member(data, f"records.{fmt}", "24-00006", "24-00066")
    report = verify_bundle(tampered)
    assert report.first_break is not None
    assert (report.first_break.seq, report.first_break.kind) == (7, TamperKind.ALTERED)


def test_records_dropped_from_the_bundle_are_caught() -> None:
    records = sealed()
    data = build_bundle(records[:30], checkpoint_at(records, 40), PEM)
    report = verify_bundle(data)
    assert not report.ok
    assert report.attested_through is None
    # The manifest says 1..30; the checkpoint at 40 is outside it, so nothing vouches for them.
    assert [(p.seq, p.kind) for p in report.checkpoint_problems] == [
        (1, CheckpointProblemKind.NOT_COVERED)
    ]


def test_a_bundle_rebuilt_with_another_key_fails_against_the_agency_key() -> None:
    records = sealed()
    impostor = Ed25519PrivateKey.generate()
    data = build_bundle(
        records,
        [sign_checkpoint(impostor, ChainHead(40, records[-1].hash))],
        public_keys_pem(impostor.public_key()),
    )
    assert verify_bundle(data).key_ids == (key_id(impostor.public_key()),)
    report = verify_bundle(data, trusted_public_keys=[KEY.public_key()])
    assert not report.ok
    assert {(p.seq, p.kind) for p in report.checkpoint_problems} == {
        (40, CheckpointProblemKind.UNKNOWN_KEY),
        (1, CheckpointProblemKind.NOT_COVERED),
    }


@pytest.mark.parametrize(
    "data",
    [b"not a zip", build_bundle([], [], PEM)[:40]],
)
def test_an_unreadable_bundle_is_an_error(data: bytes) -> None:
    with pytest.raises(BundleError):
        verify_bundle(data)


def test_a_manifest_of_another_format_is_refused() -> None:
    data = rewrite_member(
        build_bundle(sealed(2), [], PEM),
        "manifest.json",
        '"format_version": 1',
        '"format_version": 2',
    )
    with pytest.raises(BundleError):
        read_bundle(data)
