"""Per-partner rate limits (IACP D.2: the MOU API is a service to a partner, not a firehose).

A token bucket per partner client: ``rate`` requests a minute on average, bursts up to
``burst``. Going over is refused with 429 and ``Retry-After`` (seconds until a token is
back), and audited like every decision. The buckets are rows of
``gateway.partner_rate_buckets`` taken with one statement on the database clock, so the
limit holds across every gateway replica (the HPA scales them) at one round trip per
partner request; officers and cameras are not limited here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lpr_common.errors import RateLimited

RULE = "partner-rate-limit"


@dataclass(frozen=True, slots=True)
class Limit:
    """Requests per minute and the largest burst."""

    per_minute: float
    burst: int


_ELAPSED_S = "EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at)::float8"
_REFILLED = f"LEAST(CAST(:burst AS float8), b.tokens + CAST(:rate AS float8) * {_ELAPSED_S})"
# Take a token if one is there (a new client starts with a full bucket); no row back
# means the bucket is empty and nothing changed.
_TAKE = text(
    "INSERT INTO gateway.partner_rate_buckets AS b (client_id, tokens, updated_at) "
    "VALUES (:client_id, CAST(:burst AS float8) - 1.0, clock_timestamp()) "
    f"ON CONFLICT (client_id) DO UPDATE SET tokens = {_REFILLED} - 1.0, "
    f"updated_at = clock_timestamp() WHERE {_REFILLED} >= 1.0 "
    "RETURNING tokens"
)
_LEVEL = text(
    f"SELECT {_REFILLED} FROM gateway.partner_rate_buckets AS b WHERE client_id = :client_id"
)


class PartnerRateLimiter:
    """Token buckets keyed by partner client id, kept in the database."""

    def __init__(self, default: Limit, overrides: Mapping[str, Limit] | None = None) -> None:
        """Build with a default limit and per-partner overrides (by client id or agency)."""
        self._default = default
        self._overrides = dict(overrides or {})

    def limit_for(self, client_id: str, agency: str) -> Limit:
        """The partner's limit: its own, its agency's, or the default."""
        return self._overrides.get(client_id) or self._overrides.get(agency) or self._default

    async def check(self, engine: AsyncEngine, client_id: str, agency: str) -> None:
        """Take one token for this request (its own autocommitted statement).

        Raises:
            RateLimited: With ``Retry-After`` when the partner's bucket is empty.
        """
        limit = self.limit_for(client_id, agency)
        rate_per_s = limit.per_minute / 60.0
        values = {"client_id": client_id, "burst": float(limit.burst), "rate": rate_per_s}
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            if (await autocommit.execute(_TAKE, values)).first() is not None:
                return
            level = (await autocommit.execute(_LEVEL, values)).scalar()
        tokens = float(level) if level is not None else 0.0
        wait_s = (1.0 - tokens) / rate_per_s if rate_per_s > 0 else 3600.0
        retry_after = max(1, math.ceil(wait_s))
        raise RateLimited(
            f"partner {client_id} is over its rate limit of {limit.per_minute:g} requests "
            f"a minute (burst {limit.burst}); retry after {retry_after} s",
            rule=RULE,
            headers={"Retry-After": str(retry_after)},
        )


def parse_overrides(spec: Mapping[str, str | int | float]) -> dict[str, Limit]:
    """Per-partner limits from settings: ``{"client-or-agency": "120/20"}`` (per minute/burst)."""
    limits: dict[str, Limit] = {}
    for key, value in spec.items():
        text = str(value)
        per_minute, _, burst = text.partition("/")
        rate = float(per_minute)
        limits[key] = Limit(rate, int(burst) if burst else max(1, int(rate)))
    return limits


def limiter_of(app: object, settings: object) -> PartnerRateLimiter:
    """The app's limiter, built on first use from the gateway settings."""
    from lpr_gateway.settings import Settings

    assert isinstance(settings, Settings)
    state = app.state  # type: ignore[attr-defined]
    limiter: PartnerRateLimiter | None = getattr(state, "partner_rate_limiter", None)
    if limiter is None:
        limiter = PartnerRateLimiter(
            Limit(settings.gateway_partner_rate_per_minute, settings.gateway_partner_burst),
            parse_overrides(settings.gateway_partner_rate_limits),
        )
        state.partner_rate_limiter = limiter
    return limiter
