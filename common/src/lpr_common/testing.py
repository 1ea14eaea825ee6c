"""Helpers for service tests: mint the signed request context the gateway would send.

Only tests import this module. A service's public routes demand ``X-LPR-Context``; these
helpers sign one with the platform context key in the test data directory, exactly as the
gateway does for a forwarded request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lpr_common.context import CONTEXT_HEADER, CONTEXT_KEY_NAME, ContextSigner, RequestContext
from lpr_common.keys import load_or_create_ed25519
from lpr_common.settings import LprSettings


def service_auth_signer(service: str, keys_dir: Path | None = None) -> ContextSigner:
    """``service``'s own signer, for calls a test makes to ``/internal`` routes as it."""
    from lpr_common.service import service_signer

    directory = keys_dir if keys_dir is not None else LprSettings().keys_dir
    return service_signer(directory, service)


def context_signer(keys_dir: Path | None = None) -> ContextSigner:
    """Signer over the platform context key (``LPR_DATA_DIR/keys`` unless given)."""
    directory = keys_dir if keys_dir is not None else LprSettings().keys_dir
    return ContextSigner(load_or_create_ed25519(directory, CONTEXT_KEY_NAME))


def mint_context(
    method: str,
    path: str,
    *,
    subject_kind: str = "user",
    subject_id: str = "test-user",
    agency: str = "CA0010000",
    roles: list[str] | None = None,
    **fields: Any,
) -> RequestContext:
    """Build a context for one request (``fields``: purpose, case_number, mou_id, ...)."""
    return RequestContext.model_validate(
        {
            "subject_kind": subject_kind,
            "subject_id": subject_id,
            "agency": agency,
            "roles": roles if roles is not None else ["officer"],
            "method": method.upper(),
            "path": path,
            "issued_at": datetime.now(UTC),
            **fields,
        }
    )


def context_headers(
    method: str,
    path: str,
    *,
    keys_dir: Path | None = None,
    **fields: Any,
) -> dict[str, str]:
    """Headers carrying a freshly signed context for ``method`` ``path``.

    Example::

        headers = context_headers("GET", "/v1/hotlists", roles=["officer"])
        response = await client.get("/v1/hotlists", headers=headers)
    """
    context = mint_context(method, path, **fields)
    return {CONTEXT_HEADER: context_signer(keys_dir).sign(context)}


def service_headers(
    method: str, path: str, *, service: str = "gateway", keys_dir: Path | None = None
) -> dict[str, str]:
    """Headers for an ``/internal`` route, as platform service ``service`` sends them
    (signed with that service's own key)."""
    context = mint_context(
        method, path, subject_kind="service", subject_id=service, agency="*", roles=["service"]
    )
    return {CONTEXT_HEADER: service_auth_signer(service, keys_dir).sign(context)}
