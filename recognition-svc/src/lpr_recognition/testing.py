"""Helpers for tests of the reads API: small real images, read metadata, a camera's context.

Used by recognition-svc/tests; kept in the package so that the tests import it by name.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from lpr_common.context import ContextSigner, RequestContext
from lpr_recognition.settings import SCHEMA

AGENCY = "CA0010000"


def jpeg_bytes(
    width: int = 96, height: int = 64, color: tuple[int, int, int] = (40, 90, 160)
) -> bytes:
    """A small, valid JPEG."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def noisy_jpeg(width: int = 200, height: int = 150) -> bytes:
    """A valid JPEG of random pixels: large for its pixel count."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(
        buffer, format="JPEG", quality=95
    )
    return buffer.getvalue()


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    """A small, valid PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def metadata(**overrides: Any) -> dict[str, Any]:
    """Valid read metadata with a fresh camera read id."""
    values: dict[str, Any] = {
        "camera_read_id": f"r-{uuid.uuid4()}",
        "captured_at": datetime.now(UTC).isoformat(),
        "latitude": 38.5816,
        "longitude": -121.4944,
        "heading": 90.0,
        "speed": 42.5,
        "lane": 1,
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


@dataclass
class Camera:
    """A camera as the gateway authenticated it; signs a context per request."""

    camera_id: str
    signer: ContextSigner
    agency: str = AGENCY
    deployment_id: str | None = None

    def headers(self, method: str, path: str) -> dict[str, str]:
        """The signed context header for one request."""
        context = RequestContext(
            subject_kind="camera",
            subject_id=self.camera_id,
            agency=self.agency,
            camera_id=self.camera_id,
            deployment_id=self.deployment_id,
            method=method,
            path=path,
            issued_at=datetime.now(UTC),
        )
        return {"X-LPR-Context": self.signer.sign(context)}

    async def post_read(
        self,
        client: httpx.AsyncClient,
        meta: dict[str, Any] | str,
        image: bytes | None,
        content_type: str = "image/jpeg",
    ) -> httpx.Response:
        """POST /v1/reads as multipart."""
        files: dict[str, Any] = {}
        if image is not None:
            files["image"] = ("read.jpg", image, content_type)
        body = meta if isinstance(meta, str) else json.dumps(meta)
        return await client.post(
            "/v1/reads",
            files=files,
            data={"metadata": body},
            headers=self.headers("POST", "/v1/reads"),
        )


def user_headers(
    signer: ContextSigner, method: str, path: str, agency: str = AGENCY
) -> dict[str, str]:
    """A signed context of an officer of ``agency``."""
    context = RequestContext(
        subject_kind="user",
        subject_id="officer-1",
        agency=agency,
        roles=["officer"],
        purpose="investigation",
        method=method,
        path=path,
        issued_at=datetime.now(UTC),
    )
    return {"X-LPR-Context": signer.sign(context)}


async def stored_rows(session: AsyncSession, camera_id: str) -> dict[str, int]:
    """How many rows each reads table holds for one camera."""
    counts = {}
    for table, where in (
        ("reads", "camera_id = :camera"),
        ("read_keys", "camera_id = :camera"),
        (
            "outbox",
            "read_id IN (SELECT read_id FROM recognition.read_keys WHERE camera_id = :camera)",
        ),
    ):
        result = await session.execute(
            text(f"SELECT count(*) FROM {SCHEMA}.{table} WHERE {where}"), {"camera": camera_id}
        )
        counts[table] = int(result.scalar_one())
    return counts


def blob_files(blob_dir: Path) -> list[Path]:
    """Every file under the blob directory."""
    return sorted(p for p in blob_dir.rglob("*") if p.is_file()) if blob_dir.exists() else []
