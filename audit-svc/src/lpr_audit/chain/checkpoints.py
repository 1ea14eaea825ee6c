"""Signed checkpoints: an Ed25519 signature over a chain head at a point in time.

The signed message is the canonical JSON (see :mod:`lpr_audit.chain.canonical`) of::

    {"created_at": "<RFC 3339 UTC, microseconds, Z>", "hash": "<64 hex>",
     "key_id": "<16 hex>", "seq": <n>, "type": "lpr-audit-checkpoint/v1"}

The signature is stored as 128 lowercase hex digits (the 64-byte Ed25519 signature).
``key_id`` is the first 16 hex digits of SHA-256 over the 32 raw public key bytes.

A checkpoint at ``seq`` vouches for every record up to ``seq``: the hash of record ``seq``
covers its ``prev_hash``, which is the hash of the record before, and so on.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lpr_audit.chain.canonical import JsonValue, canonical_json, format_timestamp, parse_timestamp
from lpr_audit.chain.records import ChainHead
from lpr_common.keys import key_id, load_or_create_ed25519, public_pem

__all__ = [
    "CHECKPOINT_KEY_NAME",
    "Checkpoint",
    "KeyFileError",
    "key_id",
    "load_or_create_checkpoint_key",
    "load_public_keys_pem",
    "public_keys_pem",
    "sign_checkpoint",
    "verify_checkpoint",
]

CHECKPOINT_KEY_NAME: Final = "audit-checkpoint"
_MESSAGE_TYPE: Final = "lpr-audit-checkpoint/v1"
_PEM_BEGIN: Final = b"-----BEGIN PUBLIC KEY-----"


class KeyFileError(RuntimeError):
    """A key file is unusable: unsafe permissions, wrong type or malformed."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that record ``seq`` of the chain had hash ``hash`` at ``created_at``."""

    seq: int
    hash: str
    created_at: datetime
    signature: str
    key_id: str

    def signed_message(self) -> bytes:
        """Return the exact bytes the signature covers."""
        return _message(self.seq, self.hash, self.created_at, self.key_id)

    def to_json(self) -> dict[str, JsonValue]:
        """Return the checkpoint as plain JSON (as written to an export bundle)."""
        return {
            "seq": self.seq,
            "hash": self.hash,
            "created_at": format_timestamp(self.created_at),
            "signature": self.signature,
            "key_id": self.key_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Build a checkpoint from :meth:`to_json` output.

        Raises:
            ValueError: a member is missing or has the wrong type.
        """
        try:
            seq, digest = data["seq"], data["hash"]
            created_at, signature, signer = data["created_at"], data["signature"], data["key_id"]
        except KeyError as error:
            raise ValueError(f"checkpoint lacks {error.args[0]!r}") from None
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError("checkpoint seq must be an integer")
        for name, value in (("hash", digest), ("signature", signature), ("key_id", signer)):
            if not isinstance(value, str):
                raise ValueError(f"checkpoint {name} must be a string")
        if not isinstance(created_at, str):
            raise ValueError("checkpoint created_at must be a string")
        return cls(
            seq=seq,
            hash=digest,
            created_at=parse_timestamp(created_at),
            signature=signature,
            key_id=signer,
        )


def _message(seq: int, digest: str, created_at: datetime, signer: str) -> bytes:
    return canonical_json(
        {
            "type": _MESSAGE_TYPE,
            "seq": seq,
            "hash": digest,
            "created_at": created_at,
            "key_id": signer,
        }
    )


def sign_checkpoint(
    private_key: Ed25519PrivateKey, head: ChainHead, *, created_at: datetime | None = None
) -> Checkpoint:
    """Sign ``head`` (which must not be the empty chain) and return the checkpoint."""
    if head.seq < 1:
        raise ValueError("cannot checkpoint an empty chain")
    moment = (created_at or datetime.now(UTC)).astimezone(UTC)
    signer = key_id(private_key.public_key())
    signature = private_key.sign(_message(head.seq, head.hash, moment, signer))
    return Checkpoint(
        seq=head.seq, hash=head.hash, created_at=moment, signature=signature.hex(), key_id=signer
    )


def verify_checkpoint(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> bool:
    """Return whether ``public_key`` signed ``checkpoint`` (and ``key_id`` names that key)."""
    if checkpoint.key_id != key_id(public_key):
        return False
    try:
        signature = bytes.fromhex(checkpoint.signature)
        public_key.verify(signature, checkpoint.signed_message())
    except (ValueError, InvalidSignature):
        return False
    return True


def load_or_create_checkpoint_key(directory: Path) -> Ed25519PrivateKey:
    """Load the checkpoint signing key from ``directory``, generating it at first start.

    The key is ``<directory>/audit-checkpoint.pem`` (PKCS#8, mode 0600) with its public half
    beside it. Keep the directory outside the repository and outside the database.

    Raises:
        KeyFileError: the key file is readable by group or others, or is not Ed25519.
    """
    private_path = directory / f"{CHECKPOINT_KEY_NAME}.pem"
    if private_path.exists():
        mode = stat.S_IMODE(private_path.stat().st_mode)
        # Refuse, as ssh does: a key others could read cannot vouch for the log.
        if mode & 0o077:
            raise KeyFileError(f"{private_path} has mode {mode:o}; it must be 0600")
    try:
        return load_or_create_ed25519(directory, CHECKPOINT_KEY_NAME)
    except ValueError as error:
        raise KeyFileError(str(error)) from error


def public_keys_pem(*keys: Ed25519PublicKey) -> bytes:
    """Serialise public keys as concatenated PEM blocks (SubjectPublicKeyInfo)."""
    return b"".join(public_pem(key) for key in keys)


def load_public_keys_pem(data: bytes) -> list[Ed25519PublicKey]:
    """Load every Ed25519 public key from concatenated PEM blocks.

    Raises:
        KeyFileError: there is no key, or a block is not an Ed25519 public key.
    """
    keys: list[Ed25519PublicKey] = []
    for block in data.split(_PEM_BEGIN)[1:]:
        try:
            loaded = serialization.load_pem_public_key(_PEM_BEGIN + block)
        except ValueError as error:
            raise KeyFileError(f"malformed public key PEM: {error}") from error
        if not isinstance(loaded, Ed25519PublicKey):
            raise KeyFileError("public key is not Ed25519")
        keys.append(loaded)
    if not keys:
        raise KeyFileError("no public key found in PEM data")
    return keys
