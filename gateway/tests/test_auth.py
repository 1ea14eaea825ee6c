"""Logins, tokens and lockout through the real gateway and database (CJIS 5.4.1.1, 5.5.3)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import jwt

from gateway.tests.conftest import PLATFORM_AGENCY, Gateway, problem

PASSWORD = "correct horse battery"


async def login(gateway: Gateway, username: str, password: str) -> object:
    return await gateway.client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )


async def test_password_login_issues_short_lived_eddsa_token_verifiable_with_jwks(
    gateway: Gateway,
) -> None:
    user = await gateway.user("ofc.login", ["officer"], password=PASSWORD)
    response = await gateway.client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "ofc.login", "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    jwks = (await gateway.client.get("/v1/auth/jwks")).json()
    key = jwt.PyJWK(jwks["keys"][0])
    claims = jwt.decode(body["access_token"], key.key, algorithms=["EdDSA"], issuer="lpr-gateway")
    assert claims["sub"] == str(user.id)
    assert claims["agency"] == PLATFORM_AGENCY
    assert claims["roles"] == ["officer"]
    assert claims["kind"] == "user"
    assert claims["exp"] - claims["iat"] == 900
    assert claims["jti"]
    event = gateway.audit.last("auth.login")
    assert event["outcome"] == "success"
    assert event["subject_id"] == str(user.id)

    # The token works: an officer may list cameras.
    cameras = await gateway.client.get(
        "/v1/cameras", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert cameras.status_code == 200, cameras.text


async def test_wrong_password_is_refused_and_audited(gateway: Gateway) -> None:
    await gateway.user("ofc.wrong", ["officer"], password=PASSWORD)
    response = await gateway.client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "ofc.wrong", "password": "not it at all"},
    )
    assert response.status_code == 401
    assert "invalid username or password" in problem(response)["detail"]
    event = gateway.audit.last("auth.login")
    assert event["outcome"] == "failure"
    assert event["subject_name"] == "ofc.wrong"


async def test_nul_in_username_is_refused_as_an_unknown_user_and_audited(
    gateway: Gateway,
) -> None:
    response = await gateway.client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "ofc\x00wrong", "password": PASSWORD},
    )
    assert response.status_code == 401
    event = gateway.audit.last("auth.login")
    assert (event["outcome"], event["subject_name"]) == ("failure", "ofc\ufffdwrong")


async def test_account_locks_after_five_failures_even_for_the_right_password(
    gateway: Gateway,
) -> None:
    await gateway.user("ofc.lock", ["officer"], password=PASSWORD)
    statuses = []
    for _ in range(5):
        response = await gateway.client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": "ofc.lock", "password": "wrong-guess-1"},
        )
        statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 401, 423]
    locked = await gateway.client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "ofc.lock", "password": PASSWORD},
    )
    assert locked.status_code == 423
    assert "locked" in problem(locked)["detail"]
    assert int(locked.headers["Retry-After"]) > 14 * 60
    attempts = [e for e in gateway.audit.of("auth.login") if e["subject_name"] == "ofc.lock"]
    assert [e["outcome"] for e in attempts] == ["failure"] * 6


async def test_unknown_grant_type_and_missing_fields_are_refused(gateway: Gateway) -> None:
    response = await gateway.client.post("/v1/auth/token", data={"grant_type": "implicit"})
    assert response.status_code == 400
    assert "grant_type" in problem(response)["detail"]
    response = await gateway.client.post("/v1/auth/token", data={"grant_type": "password"})
    assert response.status_code == 400


async def test_expired_token_is_refused_with_401(gateway: Gateway) -> None:
    user = await gateway.user("ofc.expired.token", ["officer"])
    stale = gateway.token(user, now=datetime.now(UTC) - timedelta(minutes=16))
    response = await gateway.client.get("/v1/cameras", headers=stale)
    assert response.status_code == 401
    assert problem(response)["detail"] == "token expired"
    event = gateway.audit.last()
    assert event["outcome"] == "denied"
    assert event["reason"] == "token expired"


async def test_malformed_forged_and_missing_tokens_are_refused(gateway: Gateway) -> None:
    malformed = await gateway.client.get(
        "/v1/cameras", headers={"Authorization": "Bearer not.a.token"}
    )
    assert malformed.status_code == 401
    assert problem(malformed)["detail"] == "malformed token"

    forged = jwt.encode(
        {"iss": "lpr-gateway", "sub": "x", "kind": "user", "exp": 2**31, "iat": 0, "jti": "j"},
        "guessed-secret-of-32-bytes-at-least!!",
        algorithm="HS256",
    )
    response = await gateway.client.get(
        "/v1/cameras", headers={"Authorization": f"Bearer {forged}"}
    )
    assert response.status_code == 401
    assert "invalid token" in problem(response)["detail"]

    foreign = jwt.encode(
        {"iss": "https://elsewhere.example", "sub": "x", "exp": 2**31},
        "guessed-secret-of-32-bytes-at-least!!",
        algorithm="HS256",
    )
    response = await gateway.client.get(
        "/v1/cameras", headers={"Authorization": f"Bearer {foreign}"}
    )
    assert response.status_code == 401
    assert "not trusted" in problem(response)["detail"]

    missing = await gateway.client.get("/v1/cameras")
    assert missing.status_code == 401
    assert "missing credentials" in problem(missing)["detail"]
    assert "Bearer" in missing.headers["WWW-Authenticate"]


async def test_partner_client_credentials_carry_agency_and_mou(gateway: Gateway) -> None:
    client = await gateway.partner()
    response = await gateway.client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": "partner-secret-value",
        },
    )
    assert response.status_code == 200, response.text
    claims = gateway.issuer.verify(response.json()["access_token"])
    assert claims["kind"] == "partner"
    assert claims["agency"] == client.agency
    assert claims["mou"] == str(client.mou_id)

    wrong = await gateway.client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": "nope",
        },
    )
    assert wrong.status_code == 401
    assert gateway.audit.last("auth.login")["outcome"] == "failure"


async def test_a_token_used_before_is_still_refused_once_it_expires(gateway: Gateway) -> None:
    """The verified claims a gateway remembers never outlive the token's ``exp``."""
    user = await gateway.user("ofc.short.token", ["officer"])
    ttl = gateway.issuer.ttl
    # Issued so that it expires two seconds from now (exp has whole seconds).
    expires = int(time.time()) + 2
    headers = gateway.token(user, now=datetime.fromtimestamp(expires, UTC) - ttl)
    first = await gateway.client.get("/v1/cameras", headers=headers)
    assert first.status_code == 200, first.text
    # The same token with one byte of its signature changed is not the same token.
    token = headers["Authorization"].removeprefix("Bearer ")
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    forged = await gateway.client.get(
        "/v1/cameras", headers={"Authorization": f"Bearer {tampered}"}
    )
    assert forged.status_code == 401
    assert "invalid token" in problem(forged)["detail"]
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.05)
    again = await gateway.client.get("/v1/cameras", headers=headers)
    assert again.status_code == 401
    assert problem(again)["detail"] == "token expired"
