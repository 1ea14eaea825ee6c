"""Demo step: a camera posts the dev images as reads; print each read's plate once recognized."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

CAMERA_KEY_HEADER = "X-Camera-Key"
# Where the demo camera stands (Sacramento, CA).
LATITUDE, LONGITUDE = 38.5816, -121.4944


def dev_images(images_dir: Path, limit: int) -> list[tuple[Path, str | None]]:
    """Up to ``limit`` images of a dev set, with their labelled plate when a label exists."""
    images = []
    for label in sorted(images_dir.glob("*.txt")):
        fields = label.read_text().strip().split("\t")
        image = images_dir / fields[0]
        if image.is_file():
            images.append((image, fields[5] if len(fields) > 5 else None))
    if not images:
        images = [
            (p, None) for p in sorted(images_dir.glob("*.jp*g")) + sorted(images_dir.glob("*.png"))
        ]
    return images[:limit]


def post_image(
    client: httpx.Client,
    gateway_url: str,
    camera_key: str,
    image: Path,
    *,
    camera_read_id: str | None = None,
) -> str:
    """Post one image as a read from the camera whose key is ``camera_key``; return the read id."""
    metadata = {
        "camera_read_id": camera_read_id or f"demo-{image.stem}-{uuid.uuid4().hex[:8]}",
        "captured_at": datetime.now(UTC).isoformat(),
        "latitude": LATITUDE,
        "longitude": LONGITUDE,
        "heading": 90.0,
    }
    content_type = "image/png" if image.suffix.lower() == ".png" else "image/jpeg"
    response = client.post(
        f"{gateway_url}/v1/reads",
        files={"image": (image.name, image.read_bytes(), content_type)},
        data={"metadata": json.dumps(metadata)},
        headers={CAMERA_KEY_HEADER: camera_key},
    )
    if response.status_code not in (200, 202):
        raise RuntimeError(
            f"posting {image.name} failed: HTTP {response.status_code} {response.text}"
        )
    read_id: str = response.json()["read_id"]
    return read_id


def _plate_line(read: Mapping[str, Any]) -> str:
    plates = read.get("plates") or []
    if not plates:
        return "no plate found"
    best = plates[0]
    return f"{best['text'] or '?'} (confidence {best['confidence']:.2f})"


def post_dev_images(
    client: httpx.Client,
    gateway_url: str,
    camera_key: str,
    images_dir: Path,
    limit: int,
    *,
    viewer_headers: Mapping[str, str] | None = None,
    timeout_s: float = 120.0,
) -> list[str]:
    """Post dev images as reads from a camera, then print each read's plate when recognized.

    Args:
        client: HTTP client.
        gateway_url: The gateway's base URL.
        camera_key: The demo camera's key (``X-Camera-Key``).
        images_dir: A folder of images, with ``<name>.txt`` labels as in shared/data/plates.
        limit: At most this many images.
        viewer_headers: Headers of someone allowed to view reads (an officer's token and
            purpose); cameras only post. Without them the plates are not looked up.
        timeout_s: How long to wait for recognition.

    Returns:
        The read ids, in posting order.
    """
    images = dev_images(images_dir, limit)
    started = time.monotonic()
    read_ids = [post_image(client, gateway_url, camera_key, image) for image, _ in images]
    print(f"posted {len(read_ids)} reads in {time.monotonic() - started:.1f} s")
    if viewer_headers is None:
        for (image, _), read_id in zip(images, read_ids, strict=True):
            print(f"  {image.name:<45} read {read_id}")
        return read_ids
    waiting = dict(zip(read_ids, images, strict=True))
    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        for read_id, (image, label) in list(waiting.items()):
            response = client.get(f"{gateway_url}/v1/reads/{read_id}", headers=dict(viewer_headers))
            if response.status_code != 200:
                print(f"  {image.name:<45} cannot view the read: HTTP {response.status_code}")
                del waiting[read_id]
                continue
            read = response.json()
            if read["status"] == "pending":
                continue
            expected = f"  (label {label})" if label else ""
            print(f"  {image.name:<45} {_plate_line(read)}{expected}")
            del waiting[read_id]
        if waiting:
            time.sleep(0.5)
    for read_id, (image, _) in waiting.items():
        print(f"  {image.name:<45} still pending after {timeout_s:.0f} s (read {read_id})")
    return read_ids
