"""The purge job in the service's lifespan: every ``LPR_RETENTION_INTERVAL_MINUTES``.

Beside it, every ``LPR_RETENTION_RECEIPTS_FLUSH_S``, the receipts of committed runs that
audit-svc has not recorded yet are resent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from fastapi import FastAPI

from lpr_recognition.blobs import BlobStore, LocalBlobStore
from lpr_recognition.retention.config import RetentionConfig
from lpr_recognition.retention.job import RetentionJob
from lpr_recognition.settings import Settings

_logger = logging.getLogger(__name__)


async def run_periodically(job: RetentionJob, *, first_delay_s: float, interval_s: float) -> None:
    """Run the purge after ``first_delay_s``, then every ``interval_s``, until cancelled."""
    delay = first_delay_s
    while True:
        await asyncio.sleep(delay)
        delay = interval_s
        try:
            await job.run(trigger="schedule")
        except Exception:  # a bad run must not end the schedule; it is logged and retried
            _logger.exception("retention run raised")


async def flush_receipts_periodically(job: RetentionJob, *, interval_s: float) -> None:
    """Resend queued receipts every ``interval_s`` until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            # Runs that finished within the interval are most likely being sent by the run.
            await job.deliver_receipts(min_age=timedelta(seconds=interval_s))
        except Exception:  # a database restart must not end the flusher; it tries again
            _logger.exception("retention receipts flush raised")


@contextlib.asynccontextmanager
async def retention_runtime(app: FastAPI) -> AsyncIterator[None]:
    """Build the job (``app.state.retention``) and, when enabled, its background schedule."""
    settings: Settings = app.state.settings
    config = RetentionConfig()
    blobs: BlobStore = getattr(app.state, "blobs", None) or LocalBlobStore(settings.blob_dir)
    job = RetentionJob(
        engine=app.state.engine,
        audit=app.state.peers.get("audit"),
        blobs=blobs,
        config=config,
    )
    app.state.retention = job
    tasks: list[asyncio.Task[None]] = []
    if settings.workers_enabled:
        tasks.append(
            asyncio.create_task(
                flush_receipts_periodically(job, interval_s=config.receipts_flush_s),
                name="retention-receipts",
            )
        )
        if config.enabled:
            tasks.append(
                asyncio.create_task(
                    run_periodically(
                        job,
                        first_delay_s=config.first_delay_s,
                        interval_s=config.interval_minutes * 60,
                    )
                )
            )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
