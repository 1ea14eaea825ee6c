"""Per-partner rate limits (IACP D.2: the MOU API is a service to a partner, not a firehose).

A token bucket per partner client: ``rate`` requests a minute on average, bursts up to
``burst``. Going over is refused with 429 and ``Retry-After`` (seconds until a token is
back), and audited like every decision. Buckets live in each gateway replica's memory, so
with N replicas a partner gets up to N times its limit; a shared store is the next step
when the gateway scales out.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lpr_common.errors import RateLimited

RULE = "partner-rate-limit"


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True, slots=True)
class Limit:
    """Requests per minute and the largest burst."""

    per_minute: float
    burst: int


class PartnerRateLimiter:
    """Token buckets keyed by partner client id."""

    def __init__(
        self,
        default: Limit,
        overrides: Mapping[str, Limit] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Build with a default limit and per-partner overrides (by client id or agency)."""
        self._default = default
        self._overrides = dict(overrides or {})
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def limit_for(self, client_id: str, agency: str) -> Limit:
        """The partner's limit: its own, its agency's, or the default."""
        return self._overrides.get(client_id) or self._overrides.get(agency) or self._default

    def check(self, client_id: str, agency: str) -> None:
        """Take one token for this request.

        Raises:
            RateLimited: With ``Retry-After`` when the partner's bucket is empty.
        """
        limit = self.limit_for(client_id, agency)
        rate_per_s = limit.per_minute / 60.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(client_id)
            if bucket is None:
                bucket = self._buckets[client_id] = _Bucket(float(limit.burst), now)
            bucket.tokens = min(
                float(limit.burst), bucket.tokens + (now - bucket.updated) * rate_per_s
            )
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait_s = (1.0 - bucket.tokens) / rate_per_s if rate_per_s > 0 else 3600.0
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
