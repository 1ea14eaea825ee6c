"""The policy engine of this process: loaded once, reloaded when the rows change.

Runtime rows (``policy_rules``) and the administered purposes live in the gateway's
schema. A trigger NOTIFYs ``lpr_policy_changed`` on every write; each replica LISTENs
and reloads at once, and also polls a cheap fingerprint of both tables every few
seconds, which covers a dropped LISTEN connection. Either way every replica sees a
change within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from lpr_common.db import plain_url
from lpr_gateway.governance.models import PolicyRule, PurposeRecord
from lpr_gateway.settings import Settings
from lpr_policy import PolicyEngine, PolicyRowError, Purpose

_logger = logging.getLogger(__name__)

CHANNEL = "lpr_policy_changed"


def rule_loader(
    factory: async_sessionmaker[AsyncSession],
) -> Any:
    """A rules loader for :class:`PolicyEngine` reading ``policy_rules``."""

    async def load() -> list[Sequence[str | None]]:
        async with factory() as session:
            rows = (await session.scalars(select(PolicyRule).order_by(col(PolicyRule.id)))).all()
        return [(r.ptype, r.v0, r.v1, r.v2, r.v3, r.v4, r.v5) for r in rows]

    return load


def purposes_loader(factory: async_sessionmaker[AsyncSession]) -> Any:
    """A purposes loader for :class:`PolicyEngine` reading the active purposes."""

    async def load() -> list[Purpose]:
        async with factory() as session:
            rows = (
                await session.scalars(select(PurposeRecord).where(col(PurposeRecord.active)))
            ).all()
        return [Purpose(r.code, r.label, r.requires_offense) for r in rows]

    return load


async def fingerprint(factory: async_sessionmaker[AsyncSession]) -> tuple[Any, ...]:
    """Counts and last changes of the rows the engine loads (changes when they do)."""
    async with factory() as session:
        rules = (
            await session.execute(
                select(func.count(), func.max(col(PolicyRule.updated_at)), func.max(PolicyRule.id))
            )
        ).one()
        purposes = (
            await session.execute(
                select(func.count(), func.max(col(PurposeRecord.updated_at))).where(
                    col(PurposeRecord.active)
                )
            )
        ).one()
    return (*rules, *purposes)


async def notify_changed(session: AsyncSession) -> None:
    """Notify every replica on commit (the triggers do too; this is for clarity in code)."""
    await session.execute(text(f"NOTIFY {CHANNEL}"))


async def _reload(engine: PolicyEngine) -> None:
    try:
        await engine.reload()
    except PolicyRowError:
        # A bad row must not take the gateway down: the previous policy stays in force.
        _logger.exception("policy reload refused a row; previous policy kept")


@asynccontextmanager
async def policy_engine(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan hook: build the engine, load the rows, keep it current."""
    settings: Settings = app.state.settings
    factory: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    engine = PolicyEngine(
        extra_rules_loader=rule_loader(factory), purposes_loader=purposes_loader(factory)
    )
    await engine.reload()
    app.state.policy = engine
    changed = asyncio.Event()
    listener: asyncpg.Connection | None = None
    try:
        listener = await asyncpg.connect(plain_url(settings.database_url), timeout=5)
        await listener.add_listener(CHANNEL, lambda *_: changed.set())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        _logger.warning(
            "LISTEN %s unavailable; polling every %s s", CHANNEL, settings.gateway_policy_poll_s
        )
        listener = None

    async def watch() -> None:
        seen = await fingerprint(factory)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), settings.gateway_policy_poll_s)
            try:
                current = await fingerprint(factory)
                if changed.is_set() or current != seen:
                    changed.clear()
                    await _reload(engine)
                    seen = current
            except Exception:  # the database may restart; keep the policy in force and retry
                _logger.exception("policy watch failed")

    task = asyncio.create_task(watch(), name="gateway-policy-watch")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close()
