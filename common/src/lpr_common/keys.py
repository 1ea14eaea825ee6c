"""Keys generated at first start into the data directory (never committed)."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def _ensure_private_dir(directory: Path) -> None:
    # Only a directory we create gets its mode set: a mounted Secret is read-only.
    if not directory.exists():
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)


def _write_secret(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it exists; return True when this call created it.

    The file is written under a unique name with mode 0600 and then hard-linked into
    place, which fails if another process got there first: two replicas starting at once
    on a shared volume end up with the same key instead of silently replacing each other's.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def load_or_create_ed25519(directory: Path, name: str) -> Ed25519PrivateKey:
    """Load ``<name>.pem`` from ``directory``, generating it (and its public half) if absent."""
    _ensure_private_dir(directory)
    private_path = directory / f"{name}.pem"
    if not private_path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if _write_secret(private_path, pem):
            (directory / f"{name}.pub.pem").write_bytes(public_pem(key.public_key()))
    loaded = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{private_path} is not an Ed25519 private key")
    return loaded


def load_ed25519_public(path: Path) -> Ed25519PublicKey:
    """Load an Ed25519 public key from a PEM file."""
    loaded = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return loaded


def public_pem(key: Ed25519PublicKey) -> bytes:
    """Serialise a public key as PEM."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: Ed25519PublicKey) -> str:
    """Short identifier of a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_or_create_secret(directory: Path, name: str, n_bytes: int = 32) -> bytes:
    """Load a random symmetric secret, generating it on first use."""
    _ensure_private_dir(directory)
    path = directory / name
    if not path.exists():
        _write_secret(path, secrets.token_bytes(n_bytes))
    return path.read_bytes()
