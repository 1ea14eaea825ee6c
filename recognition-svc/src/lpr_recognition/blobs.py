"""Content-addressed image storage.

A blob's key is derived from the SHA-256 of its bytes (``ab/cd/<sha256>``), so the same
image posted twice is stored once and a blob can be checked against its name at any time.
:class:`BlobStore` is the interface; :class:`LocalBlobStore` keeps blobs on a local disk or
volume, and an S3-compatible store can take its place behind the same methods.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Protocol


class BlobError(Exception):
    """A blob is missing or its bytes no longer match its SHA-256."""


class BlobMissing(BlobError):
    """No blob is stored under the key."""


class BlobCorrupted(BlobError):
    """The stored bytes do not hash to the SHA-256 the blob was stored under."""


def sha256_hex(data: bytes) -> str:
    """The lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def blob_key(sha256: str) -> str:
    """The storage key of a blob with this SHA-256: ``ab/cd/abcd...``."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a lowercase hex SHA-256")
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


class BlobStore(Protocol):
    """Where image bytes live; every method is safe to call concurrently."""

    async def put(self, data: bytes) -> tuple[str, str]:
        """Store ``data`` durably and return ``(sha256, key)``; a no-op if already stored."""
        ...

    async def get(self, key: str) -> bytes:
        """The bytes stored under ``key``, checked against their SHA-256.

        Raises:
            BlobMissing: Nothing is stored under ``key``.
            BlobCorrupted: The bytes do not match the key's SHA-256.
        """
        ...

    async def delete(self, key: str, *, written_before: datetime | None = None) -> bool:
        """Remove the blob ``key``; False when nothing was stored under it.

        With ``written_before``, only if it was last written (or stored again) before then:
        a blob an ingest has just stored again is kept.
        """
        ...

    async def written_before(
        self,
        cutoff: datetime,
        *,
        since: datetime | None = None,
        after: str | None = None,
        limit: int = 1000,
    ) -> list[str]:
        """Keys of up to ``limit`` blobs last written before ``cutoff``, in key order.

        ``since`` leaves out blobs last written before then; ``after`` resumes after the
        last key of the previous page. The retention job's orphan sweep pages through
        them (storing the same bytes again counts as a write).
        """
        ...


class LocalBlobStore:
    """Blobs as files under a directory, written atomically and fsynced."""

    def __init__(self, root: Path) -> None:
        """Use ``root`` (created on first write)."""
        self.root = root

    def path(self, key: str) -> Path:
        """The file holding the blob ``key``."""
        parts = key.split("/")
        if len(parts) != 3 or blob_key(parts[2]) != key:
            raise ValueError(f"not a blob key: {key!r}")
        return self.root.joinpath(*parts)

    def _put(self, data: bytes) -> tuple[str, str]:
        sha256 = sha256_hex(data)
        key = blob_key(sha256)
        target = self.path(key)
        # An existing blob is kept only if it is intact; a damaged one is rewritten. Kept,
        # it counts as written now, so the orphan sweep leaves it to the read storing it.
        if target.is_file() and sha256_hex(target.read_bytes()) == sha256:
            os.utime(target)
            return sha256, key
        target.parent.mkdir(parents=True, exist_ok=True)
        # Temp file in the same directory, fsync, rename, fsync the directory: after a
        # crash the blob is either complete under its name or absent, never partial.
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return sha256, key

    def _get(self, key: str) -> bytes:
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobMissing(f"no blob {key}") from None
        if sha256_hex(data) != path.name:
            raise BlobCorrupted(f"blob {key} does not match its SHA-256")
        return data

    def _delete(self, key: str, written_before: datetime | None) -> bool:
        path = self.path(key)
        try:
            if written_before is not None and path.stat().st_mtime >= written_before.timestamp():
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def _written_before(
        self, cutoff: datetime, since: datetime | None, after: str | None, limit: int
    ) -> list[str]:
        limit_ts = cutoff.timestamp()
        since_ts = since.timestamp() if since is not None else float("-inf")
        keys: list[str] = []

        def children(directory: Path, floor: str) -> list[os.DirEntry[str]]:
            try:
                with os.scandir(directory) as entries:
                    found = [e for e in entries if e.name >= floor]
            except FileNotFoundError:
                return []
            return sorted(found, key=lambda e: e.name)

        start = after.split("/") if after else ["", "", ""]
        for first in children(self.root, start[0]):
            if len(first.name) != 2 or not first.is_dir():
                continue
            second_floor = start[1] if first.name == start[0] else ""
            for second in children(Path(first.path), second_floor):
                if len(second.name) != 2 or not second.is_dir():
                    continue
                resumed = first.name == start[0] and second.name == start[1]
                for blob in children(Path(second.path), start[2] if resumed else ""):
                    key = f"{first.name}/{second.name}/{blob.name}"
                    if (after is not None and key <= after) or blob.name.startswith(".tmp-"):
                        continue
                    try:
                        written = blob.stat().st_mtime
                        if not since_ts <= written < limit_ts or blob_key(blob.name) != key:
                            continue
                    except (FileNotFoundError, ValueError):
                        continue
                    keys.append(key)
                    if len(keys) >= limit:
                        return keys
        return keys

    async def put(self, data: bytes) -> tuple[str, str]:
        """Store ``data`` durably and return ``(sha256, key)``; a no-op if already stored."""
        return await asyncio.to_thread(self._put, data)

    async def delete(self, key: str, *, written_before: datetime | None = None) -> bool:
        """Remove the blob ``key`` (retention); False when nothing was stored under it."""
        return await asyncio.to_thread(self._delete, key, written_before)

    async def written_before(
        self,
        cutoff: datetime,
        *,
        since: datetime | None = None,
        after: str | None = None,
        limit: int = 1000,
    ) -> list[str]:
        """Keys of up to ``limit`` blobs last written in [``since``, ``cutoff``), after ``after``."""
        return await asyncio.to_thread(self._written_before, cutoff, since, after, limit)

    async def get(self, key: str) -> bytes:
        """The bytes stored under ``key``, checked against their SHA-256."""
        return await asyncio.to_thread(self._get, key)
