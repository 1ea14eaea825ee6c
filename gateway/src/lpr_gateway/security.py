"""Secrets: argon2id password hashes, camera keys, and the gateway's signed tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lpr_common.keys import key_id

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# Verified against when the username is unknown, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

CAMERA_KEY_PREFIX = "lprcam_"


def hash_password(password: str) -> str:
    """Hash a password (or client secret) with argon2id."""
    return _hasher.hash(password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password off the event loop (argon2 is deliberately slow)."""
    return await asyncio.to_thread(_verify, password_hash, password)


def new_camera_key() -> str:
    """A new camera API key: 256 random bits, shown once."""
    return CAMERA_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_camera_key(key: str) -> str:
    """SHA-256 of a camera key (enough for a 256-bit random key; lookups stay indexed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def body_signature(key: str, timestamp: str, body: bytes) -> str:
    """``hex(HMAC-SHA256(key, timestamp + "." + body))``: what a camera sends."""
    return hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class TokenClaims:
    """The claims the gateway puts in its access tokens."""

    sub: str
    agency: str
    roles: list[str]
    kind: str
    mou: str | None = None


VERIFIED_TOKENS_KEPT = 10_000
"""Most tokens whose verified claims a gateway replica remembers (oldest forgotten first)."""


class TokenIssuer:
    """Issues and verifies the gateway's EdDSA (Ed25519) access tokens.

    A caller sends the same token with every request for its 15 minutes, so the claims of
    a token that passed verification are remembered, keyed by the whole token, until it
    expires: the same bytes need not be checked against the signature again. Nothing
    else can make one of our tokens invalid before its ``exp`` (there is no revocation
    list: who may do what is decided afresh from the user's records on every request).
    """

    def __init__(self, key: Ed25519PrivateKey, *, issuer: str, ttl: timedelta) -> None:
        self._key = key
        self._public = key.public_key()
        self.kid = key_id(self._public)
        self.issuer = issuer
        self.ttl = ttl
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def issue(self, claims: TokenClaims, *, now: datetime | None = None) -> str:
        """Sign a token for ``claims`` valid for the configured lifetime."""
        issued = now or datetime.now(UTC)
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": claims.sub,
            "agency": claims.agency,
            "roles": claims.roles,
            "kind": claims.kind,
            "iat": int(issued.timestamp()),
            "exp": int((issued + self.ttl).timestamp()),
            "jti": str(uuid4()),
        }
        if claims.mou is not None:
            payload["mou"] = claims.mou
        return jwt.encode(payload, self._key, algorithm="EdDSA", headers={"kid": self.kid})

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token (raises ``jwt.PyJWTError`` otherwise)."""
        remembered = self.recall(token)
        if remembered is not None:
            return remembered
        claims: dict[str, Any] = jwt.decode(
            token,
            self._public,
            algorithms=["EdDSA"],
            issuer=self.issuer,
            options={"require": ["exp", "iat", "sub", "iss", "jti"]},
        )
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return dict(claims)

    def recall(self, token: str) -> dict[str, Any] | None:
        """The claims of ``token`` if this issuer verified it and it has not expired since."""
        claims = self._verified.get(token)
        if claims is None:
            return None
        if time.time() >= claims["exp"]:
            # Expired (PyJWT's test, without leeway): verifying again says so.
            del self._verified[token]
            return None
        return dict(claims)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public key as a JSON Web Key Set (RFC 8037 OKP key)."""
        raw = self._public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": _b64url(raw),
                    "kid": self.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                }
            ]
        }
