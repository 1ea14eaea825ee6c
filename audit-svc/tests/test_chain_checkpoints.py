"""Ed25519 checkpoints and the signing key kept outside the database."""

from __future__ import annotations

import dataclasses
import hashlib
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lpr_audit.chain import (
    ChainHead,
    Checkpoint,
    KeyFileError,
    key_id,
    load_or_create_checkpoint_key,
    load_public_keys_pem,
    public_keys_pem,
    sign_checkpoint,
    verify_checkpoint,
)

HEAD = ChainHead(seq=120, hash="5e" * 32)
SIGNED_AT = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_key_id_is_the_start_of_sha256_of_the_raw_public_key(
    signing_key: Ed25519PrivateKey,
) -> None:
    raw = signing_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert key_id(signing_key.public_key()) == hashlib.sha256(raw).hexdigest()[:16]


def test_a_signed_checkpoint_verifies(signing_key: Ed25519PrivateKey) -> None:
    checkpoint = sign_checkpoint(signing_key, HEAD, created_at=SIGNED_AT)
    assert (checkpoint.seq, checkpoint.hash, checkpoint.created_at) == (120, HEAD.hash, SIGNED_AT)
    assert checkpoint.key_id == key_id(signing_key.public_key())
    assert len(checkpoint.signature) == 128
    assert verify_checkpoint(checkpoint, signing_key.public_key())


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 121},
        {"hash": "5f" * 32},
        {"created_at": SIGNED_AT + timedelta(microseconds=1)},
        {"signature": "00" * 64},
        {"signature": "not hex"},
    ],
)
def test_any_change_to_a_checkpoint_breaks_its_signature(
    signing_key: Ed25519PrivateKey, change: dict[str, object]
) -> None:
    checkpoint = sign_checkpoint(signing_key, HEAD, created_at=SIGNED_AT)
    forged = dataclasses.replace(checkpoint, **change)  # type: ignore[arg-type]
    assert not verify_checkpoint(forged, signing_key.public_key())


def test_another_key_does_not_verify(signing_key: Ed25519PrivateKey) -> None:
    checkpoint = sign_checkpoint(signing_key, HEAD)
    other = Ed25519PrivateKey.generate().public_key()
    assert not verify_checkpoint(checkpoint, other)
    # Even when the forger puts the other key's id on it.
    relabelled = dataclasses.replace(checkpoint, key_id=key_id(other))
    assert not verify_checkpoint(relabelled, other)


def test_an_empty_chain_cannot_be_checkpointed(signing_key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="empty"):
        sign_checkpoint(signing_key, ChainHead(seq=0, hash="0" * 64))


def test_checkpoint_json_round_trips(signing_key: Ed25519PrivateKey) -> None:
    checkpoint = sign_checkpoint(signing_key, HEAD, created_at=SIGNED_AT)
    data = checkpoint.to_json()
    assert data["created_at"] == "2025-06-01T12:00:00.123456Z"
    restored = Checkpoint.from_json(data)
    assert restored == checkpoint
    assert verify_checkpoint(restored, signing_key.public_key())
    with pytest.raises(ValueError, match="signature"):
        Checkpoint.from_json({k: v for k, v in data.items() if k != "signature"})


def test_the_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    first = load_or_create_checkpoint_key(directory)
    key_file = directory / "audit-checkpoint.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = load_or_create_checkpoint_key(directory)
    assert key_id(first.public_key()) == key_id(second.public_key())


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    load_or_create_checkpoint_key(tmp_path)
    (tmp_path / "audit-checkpoint.pem").chmod(0o644)
    with pytest.raises(KeyFileError, match="0600"):
        load_or_create_checkpoint_key(tmp_path)


def test_several_public_keys_load_from_one_pem() -> None:
    keys = [Ed25519PrivateKey.generate().public_key() for _ in range(2)]
    loaded = load_public_keys_pem(public_keys_pem(*keys))
    assert [key_id(k) for k in loaded] == [key_id(k) for k in keys]
    with pytest.raises(KeyFileError, match="no public key"):
        load_public_keys_pem(b"nothing here")
