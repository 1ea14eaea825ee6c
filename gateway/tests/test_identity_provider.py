"""Tokens from an agency identity provider (issuer + JWKS) map to local users.

The identity provider is a real external peer (an agency's IdP) that cannot run here; the
test serves its key set from a small local HTTP server, as the IdP would, and signs
tokens with the matching private key.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.tests.conftest import AuditSpy, Gateway, gateway_settings, open_gateway, problem

AUDIENCE = "lpr-platform"


@pytest.fixture(scope="module")
def identity_provider() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "idp-1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", key
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def idp_gateway(
    service_env: dict[str, str],
    session: AsyncSession,
    audit_spy: AuditSpy,
    identity_provider: tuple[str, rsa.RSAPrivateKey],
) -> AsyncIterator[Gateway]:
    url, _ = identity_provider
    settings = gateway_settings(
        gateway_oidc_issuer=url,
        gateway_oidc_jwks_url=f"{url}/jwks.json",
        gateway_oidc_audience=AUDIENCE,
    )
    async for opened in open_gateway(settings, session, audit_spy):
        yield opened


def idp_token(
    identity_provider: tuple[str, rsa.RSAPrivateKey], username: str, **overrides: Any
) -> dict[str, str]:
    url, key = identity_provider
    now = int(time.time())
    claims = {
        "iss": url,
        "sub": f"idp|{username}",
        "preferred_username": username,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        **overrides,
    }
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "idp-1"})
    return {"Authorization": f"Bearer {token}"}


async def test_identity_provider_token_maps_to_the_local_user_and_their_records(
    idp_gateway: Gateway, identity_provider: tuple[str, rsa.RSAPrivateKey]
) -> None:
    await idp_gateway.user("jdoe", ["officer"])
    await idp_gateway.user("lapsed", ["officer"], training_days=-1)
    allowed = await idp_gateway.client.get(
        "/v1/cameras", headers=idp_token(identity_provider, "jdoe")
    )
    assert allowed.status_code == 200, allowed.text
    # The local training record still decides (C.2), whoever issued the token.
    lapsed = await idp_gateway.client.get(
        "/v1/cameras", headers=idp_token(identity_provider, "lapsed")
    )
    assert lapsed.status_code == 403
    assert problem(lapsed)["rule"] == "training-expired"


async def test_identity_provider_tokens_are_checked(
    idp_gateway: Gateway, identity_provider: tuple[str, rsa.RSAPrivateKey]
) -> None:
    await idp_gateway.user("jroe", ["officer"])
    unknown = await idp_gateway.client.get(
        "/v1/cameras", headers=idp_token(identity_provider, "stranger")
    )
    assert unknown.status_code == 401
    assert "no local user" in problem(unknown)["detail"]
    wrong_audience = await idp_gateway.client.get(
        "/v1/cameras", headers=idp_token(identity_provider, "jroe", aud="another-app")
    )
    assert wrong_audience.status_code == 401
    expired = await idp_gateway.client.get(
        "/v1/cameras",
        headers=idp_token(identity_provider, "jroe", exp=int(time.time()) - 10),
    )
    assert expired.status_code == 401
    assert problem(expired)["detail"] == "token expired"
