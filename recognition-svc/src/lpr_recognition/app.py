"""The recognition service application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from tritonclient.utils import InferenceServerException

from lpr_common.deployment_results import deployment_results_lifespan
from lpr_common.errors import ServiceUnavailable
from lpr_common.lanes import add_lanes
from lpr_common.service import create_service_app
from lpr_recognition.blobs import LocalBlobStore
from lpr_recognition.fusion.service import FusionConfig
from lpr_recognition.inference.triton_client import TritonRecognizer
from lpr_recognition.reads.router import router as reads_router
from lpr_recognition.retention.router import holds_router, runs_router
from lpr_recognition.retention.runtime import retention_runtime
from lpr_recognition.search.router import LANES as SEARCH_LANES
from lpr_recognition.search.router import router as search_router
from lpr_recognition.settings import Settings
from lpr_recognition.workers.backoff import run_forever
from lpr_recognition.workers.handoff import HandoffWorker
from lpr_recognition.workers.recognition import RecognitionWorker

READINESS_TIMEOUT_S = 2.0


@contextlib.asynccontextmanager
async def reads_runtime(app: FastAPI) -> AsyncIterator[None]:
    """Open the blob store and the Triton client; run the workers until shutdown."""
    settings: Settings = app.state.settings
    app.state.blobs = LocalBlobStore(settings.blob_dir)
    app.state.recognition_wakeup = asyncio.Event()
    recognizer: TritonRecognizer | None = None
    if settings.recognition_enabled:
        recognizer = TritonRecognizer(
            settings.triton_url,
            timeout_s=settings.triton_timeout_s,
            max_concurrency=settings.recognition_concurrency,
        )
        await recognizer.open()
    app.state.recognizer = recognizer
    tasks: list[asyncio.Task[None]] = []
    if settings.workers_enabled:
        handoff = HandoffWorker(
            sessionmaker=app.state.sessionmaker,
            hotlist=app.state.peers.get("hotlist"),
            audit=getattr(app.state, "audit", None),
            deployment_results=getattr(app.state, "deployment_results", None),
            batch_size=settings.handoff_batch_size,
            audit_batch_size=settings.audit_batch_size,
            lease_s=settings.recognition_lease_s,
            retry_base_s=settings.retry_base_s,
            retry_max_s=settings.retry_max_s,
        )
        tasks.append(
            asyncio.create_task(
                run_forever("handoff", handoff.run_once, poll_s=settings.worker_poll_s)
            )
        )
        if recognizer is not None:
            recognition = RecognitionWorker(
                sessionmaker=app.state.sessionmaker,
                blobs=app.state.blobs,
                recognizer=recognizer,
                region=settings.recognition_region or None,
                concurrency=settings.recognition_concurrency,
                lease_s=settings.recognition_lease_s,
                retry_base_s=settings.retry_base_s,
                retry_max_s=settings.retry_max_s,
                fusion=FusionConfig.of(settings),
            )
            tasks.append(
                asyncio.create_task(
                    run_forever(
                        "recognition",
                        recognition.run_once,
                        poll_s=settings.worker_poll_s,
                        wakeup=app.state.recognition_wakeup,
                    )
                )
            )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if recognizer is not None:
            await recognizer.close()


async def triton(app: FastAPI) -> None:
    """Readiness: Triton answers and every model the pipeline uses is loaded."""
    recognizer: TritonRecognizer | None = app.state.recognizer
    if recognizer is None:  # ingest-only: reads are stored and wait for recognition
        return
    try:
        live = await recognizer.client.is_server_live(client_timeout=READINESS_TIMEOUT_S)
    except InferenceServerException as exc:
        raise ServiceUnavailable(
            f"unreachable: Triton at {recognizer.url} ({exc.status() or 'no answer'})"
        ) from exc
    if not live or not await recognizer.is_ready():
        raise ServiceUnavailable(f"not ready: Triton at {recognizer.url} is loading its models")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the recognition service app."""
    app = create_service_app(
        name="recognition",
        title="LPR recognition service",
        description="Reads: ingest, image blobs, plate recognition through Triton, historical search and read retention.",
        settings=settings or Settings(),
        routers=[search_router, reads_router, holds_router, runs_router],
        peers=["hotlist", "audit"],
        lifespan_hooks=[
            deployment_results_lifespan("recognition"),
            reads_runtime,
            retention_runtime,
        ],
        readiness_checks=[triton],
        openapi_tags=[{"name": "reads", "description": "Camera reads, their images and plates"}],
    )
    add_lanes(app, SEARCH_LANES)
    return app


app = create_app()
