"""Offline export bundles: records, checkpoints and public key in one zip, verifiable anywhere.

Layout of the zip (format version 1):

- ``manifest.json``: ``format`` ("lpr-audit-bundle"), ``format_version`` (1),
  ``records_format`` ("jsonl" or "csv"), ``records_file``, ``record_count``, ``first_seq``,
  ``last_seq``, ``checkpoint_count``, ``key_ids``, ``created_at``.
- ``records.jsonl``: one record per line, each the canonical JSON of
  ``{"fields": {...}, "hash": "...", "prev_hash": "...", "seq": n}``, lines ending in ``\\n``.
- or ``records.csv``: RFC 4180 CSV, UTF-8, header ``seq,prev_hash,hash,fields``; ``fields`` is
  the canonical JSON text of the record's fields, so it parses back to the very same value.
- ``checkpoints.json``: a JSON array of ``{"seq", "hash", "created_at", "signature", "key_id"}``.
- ``public_key.pem``: the checkpoint public key(s), concatenated PEM blocks.
- ``README.txt``: how to verify by hand.

Anyone can rebuild a bundle with a key of their own, so a verifier should compare the
reported ``key_ids`` with the key the agency publishes, or pass that key as trusted.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Final, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lpr_audit.chain.canonical import JsonValue, canonical_json, format_timestamp
from lpr_audit.chain.checkpoints import Checkpoint, KeyFileError, key_id, load_public_keys_pem
from lpr_audit.chain.records import ChainRecord, SealedRecord
from lpr_audit.chain.verify import VerificationReport, verify_chain

BUNDLE_FORMAT: Final = "lpr-audit-bundle"
BUNDLE_FORMAT_VERSION: Final = 1
RecordsFormat = Literal["jsonl", "csv"]
_CSV_HEADER: Final = ("seq", "prev_hash", "hash", "fields")

_README = """\
Audit log export: a hash chain with signed checkpoints.

Each record's hash is the lowercase hex SHA-256 of the UTF-8 bytes
  {"fields":<fields>,"prev_hash":"<prev_hash>","seq":<seq>}
where <fields> is the record's fields in RFC 8785 (JCS) canonical JSON. Each record's
prev_hash is the hash of the record with the previous seq (64 zeros before seq 1).
Each checkpoint's signature (hex) is an Ed25519 signature, by the key in public_key.pem,
of the JCS encoding of
  {"created_at":..,"hash":..,"key_id":..,"seq":..,"type":"lpr-audit-checkpoint/v1"}
A checkpoint at seq N vouches for every record up to N. key_id is the first 16 hex digits
of SHA-256 over the raw 32-byte public key; compare it with the key the agency publishes.
Verify with: lprctl audit verify --bundle FILE
"""


class BundleError(ValueError):
    """The file is not a readable audit bundle."""


@dataclass(frozen=True, slots=True)
class Bundle:
    """The parsed contents of a bundle."""

    manifest: dict[str, Any]
    records: list[SealedRecord]
    checkpoints: list[Checkpoint]
    public_keys: list[Ed25519PublicKey]


def build_bundle(
    records: Iterable[ChainRecord],
    checkpoints: Iterable[Checkpoint],
    public_key_pem: bytes,
    fmt: RecordsFormat = "jsonl",
) -> bytes:
    """Build an export bundle (zip bytes) of ``records`` and the ``checkpoints`` covering them.

    Include a checkpoint at the last record's seq (sign one on demand before exporting) so the
    whole bundle is vouched for.

    Raises:
        ValueError: ``fmt`` is unknown.
        KeyFileError: ``public_key_pem`` holds no Ed25519 public key.
    """
    ordered = sorted(records, key=attrgetter("seq"))
    cps = sorted(checkpoints, key=attrgetter("seq"))
    keys = load_public_keys_pem(public_key_pem)
    if fmt == "jsonl":
        records_file, body = "records.jsonl", _records_jsonl(ordered)
    elif fmt == "csv":
        records_file, body = "records.csv", _records_csv(ordered)
    else:
        raise ValueError(f"unknown records format {fmt!r}")
    manifest: dict[str, JsonValue] = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "records_format": fmt,
        "records_file": records_file,
        "record_count": len(ordered),
        "first_seq": ordered[0].seq if ordered else None,
        "last_seq": ordered[-1].seq if ordered else None,
        "checkpoint_count": len(cps),
        "key_ids": [key_id(key) for key in keys],
        "created_at": format_timestamp(datetime.now(UTC)),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2) + "\n")
        archive.writestr(records_file, body)
        archive.writestr(
            "checkpoints.json", json.dumps([c.to_json() for c in cps], indent=2) + "\n"
        )
        archive.writestr("public_key.pem", public_key_pem)
        archive.writestr("README.txt", _README)
    return buffer.getvalue()


def read_bundle(data: bytes) -> Bundle:
    """Parse a bundle without verifying it.

    Raises:
        BundleError: the file is not a bundle this version can read.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
                raise BundleError("not an audit bundle (manifest format)")
            if manifest.get("format_version") != BUNDLE_FORMAT_VERSION:
                raise BundleError(f"unsupported bundle version {manifest.get('format_version')}")
            records_format = manifest.get("records_format")
            records_text = archive.read(str(manifest.get("records_file"))).decode("utf-8")
            if records_format == "jsonl":
                records = _parse_jsonl(records_text)
            elif records_format == "csv":
                records = _parse_csv(records_text)
            else:
                raise BundleError(f"unknown records format {records_format!r}")
            raw_checkpoints = json.loads(archive.read("checkpoints.json"))
            if not isinstance(raw_checkpoints, list):
                raise BundleError("checkpoints.json is not a list")
            checkpoints = [Checkpoint.from_json(item) for item in raw_checkpoints]
            public_keys = load_public_keys_pem(archive.read("public_key.pem"))
    except BundleError:
        raise
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, KeyFileError) as error:
        raise BundleError(f"unreadable bundle: {error}") from error
    except (ValueError, TypeError) as error:
        raise BundleError(f"malformed bundle: {error}") from error
    return Bundle(manifest, records, checkpoints, public_keys)


def verify_bundle(
    data: bytes,
    *,
    trusted_public_keys: Sequence[Ed25519PublicKey] | None = None,
    require_coverage: bool = True,
) -> VerificationReport:
    """Verify a bundle offline: its chain, its checkpoint signatures and their coverage.

    Args:
        data: the bundle's bytes.
        trusted_public_keys: the agency's published key(s); if omitted, the key in the bundle
            is used and the report's ``key_ids`` should be compared with the published one.
        require_coverage: report records that no checkpoint in the bundle vouches for.

    Raises:
        BundleError: the file is not a readable bundle.
    """
    bundle = read_bundle(data)
    first_seq, last_seq = bundle.manifest.get("first_seq"), bundle.manifest.get("last_seq")
    expected_range: tuple[int, int] | None = None
    if isinstance(first_seq, int) and isinstance(last_seq, int):
        expected_range = (first_seq, last_seq)
    keys = trusted_public_keys if trusted_public_keys is not None else bundle.public_keys
    return verify_chain(
        bundle.records,
        bundle.checkpoints,
        keys,
        expected_range,
        require_coverage=require_coverage,
    )


def _record_json(record: ChainRecord) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
        "fields": record.fields,
    }


def _records_jsonl(records: Sequence[ChainRecord]) -> bytes:
    return b"".join(canonical_json(_record_json(record)) + b"\n" for record in records)


def _records_csv(records: Sequence[ChainRecord]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)  # RFC 4180: comma, double quotes, CRLF
    writer.writerow(_CSV_HEADER)
    for record in records:
        writer.writerow(
            (
                record.seq,
                record.prev_hash,
                record.hash,
                canonical_json(record.fields).decode("utf-8"),
            )
        )
    return text.getvalue().encode("utf-8")


def _sealed(seq: Any, prev_hash: Any, digest: Any, fields: Any) -> SealedRecord:
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise BundleError(f"record seq {seq!r} is not an integer")
    if not isinstance(prev_hash, str) or not isinstance(digest, str):
        raise BundleError(f"record {seq}: hashes must be strings")
    if not isinstance(fields, Mapping):
        raise BundleError(f"record {seq}: fields must be an object")
    return SealedRecord(seq=seq, prev_hash=prev_hash, hash=digest, fields=dict(fields))


def _parse_jsonl(text: str) -> list[SealedRecord]:
    records: list[SealedRecord] = []
    # Split on "\n" only: canonical JSON keeps U+2028 and friends literal inside strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        item = json.loads(line)
        if not isinstance(item, dict):
            raise BundleError(f"records line {number} is not an object")
        records.append(
            _sealed(item.get("seq"), item.get("prev_hash"), item.get("hash"), item.get("fields"))
        )
    return records


def _parse_csv(text: str) -> list[SealedRecord]:
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if header is None or tuple(header) != _CSV_HEADER:
        raise BundleError(f"records.csv header must be {','.join(_CSV_HEADER)}")
    records: list[SealedRecord] = []
    for row in rows:
        if len(row) != len(_CSV_HEADER):
            raise BundleError(f"records.csv row {rows.line_num} has {len(row)} columns")
        seq_text, prev_hash, digest, fields_text = row
        records.append(_sealed(int(seq_text), prev_hash, digest, json.loads(fields_text)))
    return records
