"""The ledger of one process: the chain writers, the checkpoint key and the checkpointer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from lpr_audit.chain import (
    CanonicalEncodingError,
    ChainHead,
    Checkpoint,
    load_or_create_checkpoint_key,
    load_public_keys_pem,
    public_keys_pem,
    sign_checkpoint,
)
from lpr_audit.chain.checkpoints import CHECKPOINT_KEY_NAME
from lpr_audit.ledger import repository
from lpr_audit.ledger.chains import (
    ACCESS,
    CHAINS,
    DISSEMINATION,
    ChainSpec,
    PendingRecord,
    encode_dissemination,
    encode_event,
)
from lpr_audit.ledger.roles import use_writer_role
from lpr_audit.ledger.writer import AppendResult, ChainWriter
from lpr_audit.settings import Settings
from lpr_common.audit_client import AuditEvent, DisseminationRecord
from lpr_common.errors import FieldError, InvalidInput

_logger = logging.getLogger(__name__)


def trusted_public_keys(
    keys_dir: Path, key: Ed25519PrivateKey | None = None
) -> list[Ed25519PublicKey]:
    """The keys whose checkpoints are trusted: the current key and retired ones kept beside it.

    Retired keys are public halves named ``audit-checkpoint-<anything>.pub.pem``.
    """
    keys: list[Ed25519PublicKey] = []
    if key is not None:
        keys.append(key.public_key())
    current = keys_dir / f"{CHECKPOINT_KEY_NAME}.pub.pem"
    paths = sorted(keys_dir.glob(f"{CHECKPOINT_KEY_NAME}-*.pub.pem"))
    if key is None and current.exists():
        paths.insert(0, current)
    for path in paths:
        keys.extend(load_public_keys_pem(path.read_bytes()))
    return keys


def encode_all(
    items: Sequence[AuditEvent] | Sequence[DisseminationRecord], field: str
) -> list[PendingRecord]:
    """Encode every item of one request, or refuse the request naming each bad item.

    Raises:
        InvalidInput: an item cannot be stored exactly as it will be hashed.
    """
    recorded_at = repository.now()
    pending: list[PendingRecord] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        try:
            if isinstance(item, AuditEvent):
                pending.append(encode_event(item, recorded_at))
            elif isinstance(item, DisseminationRecord):
                pending.append(encode_dissemination(item, recorded_at))
        except CanonicalEncodingError as error:
            errors.append(FieldError(field=f"{field}[{index}]", reason=str(error)))
    if errors:
        raise InvalidInput("some records cannot be stored exactly", errors=errors)
    return pending


class Ledger:
    """Appends to both chains and signs checkpoints, in regular intervals and on demand."""

    def __init__(self, engine: AsyncEngine, key: Ed25519PrivateKey, settings: Settings) -> None:
        self.engine = engine
        self.key = key
        self.settings = settings
        self.public_keys = trusted_public_keys(settings.keys_dir, key)
        self.writers = {
            spec.name: ChainWriter(
                engine, spec, max_batch=settings.audit_max_batch, on_appended=self._appended
            )
            for spec in CHAINS.values()
        }
        self._since_checkpoint = dict.fromkeys(CHAINS, 0)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def public_key_pem(self) -> bytes:
        """The trusted checkpoint public keys as PEM."""
        return public_keys_pem(*self.public_keys)

    def start(self) -> None:
        """Start the writers and the checkpointer."""
        for writer in self.writers.values():
            writer.start()
        self._task = asyncio.create_task(self._checkpoint_loop(), name="audit-checkpointer")

    async def stop(self) -> None:
        """Stop the checkpointer, then the writers."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for writer in self.writers.values():
            await writer.stop()

    async def append_events(self, events: Sequence[AuditEvent]) -> AppendResult:
        """Append access log events; return once durable.

        Raises:
            InvalidInput: an event cannot be stored exactly.
            ServiceUnavailable: the log cannot record now.
        """
        return await self.writers[ACCESS.name].append(encode_all(events, "events"))

    async def append_disseminations(self, records: Sequence[DisseminationRecord]) -> AppendResult:
        """Append dissemination records; return once durable."""
        return await self.writers[DISSEMINATION.name].append(encode_all(records, "records"))

    async def checkpoint(self, spec: ChainSpec, seq: int | None = None) -> Checkpoint | None:
        """Sign and store a checkpoint at ``seq`` (default the tail); None for an empty chain."""
        async with self.engine.connect() as connection, connection.begin():
            return await repository.sign_stored(connection, spec, self.key, seq)

    async def sign_verified(self, spec: ChainSpec, head: ChainHead) -> Checkpoint:
        """Sign and store a checkpoint of ``head``, a record the caller has just verified.

        The hash signed is the one verified, not one read again: a row changed in between
        cannot slip under the signature.
        """
        checkpoint = sign_checkpoint(self.key, head)
        async with self.engine.connect() as connection, connection.begin():
            await repository.insert_checkpoint(connection, spec, checkpoint)
        return checkpoint

    def _appended(self, spec: ChainSpec, count: int) -> None:
        self._since_checkpoint[spec.name] += count
        if self._since_checkpoint[spec.name] >= self.settings.audit_checkpoint_every_records:
            self._wake.set()

    async def _checkpoint_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), timeout=self.settings.audit_checkpoint_interval_s
                )
            self._wake.clear()
            for spec in CHAINS.values():
                if not self._since_checkpoint[spec.name]:
                    continue
                self._since_checkpoint[spec.name] = 0
                try:
                    await self.checkpoint(spec)
                except Exception:  # keep checkpointing; the next round retries
                    _logger.exception("checkpoint of the %s chain failed", spec.name)


@asynccontextmanager
async def ledger_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan hook: switch the engine to the writer role, start the ledger, stop it after."""
    settings: Settings = app.state.settings
    engine: AsyncEngine = app.state.engine
    use_writer_role(engine, settings.audit_db_role)
    ledger = Ledger(engine, load_or_create_checkpoint_key(settings.keys_dir), settings)
    ledger.start()
    app.state.ledger = ledger
    try:
        yield
    finally:
        await ledger.stop()
