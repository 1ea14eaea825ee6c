"""Settings of the gateway."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from lpr_common.settings import LprSettings

SCHEMA = "gateway"
JWT_KEY_NAME = "gateway_jwt_ed25519"


class Settings(LprSettings):
    """Gateway settings; service-specific ones take the ``LPR_GATEWAY_`` prefix.

    The fields are named ``gateway_*`` under the common ``LPR_`` prefix, so
    ``gateway_token_ttl_s`` is set by ``LPR_GATEWAY_TOKEN_TTL_S``.
    """

    model_config = SettingsConfigDict(extra="ignore", env_prefix="LPR_")

    # Issuer written into and required of the gateway's own tokens.
    gateway_token_issuer: str = "lpr-gateway"
    gateway_token_ttl_s: int = 900
    # CJIS 5.5.3: lock an account after repeated failed logins, for a while.
    gateway_login_max_failures: int = 5
    gateway_lockout_minutes: int = 15
    # An agency identity provider whose tokens are accepted as well (issuer + JWKS).
    gateway_oidc_issuer: str | None = None
    gateway_oidc_jwks_url: str | None = None
    gateway_oidc_audience: str | None = None
    # Claim of the identity provider's token naming the local user.
    gateway_oidc_username_claim: str = "preferred_username"
    gateway_max_body_bytes: int = 10 * 1024 * 1024
    # Camera HMAC signatures older than this are refused; replays inside it are refused too.
    gateway_signature_max_age_s: int = 300
    # How often each replica re-reads the runtime policy rows when no NOTIFY arrives.
    gateway_policy_poll_s: float = 5.0
    gateway_outbox_flush_s: float = 2.0
    # access.result events (what a read's answer carried) are sent after the answer, in
    # batches gathered over this long: fewer calls to audit-svc under load.
    gateway_result_linger_s: float = Field(default=0.1, ge=0, le=5)
    # How long a caller's policy subject (user, training, approvals, MOU) is reused. Any
    # write to those rows empties the cache at once (NOTIFY); 0 turns the cache off.
    gateway_subject_cache_s: float = 5.0
    # Read timeout towards the services; event streams have none.
    gateway_upstream_timeout_s: float = 30.0
    # Partner (MOU API) rate limit per client: requests a minute and burst; 429 beyond.
    gateway_partner_rate_per_minute: float = 120.0
    gateway_partner_burst: int = 20
    # Per-partner limits by client id or agency, "per_minute/burst", e.g.
    # LPR_GATEWAY_PARTNER_RATE_LIMITS='{"NV0020000": "30/5"}'.
    gateway_partner_rate_limits: dict[str, str] = {}
