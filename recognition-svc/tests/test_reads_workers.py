"""The workers: recognition with retries and backoff, leases, the handoff and audit outbox.

These tests commit (the workers run their own transactions), so they use a database of
their own. Triton is replaced by a scripted recognizer here; the whole-stack tests in
tests/test_reads_stack.py run the real server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from lpr_common.audit_client import AuditClient
from lpr_common.context import ContextSigner, service_context_auth
from lpr_common.db import build_engine, build_sessionmaker
from lpr_common.testing import service_auth_signer
from lpr_recognition.app import create_app
from lpr_recognition.blobs import LocalBlobStore
from lpr_recognition.inference.errors import RecognitionUnavailable
from lpr_recognition.inference.pipeline import PlateResult
from lpr_recognition.reads import repository
from lpr_recognition.reads.models import OutboxKind
from lpr_recognition.settings import Settings
from lpr_recognition.testing import Camera, jpeg_bytes, metadata
from lpr_recognition.workers.handoff import MATCHES_PATH, HandoffWorker
from lpr_recognition.workers.recognition import RecognitionWorker
from lprctl.pytest_plugin import app_client


@dataclass
class ScriptedRecognizer:
    """Stands in for Triton: fails while ``down``, then reads ``plates``."""

    plates: list[PlateResult]
    down: bool = False
    calls: list[bytes] = field(default_factory=list)

    async def recognize(self, image_bytes: bytes, region: str | None = None) -> list[PlateResult]:
        self.calls.append(image_bytes)
        if self.down:
            raise RecognitionUnavailable("Triton model platedet failed: connection refused")
        return self.plates


PLATE = PlateResult(
    text="6HP995",
    confidence=0.93,
    detection_confidence=0.88,
    box=(10, 12, 40, 16),
    region="us",
    candidates=[("6HP995", 0.93), ("6HP99S", 0.41)],
)


@pytest.fixture(scope="module")
async def engine(isolated_database_url: str) -> AsyncIterator[AsyncEngine]:
    built = build_engine(isolated_database_url, pool_size=4)
    yield built
    await built.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return build_sessionmaker(engine)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], isolated_database_url: str) -> Settings:
    return make_settings(database_url=isolated_database_url)


async def post_committed(settings: Settings, camera: Camera, count: int = 1) -> list[str]:
    """Post reads through the app, committed (no rolled-back session)."""
    async with app_client(create_app(settings)) as client:
        ids = []
        for _ in range(count):
            response = await camera.post_read(client, metadata(), jpeg_bytes())
            assert response.status_code == 202, response.text
            ids.append(response.json()["read_id"])
    return ids


async def read_row(sessionmaker: async_sessionmaker[AsyncSession], read_id: str) -> dict[str, Any]:
    async with sessionmaker() as session:
        row = (
            (
                await session.execute(
                    text("SELECT * FROM recognition.reads WHERE id = :id"), {"id": read_id}
                )
            )
            .mappings()
            .one()
        )
    return dict(row)


async def make_due(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Let time pass: every postponed read and message is due now."""
    async with sessionmaker() as session, session.begin():
        past = datetime.now(UTC) - timedelta(seconds=1)
        await session.execute(
            text("UPDATE recognition.reads SET next_attempt_at = :t"), {"t": past}
        )
        await session.execute(
            text("UPDATE recognition.outbox SET next_attempt_at = :t"), {"t": past}
        )


def recognition_worker(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    recognizer: ScriptedRecognizer,
    lease_s: float = 60.0,
) -> RecognitionWorker:
    return RecognitionWorker(
        sessionmaker=sessionmaker,
        blobs=LocalBlobStore(settings.blob_dir),
        recognizer=recognizer,
        region="us",
        concurrency=4,
        lease_s=lease_s,
        retry_base_s=5.0,
        retry_max_s=60.0,
    )


async def drain(worker: RecognitionWorker) -> None:
    while await worker.run_once():
        pass


async def test_a_read_waits_with_backoff_while_triton_is_down_then_is_recognized(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, camera: Camera
) -> None:
    (read_id,) = await post_committed(settings, camera)
    recognizer = ScriptedRecognizer([PLATE], down=True)
    worker = recognition_worker(sessionmaker, settings, recognizer)

    await drain(worker)
    await drain(worker)  # not due again yet: no second call
    assert len(recognizer.calls) == 1
    waiting = await read_row(sessionmaker, read_id)
    assert waiting["status"] == "pending"
    assert waiting["attempts"] == 1
    assert "connection refused" in waiting["last_error"]
    assert waiting["next_attempt_at"] > datetime.now(UTC) + timedelta(seconds=3)

    await make_due(sessionmaker)
    await drain(worker)
    second = await read_row(sessionmaker, read_id)
    assert (second["attempts"], second["status"]) == (2, "pending")
    # Doubling: the second wait is longer than the first could be.
    assert second["next_attempt_at"] > datetime.now(UTC) + timedelta(seconds=7)

    recognizer.down = False
    await make_due(sessionmaker)
    await drain(worker)
    done = await read_row(sessionmaker, read_id)
    assert done["status"] == "recognized"
    assert done["last_error"] is None
    assert recognizer.calls[-1] == jpeg_bytes()  # the stored image, byte for byte
    async with sessionmaker() as session:
        plate = (
            (
                await session.execute(
                    text("SELECT * FROM recognition.plates WHERE read_id = :id"), {"id": read_id}
                )
            )
            .mappings()
            .one()
        )
        queued = await repository.count_outbox(session, kind=OutboxKind.match, read_id=done["id"])
    assert (plate["text"], plate["normalized_text"], plate["source"]) == (
        "6HP995",
        "6HP995",
        "recognition",
    )
    assert plate["box"] == [10, 12, 40, 16]
    assert plate["candidates"] == [
        {"text": "6HP995", "confidence": 0.93},
        {"text": "6HP99S", "confidence": 0.41},
    ]
    assert queued == 1


async def test_a_read_claimed_by_a_worker_that_died_is_taken_again_after_its_lease(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, camera: Camera
) -> None:
    (read_id,) = await post_committed(settings, camera)
    async with sessionmaker() as session, session.begin():
        first = await repository.claim_due_reads(
            session, limit=100, now=datetime.now(UTC), lease=timedelta(seconds=0.3)
        )
    assert read_id in {str(r.id) for r in first}
    # Claimed reads are hidden from other workers while the lease runs ...
    async with sessionmaker() as session, session.begin():
        during = await repository.claim_due_reads(
            session, limit=100, now=datetime.now(UTC), lease=timedelta(seconds=60)
        )
    assert read_id not in {str(r.id) for r in during}
    # ... and come back when the worker holding them never finished.
    await asyncio.sleep(0.4)
    recognizer = ScriptedRecognizer([PLATE])
    await drain(recognition_worker(sessionmaker, settings, recognizer))
    assert (await read_row(sessionmaker, read_id))["status"] == "recognized"


async def test_concurrent_workers_never_claim_the_same_read(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, camera: Camera
) -> None:
    posted = set(await post_committed(settings, camera, count=6))

    async def claim() -> set[str]:
        async with sessionmaker() as session, session.begin():
            reads = await repository.claim_due_reads(
                session, limit=4, now=datetime.now(UTC), lease=timedelta(seconds=60)
            )
            await asyncio.sleep(0.2)  # hold the row locks while the other claims
        return {str(r.id) for r in reads}

    first, second = await asyncio.gather(claim(), claim())
    assert not first & second
    assert posted <= first | second


class RecordingWakeup(asyncio.Event):
    """The recognition workers' wake-up, noting in ``log`` when ingest rings it."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self._log = log

    def set(self) -> None:
        self._log.append("wake workers")
        super().set()


async def _post_one_read(client: httpx.AsyncClient, camera: Camera) -> httpx.Response:
    return await camera.post_read(client, metadata(), jpeg_bytes())


async def _post_a_batch(client: httpx.AsyncClient, camera: Camera) -> httpx.Response:
    path = "/v1/reads/batch"
    reads = [metadata(edge_plate={"text": "6HP995"})]
    return await client.post(path, json={"reads": reads}, headers=camera.headers("POST", path))


@pytest.mark.parametrize("post", [_post_one_read, _post_a_batch])
async def test_ingest_wakes_the_workers_only_once_the_read_is_committed(
    settings: Settings,
    camera: Camera,
    monkeypatch: pytest.MonkeyPatch,
    post: Callable[[httpx.AsyncClient, Camera], Awaitable[httpx.Response]],
) -> None:
    """A worker woken before the commit claims nothing and sleeps ``worker_poll_s``."""
    log: list[str] = []
    real_commit = AsyncSession.commit

    async def commit(self: AsyncSession) -> None:
        # Only a commit that ends a transaction; the session dependency's commit after
        # an endpoint that committed itself has nothing to commit.
        committing = self.in_transaction()
        await real_commit(self)
        if committing:
            log.append("commit")

    app = create_app(settings)
    async with app_client(app) as client:
        app.state.recognition_wakeup = RecordingWakeup(log)
        monkeypatch.setattr(AsyncSession, "commit", commit)
        response = await post(client, camera)
        monkeypatch.setattr(AsyncSession, "commit", real_commit)
    assert response.status_code == 202, response.text
    assert log == ["commit", "wake workers"]


def _handoff(
    sessionmaker: async_sessionmaker[AsyncSession],
    hotlist: httpx.AsyncClient | None,
) -> HandoffWorker:
    return HandoffWorker(
        sessionmaker=sessionmaker,
        hotlist=hotlist,
        audit=None,
        batch_size=50,
        audit_batch_size=50,
        lease_s=60,
        retry_base_s=5.0,
        retry_max_s=60.0,
    )


async def _recognized_read(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, camera: Camera
) -> str:
    (read_id,) = await post_committed(settings, camera)
    await drain(recognition_worker(sessionmaker, settings, ScriptedRecognizer([PLATE])))
    return read_id


async def test_the_handoff_keeps_the_read_queued_while_hotlist_is_unreachable(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, camera: Camera
) -> None:
    read_id = await _recognized_read(sessionmaker, settings, camera)
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as unreachable:
        delivered = await _handoff(sessionmaker, unreachable).deliver_matches()
    assert delivered == 0
    read = await read_row(sessionmaker, read_id)
    assert read["status"] == "recognized"
    assert read["last_error"].startswith("handoff: ConnectError")
    async with sessionmaker() as session:
        message = (
            (
                await session.execute(
                    text("SELECT * FROM recognition.outbox WHERE read_id = :id AND kind = 'match'"),
                    {"id": read_id},
                )
            )
            .mappings()
            .one()
        )
    assert message["attempts"] == 1
    assert message["next_attempt_at"] > datetime.now(UTC) + timedelta(seconds=3)


async def test_the_handoff_marks_the_read_matched_by_hotlist_svc(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    camera: Camera,
    signer: ContextSigner,
) -> None:
    hotlist_app_module = pytest.importorskip("lpr_hotlist.app")
    hotlist_app = hotlist_app_module.create_app()
    if MATCHES_PATH not in hotlist_app.openapi()["paths"]:
        pytest.skip("hotlist-svc has no /internal/v1/matches yet")
    read_id = await _recognized_read(sessionmaker, settings, camera)
    async with app_client(hotlist_app) as hotlist:
        hotlist.auth = service_context_auth(service_auth_signer("recognition"), "recognition")
        await make_due(sessionmaker)
        delivered = 0
        for _ in range(20):  # the hot-list index may still be loading
            delivered += await _handoff(sessionmaker, hotlist).deliver_matches()
            if (await read_row(sessionmaker, read_id))["status"] == "matched":
                break
            await make_due(sessionmaker)
            await asyncio.sleep(0.2)
    read = await read_row(sessionmaker, read_id)
    assert read["status"] == "matched", read["last_error"]
    assert read["last_error"] is None
    async with sessionmaker() as session:
        left = await repository.count_outbox(session, kind=OutboxKind.match, read_id=read["id"])
    assert left == 0


async def test_a_damaged_blob_is_refused_not_served(
    settings: Settings, camera: Camera, blob_dir: Path
) -> None:
    (read_id,) = await post_committed(settings, camera)
    (blob,) = [p for p in blob_dir.rglob("*") if p.is_file()]
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")
    async with app_client(create_app(settings)) as client:
        path = f"/v1/reads/{read_id}/image"
        response = await client.get(path, headers=camera.headers("GET", path))
    assert response.status_code == 503
    assert "does not match its SHA-256" in response.json()["detail"]


async def test_the_blob_store_writes_once_and_repairs_a_damaged_blob(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    data = jpeg_bytes()
    sha, key = await store.put(data)
    assert key == f"{sha[:2]}/{sha[2:4]}/{sha}"
    path = store.path(key)
    inode = path.stat().st_ino
    assert await store.put(data) == (sha, key)
    # Already there: not rewritten (a write renames a new file into place).
    assert path.stat().st_ino == inode
    path.write_bytes(b"garbage")
    await store.put(data)
    assert await store.get(key) == data
    assert [p.name for p in path.parent.iterdir()] == [sha]  # no temp files left behind


def _audit_worker(
    sessionmaker: async_sessionmaker[AsyncSession], audit: AuditClient
) -> HandoffWorker:
    return HandoffWorker(
        sessionmaker=sessionmaker,
        hotlist=None,
        audit=audit,
        batch_size=50,
        audit_batch_size=500,
        lease_s=60,
        retry_base_s=5.0,
        retry_max_s=60.0,
    )


async def _queued_events(
    sessionmaker: async_sessionmaker[AsyncSession], read_ids: list[str]
) -> int:
    async with sessionmaker() as session:
        result = await session.execute(
            text(
                "SELECT count(*) FROM recognition.outbox "
                "WHERE kind = 'audit' AND read_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": read_ids},
        )
    return int(result.scalar_one())


async def test_ingest_events_wait_in_the_outbox_while_audit_is_down_then_are_recorded(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    camera: Camera,
    signer: ContextSigner,
) -> None:
    read_ids = await post_committed(settings, camera, count=3)
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as unreachable:
        assert await _audit_worker(sessionmaker, AuditClient(unreachable)).deliver_audit() == 0
    assert await _queued_events(sessionmaker, read_ids) == 3

    audit_app_module = pytest.importorskip("lpr_audit.app")
    audit_app = audit_app_module.create_app()
    if "/internal/v1/events" not in audit_app.openapi()["paths"]:
        pytest.skip("audit-svc has no /internal/v1/events yet")
    await make_due(sessionmaker)
    async with app_client(audit_app) as audit:
        audit.auth = service_context_auth(service_auth_signer("recognition"), "recognition")
        delivered = await _audit_worker(sessionmaker, AuditClient(audit)).deliver_audit()
    assert delivered >= 3
    assert await _queued_events(sessionmaker, read_ids) == 0
