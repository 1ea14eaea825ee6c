"""The signed request context: authentic, fresh and bound to one request, or refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lpr_common.context import ContextSigner, ContextVerifier, RequestContext
from lpr_common.errors import Unauthenticated
from lpr_common.keys import load_or_create_ed25519


def make_context(**overrides: object) -> RequestContext:
    values: dict[str, object] = {
        "subject_kind": "user",
        "subject_id": "officer-1",
        "agency": "CA0010000",
        "roles": ["officer"],
        "purpose": "stolen-vehicle",
        "case_number": "2026-000123",
        "method": "POST",
        "path": "/v1/reads/search",
        "issued_at": datetime.now(UTC),
    }
    values.update(overrides)
    return RequestContext.model_validate(values)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def verifier_for(key: Ed25519PrivateKey) -> ContextVerifier:
    return ContextVerifier(key.public_key(), max_age=timedelta(seconds=60))


def test_round_trip_keeps_every_field(key: Ed25519PrivateKey) -> None:
    context = make_context()
    header = ContextSigner(key).sign(context)
    assert verifier_for(key).verify(header, method="POST", path="/v1/reads/search") == context


def test_tampered_payload_is_refused(key: Ed25519PrivateKey) -> None:
    header = ContextSigner(key).sign(make_context())
    forged = ContextSigner(Ed25519PrivateKey.generate()).sign(make_context(roles=["administrator"]))
    spliced = forged.split(".")[0] + "." + header.split(".")[1]
    with pytest.raises(Unauthenticated, match="invalid"):
        verifier_for(key).verify(spliced, method="POST", path="/v1/reads/search")


def test_context_from_another_key_is_refused(key: Ed25519PrivateKey) -> None:
    header = ContextSigner(Ed25519PrivateKey.generate()).sign(make_context())
    with pytest.raises(Unauthenticated):
        verifier_for(key).verify(header, method="POST", path="/v1/reads/search")


def test_missing_expired_and_replayed_contexts_are_refused(key: Ed25519PrivateKey) -> None:
    verifier = verifier_for(key)
    with pytest.raises(Unauthenticated, match="missing"):
        verifier.verify(None, method="GET", path="/")
    old = ContextSigner(key).sign(make_context(issued_at=datetime.now(UTC) - timedelta(minutes=5)))
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(old, method="POST", path="/v1/reads/search")
    header = ContextSigner(key).sign(make_context())
    with pytest.raises(Unauthenticated, match="another request"):
        verifier.verify(header, method="DELETE", path="/v1/hotlists/1")


def test_a_context_stating_its_query_is_valid_for_that_query_only(
    key: Ed25519PrivateKey,
) -> None:
    # Captured on its way to a service, it must not serve other plates or another range.
    verifier = verifier_for(key)
    bound = ContextSigner(key).sign(make_context(method="GET", path="/v1/hits", query="plate=A"))
    assert verifier.verify(bound, method="GET", path="/v1/hits", query="plate=A").query == "plate=A"
    with pytest.raises(Unauthenticated, match="another request"):
        verifier.verify(bound, method="GET", path="/v1/hits", query="plate=B")
    with pytest.raises(Unauthenticated, match="another request"):
        verifier.verify(bound, method="GET", path="/v1/hits", query="")
    # A context minted without one (a tool calling a service directly) states no query.
    unbound = ContextSigner(key).sign(make_context(method="GET", path="/v1/hits"))
    assert verifier.verify(unbound, method="GET", path="/v1/hits", query="plate=B").query is None


def test_keys_are_generated_once_and_private(tmp_path: Path) -> None:
    first = load_or_create_ed25519(tmp_path / "keys", "context_ed25519")
    second = load_or_create_ed25519(tmp_path / "keys", "context_ed25519")
    assert first.public_key() == second.public_key()
    assert (tmp_path / "keys" / "context_ed25519.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    directory = tmp_path / "keys"
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(lambda _: load_or_create_ed25519(directory, "shared"), range(16)))
    assert len({key.public_key().public_bytes_raw() for key in keys}) == 1
    assert sorted(p.name for p in directory.iterdir()) == ["shared.pem", "shared.pub.pem"]


def service_context(service: str) -> RequestContext:
    return make_context(
        subject_kind="service", subject_id=service, agency="*", roles=["service"], purpose=None
    )


def test_a_service_signs_as_itself_and_cannot_mint_a_users_context(tmp_path: Path) -> None:
    from lpr_common.service import context_keys
    from lpr_common.settings import LprSettings

    settings = LprSettings(data_dir=tmp_path / "data", environment="test")
    hotlist_signer, verifier = context_keys(settings, "hotlist")
    recognition_signer, _ = context_keys(settings, "recognition")
    gateway = ContextSigner(load_or_create_ed25519(settings.keys_dir, "context_ed25519"))

    def check(signer: ContextSigner, context: RequestContext) -> RequestContext:
        return verifier.verify(signer.sign(context), method="POST", path="/v1/reads/search")

    assert check(hotlist_signer, service_context("hotlist")).subject_id == "hotlist"
    assert check(gateway, make_context()).subject_id == "officer-1"
    # A back-end service holds only its own key: an officer's context it signs is refused,
    # and so is a context claiming to come from another service.
    with pytest.raises(Unauthenticated):
        check(hotlist_signer, make_context())
    with pytest.raises(Unauthenticated):
        check(hotlist_signer, service_context("recognition"))
    with pytest.raises(Unauthenticated, match="unknown service"):
        check(recognition_signer, service_context("lprctl"))
    assert check(recognition_signer, service_context("recognition")).subject_id == "recognition"


def test_in_production_the_gateways_public_key_must_be_provisioned(tmp_path: Path) -> None:
    from lpr_common.service import context_keys
    from lpr_common.settings import LprSettings

    settings = LprSettings(
        data_dir=tmp_path / "data",
        environment="production",
        database_url="postgresql://lpr@db.example/lpr",
    )
    with pytest.raises(RuntimeError, match=r"context_ed25519\.pub\.pem is missing"):
        context_keys(settings, "recognition")
    assert not (settings.keys_dir / "context_ed25519.pem").exists()
