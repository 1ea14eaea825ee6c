"""Deployment results (IACP B.1.e): reads, hits and dispositions reported to the gateway.

The gateway owns deployment records; the services that see reads, hits and dispositions
add to them through ``POST /internal/v1/deployments/{id}/results``. Counting must never
slow down or endanger ingestion, so a service only adds to an in-memory tally (no I/O)
and a background task sends one increment per deployment every ``interval_s``. A failed
send keeps its counts for the next round. The counts are statistics about a deployment,
not evidence (the reads, alerts and the audit chain are): a crash loses at most one
interval's tally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from fastapi import FastAPI

from lpr_common.context import service_context_auth
from lpr_common.http import build_client
from lpr_common.service import peer_url

_logger = logging.getLogger(__name__)

RESULTS_PATH = "/internal/v1/deployments/{deployment_id}/results"
# A deployment the gateway does not know (404) or a refused body (422) would be refused
# again: such counts are dropped with an error in the log instead of retried forever.
_PERMANENT = frozenset({404, 422})


@dataclass
class Tally:
    """Counts waiting to be added to one deployment."""

    reads: int = 0
    hits: int = 0
    dispositions: int = 0

    def merge(self, other: Tally) -> None:
        """Add another tally's counts to this one."""
        self.reads += other.reads
        self.hits += other.hits
        self.dispositions += other.dispositions


class DeploymentResults:
    """Tallies results per deployment and sends them to the gateway in batches."""

    def __init__(self, client: httpx.AsyncClient | None) -> None:
        """Send through ``client`` (the gateway's base URL); None only tallies."""
        self._client = client
        self._pending: dict[str, Tally] = {}

    def add(
        self,
        deployment_id: str | UUID | None,
        *,
        reads: int = 0,
        hits: int = 0,
        dispositions: int = 0,
    ) -> None:
        """Count results for a deployment (no I/O; reads from no deployment are not counted)."""
        if deployment_id is None or not (reads or hits or dispositions):
            return
        tally = self._pending.setdefault(str(deployment_id), Tally())
        tally.merge(Tally(reads, hits, dispositions))

    @property
    def pending(self) -> dict[str, Tally]:
        """Counts not yet taken by the gateway, by deployment id."""
        return dict(self._pending)

    async def flush(self) -> int:
        """Send every pending tally; return how many deployments the gateway took."""
        if self._client is None or not self._pending:
            return 0
        batch, self._pending = self._pending, {}
        sent = 0
        for deployment_id, tally in batch.items():
            try:
                response = await self._client.post(
                    RESULTS_PATH.format(deployment_id=deployment_id),
                    json={
                        "reads": tally.reads,
                        "hits": tally.hits,
                        "dispositions": tally.dispositions,
                    },
                )
            except httpx.HTTPError as exc:
                _logger.warning("deployment results for %s not sent: %r", deployment_id, exc)
                self._pending.setdefault(deployment_id, Tally()).merge(tally)
                continue
            if response.status_code < 300:
                sent += 1
            elif response.status_code in _PERMANENT:
                _logger.error(
                    "gateway refused results for deployment %s (%s): %s",
                    deployment_id,
                    response.status_code,
                    response.text[:300],
                )
            else:
                self._pending.setdefault(deployment_id, Tally()).merge(tally)
        return sent

    async def run(self, interval_s: float) -> None:
        """Flush every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.flush()
            except Exception:  # a bug in one round must not stop later rounds
                _logger.exception("deployment results flush failed")


def deployment_results_lifespan(service: str, interval_s: float = 1.0) -> Callable[[FastAPI], Any]:
    """Lifespan hook: ``app.state.deployment_results``, flushed in the background and at exit.

    Deliberately not a peer of :func:`lpr_common.service.create_service_app`: the gateway
    being down must not make the service unready, since ingestion does not depend on it.
    """

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        client = build_client(
            peer_url(app.state.settings, "gateway"),
            auth=service_context_auth(app.state.service_signer, service),
            retries=1,
        )
        results = DeploymentResults(client)
        app.state.deployment_results = results
        task = asyncio.create_task(results.run(interval_s))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(Exception):
                await asyncio.wait_for(results.flush(), timeout=5.0)
            await client.aclose()

    return hook
