"""Record hashing and linking: the chain itself.

A chain is a sequence of records numbered ``seq = 1, 2, 3, ...`` with no gaps. Record ``n``
stores ``prev_hash`` (the ``hash`` of record ``n - 1``; for record 1 the genesis value, 64
zeros) and its own ``hash``::

    hash = lowercase hex SHA-256 of canonical_json(
        {"seq": seq, "prev_hash": prev_hash, "fields": fields}
    )

that is, of the UTF-8 bytes ``{"fields":<canonical fields>,"prev_hash":"<64 hex>","seq":<n>}``.
``fields`` is the record's content, a JSON object (see :mod:`lpr_audit.chain.canonical`).
Changing any field, the sequence number or the link changes the hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from lpr_audit.chain.canonical import CanonicalEncodingError, JsonValue, canonical_json

GENESIS_HASH: Final = "0" * 64


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The tail of a chain: the last record's sequence number and hash (``0``/genesis if empty)."""

    seq: int
    hash: str


GENESIS_HEAD: Final = ChainHead(seq=0, hash=GENESIS_HASH)


class ChainRecord(Protocol):
    """What verification needs from a stored record (a row object or a :class:`SealedRecord`)."""

    @property
    def seq(self) -> int: ...

    @property
    def prev_hash(self) -> str: ...

    @property
    def hash(self) -> str: ...

    @property
    def fields(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """A record linked into the chain, ready to insert. ``fields`` is plain JSON (store it as is)."""

    seq: int
    prev_hash: str
    hash: str
    fields: dict[str, JsonValue]


def _hash_envelope(seq: int, prev_hash: str, canonical_fields: bytes) -> str:
    # Same bytes as canonical_json({"fields": ..., "prev_hash": ..., "seq": ...}), built
    # without re-encoding the fields; a test holds the two equal.
    envelope = b"".join(
        (
            b'{"fields":',
            canonical_fields,
            b',"prev_hash":',
            canonical_json(prev_hash),
            b',"seq":',
            canonical_json(seq),
            b"}",
        )
    )
    return hashlib.sha256(envelope).hexdigest()


def _canonical_fields(fields: Mapping[str, Any]) -> bytes:
    if not isinstance(fields, Mapping):
        raise CanonicalEncodingError(
            f"record fields must be a mapping, not {type(fields).__name__}"
        )
    return canonical_json(fields)


def record_hash(seq: int, prev_hash: str, fields: Mapping[str, Any]) -> str:
    """Return the lowercase hex SHA-256 a record with these values must carry.

    Raises:
        CanonicalEncodingError: ``fields`` cannot be encoded canonically.
    """
    return _hash_envelope(seq, prev_hash, _canonical_fields(fields))


def link_batch(
    head: ChainHead, batch: Iterable[Mapping[str, Any]]
) -> tuple[list[SealedRecord], ChainHead]:
    """Seal ``batch`` after ``head``, in order, and return the records and the new head.

    Pure and all-or-nothing: nothing is returned if any item cannot be encoded. Call it while
    holding the lock on the chain's tail, insert the records, then release the lock.

    Raises:
        CanonicalEncodingError: an item cannot be encoded (the message gives its index).
    """
    sealed: list[SealedRecord] = []
    seq, prev_hash = head.seq, head.hash
    for index, fields in enumerate(batch):
        try:
            encoded = _canonical_fields(fields)
        except CanonicalEncodingError as error:
            raise CanonicalEncodingError(f"batch item {index}: {error}") from None
        seq += 1
        digest = _hash_envelope(seq, prev_hash, encoded)
        normalized: dict[str, JsonValue] = json.loads(encoded)
        sealed.append(SealedRecord(seq=seq, prev_hash=prev_hash, hash=digest, fields=normalized))
        prev_hash = digest
    return sealed, ChainHead(seq=seq, hash=prev_hash)


@dataclass(frozen=True, slots=True)
class LinkedHash:
    """The chain position of one pre-encoded record: its ``seq``, ``prev_hash`` and ``hash``."""

    seq: int
    prev_hash: str
    hash: str


def link_encoded(
    head: ChainHead, canonical_fields: Iterable[bytes]
) -> tuple[list[LinkedHash], ChainHead]:
    """Link records whose fields are already canonical JSON bytes (see :func:`canonical_json`).

    The appender encodes each request's fields when the request arrives (so a bad event is
    refused before it reaches the shared batch) and only hashes under the tail lock. The
    hashes are those :func:`link_batch` gives for the decoded fields.
    """
    linked: list[LinkedHash] = []
    seq, prev_hash = head.seq, head.hash
    for encoded in canonical_fields:
        seq += 1
        digest = _hash_envelope(seq, prev_hash, encoded)
        linked.append(LinkedHash(seq=seq, prev_hash=prev_hash, hash=digest))
        prev_hash = digest
    return linked, ChainHead(seq=seq, hash=prev_hash)
