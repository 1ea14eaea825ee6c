"""The subject cache: reused only while nothing changed, emptied by any committed change."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import asyncpg

from lpr_common.db import plain_url
from lpr_gateway.access.identify import Principal
from lpr_gateway.access.subjects import SubjectCache, subject_cache_listener
from lpr_policy import Subject, SubjectKind


def _officer(user_id: str = "u-1") -> tuple[Principal, Subject]:
    principal = Principal(kind=SubjectKind.USER, id=user_id, agency="CA0010000", roles=["officer"])
    return principal, Subject(SubjectKind.USER, user_id, "CA0010000", roles=frozenset({"officer"}))


def test_rows_read_while_a_change_arrived_are_not_kept() -> None:
    cache = SubjectCache(ttl_s=5.0)
    cache.listening = True
    principal, subject = _officer()
    seen = cache.generation
    cache.clear()  # a NOTIFY between reading the rows and storing them
    cache.put("user", principal.id, principal, subject, seen)
    assert cache.get("user", principal.id) is None
    cache.put("user", principal.id, principal, subject, cache.generation)
    hit = cache.get("user", principal.id)
    assert hit is not None
    assert hit[1] is subject
    assert hit[0] is not principal  # each request gets its own principal


def test_nothing_is_served_without_the_listen_connection_or_past_the_ttl() -> None:
    principal, subject = _officer()
    deaf = SubjectCache(ttl_s=5.0)
    deaf.put("user", principal.id, principal, subject, deaf.generation)
    assert deaf.get("user", principal.id) is None
    expired = SubjectCache(ttl_s=1e-9)
    expired.listening = True
    expired.put("user", principal.id, principal, subject, expired.generation)
    assert expired.get("user", principal.id) is None


async def test_a_committed_change_to_training_empties_the_cache(
    migrated_database_url: str,
) -> None:
    settings: Any = SimpleNamespace(
        database_url=migrated_database_url, gateway_subject_cache_s=60.0
    )
    app: Any = SimpleNamespace(state=SimpleNamespace(settings=settings))
    async with subject_cache_listener(app):
        cache: SubjectCache = app.state.subject_cache
        for _ in range(100):
            if cache.listening:
                break
            await asyncio.sleep(0.05)
        assert cache.listening
        principal, subject = _officer()
        cache.put("user", principal.id, principal, subject, cache.generation)
        assert cache.get("user", principal.id) is not None
        connection = await asyncpg.connect(plain_url(migrated_database_url))
        try:
            # Any statement on the rows counts, whoever runs it (here: plain SQL).
            await connection.execute(
                "UPDATE gateway.training_records SET course = course WHERE false"
            )
        finally:
            await connection.close()
        for _ in range(100):
            if cache.get("user", principal.id) is None:
                break
            await asyncio.sleep(0.02)
        assert cache.get("user", principal.id) is None
