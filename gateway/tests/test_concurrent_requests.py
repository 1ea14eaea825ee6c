"""Requests sent at the same moment, through the real gateway on the real database.

These tests commit (as production does): the app runs without the rolled-back session
override, each test uses names of its own and removes its rows at the end.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from lpr_gateway.app import create_app
from lpr_gateway.governance.models import ApprovalRecord
from lpr_gateway.identity.models import TrainingRecord, User
from lpr_gateway.security import TokenClaims, hash_password
from lprctl.pytest_plugin import app_client

from .conftest import AuditSpy, gateway_settings

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def committed_user(engine: AsyncEngine) -> AsyncIterator[User]:
    """An officer with a password, committed; removed after the test."""
    user = User(
        username=f"ofc.race.{secrets.token_hex(4)}",
        agency="CA0010000",
        roles=["officer"],
        password_hash=hash_password(PASSWORD),
    )
    async with AsyncSession(engine, expire_on_commit=False) as session:
        session.add(user)
        await session.commit()
    yield user
    async with AsyncSession(engine) as session:
        await session.execute(delete(User).where(col(User.id) == user.id))
        await session.commit()


async def test_concurrent_wrong_passwords_still_lock_the_account(
    service_env: dict[str, str],
    engine: AsyncEngine,
    audit_spy: AuditSpy,
    committed_user: User,
) -> None:
    """CJIS 5.5.3: five failed logins lock the account, whether sent one by one or at once.

    ``check_password_login`` reads ``failed_logins``, verifies the password (argon2, tens
    of milliseconds in a thread) and writes back ``failed_logins + 1`` computed in
    Python: failures sent together all read the same count, and all but one increment
    is lost. A password guesser sending its guesses in parallel is never locked out.
    """
    settings = gateway_settings()
    app = create_app(settings)
    app.state.upstream_transports = {"audit-log": audit_spy}
    async with app_client(app) as client:

        async def guess(n: int) -> int:
            response = await client.post(
                "/v1/auth/token",
                data={
                    "grant_type": "password",
                    "username": committed_user.username,
                    "password": f"wrong-guess-{n}",
                },
            )
            return response.status_code

        attempts = settings.gateway_login_max_failures
        statuses = await asyncio.gather(*(guess(n) for n in range(attempts)))
        assert all(s in {401, 423} for s in statuses), statuses
        right = await client.post(
            "/v1/auth/token",
            data={
                "grant_type": "password",
                "username": committed_user.username,
                "password": PASSWORD,
            },
        )
    async with AsyncSession(engine) as session:
        failed, locked_until = (
            await session.execute(
                select(col(User.failed_logins), col(User.locked_until)).where(
                    col(User.id) == committed_user.id
                )
            )
        ).one()
    # Sequentially (test_auth.py) the fifth failure locks the account and the right
    # password is then refused with 423.
    assert right.status_code == 423, (
        f"after {len(statuses)} concurrent failures {statuses} the right password got "
        f"{right.status_code}; failed_logins={failed}, locked_until={locked_until}"
    )


async def _committed_user(engine: AsyncEngine, username: str, roles: list[str]) -> User:
    now = datetime.now(UTC)
    user = User(username=username, agency="CA0010000", roles=roles)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        session.add(user)
        await session.flush()
        session.add(
            TrainingRecord(
                user_id=user.id,
                course="LPR operator training",
                completed_on=(now - timedelta(days=30)).date(),
                expires_at=now + timedelta(days=365),
            )
        )
        await session.commit()
    return user


async def test_two_administrators_cannot_both_decide_one_approval(
    service_env: dict[str, str], engine: AsyncEngine, audit_spy: AuditSpy
) -> None:
    """B.1.f: a data-access request is decided once; a second decision is refused (409).

    ``decide_approval`` reads the approval without a lock, checks ``status == "pending"``
    and writes the decision. Two administrators deciding at the same moment (one
    approves, one denies) both pass the check and both get 200 with their own decision;
    the row ends with whichever committed last, so one of them was told something false
    (and the officer's access depends on commit order, not on a single decision).
    """
    tag = secrets.token_hex(4)
    officer = await _committed_user(engine, f"ofc.appr.{tag}", ["officer"])
    admins = [
        await _committed_user(engine, f"adm.appr.{tag}.{n}", ["administrator"]) for n in (1, 2)
    ]
    settings = gateway_settings()
    app = create_app(settings)
    app.state.upstream_transports = {"audit-log": audit_spy}
    approval_id = None
    try:
        async with app_client(app) as client:
            issuer = app.state.token_issuer

            def token(user: User) -> dict[str, str]:
                claims = TokenClaims(
                    sub=str(user.id), agency=user.agency, roles=list(user.roles), kind="user"
                )
                return {"Authorization": f"Bearer {issuer.issue(claims)}"}

            now = datetime.now(UTC)
            requested = await client.post(
                "/v1/approvals",
                headers=token(officer),
                json={
                    "resource": "reads",
                    "action": "search",
                    "reason": "burglary series spanning two seasons, case PD-2026-000777",
                    "case_number": "PD-2026-000777",
                    "max_lookback_days": 365,
                    "not_before": (now - timedelta(minutes=1)).isoformat(),
                    "not_after": (now + timedelta(days=7)).isoformat(),
                },
            )
            assert requested.status_code == 201, requested.text
            approval_id = requested.json()["id"]
            answers = await asyncio.gather(
                *(
                    client.post(
                        f"/v1/approvals/{approval_id}/decision",
                        headers=token(admin),
                        json={"approve": approve},
                    )
                    for admin, approve in zip(admins, (True, False), strict=True)
                )
            )
        statuses = sorted(a.status_code for a in answers)
        told = [a.json().get("status") for a in answers if a.status_code == 200]
        async with AsyncSession(engine) as session:
            stored = await session.scalar(
                select(col(ApprovalRecord.status)).where(col(ApprovalRecord.id) == approval_id)
            )
        assert statuses == [200, 409], (
            f"both decisions answered {statuses}: administrators were told {told}, "
            f"the approval is stored as {stored!r}"
        )
    finally:
        async with AsyncSession(engine) as session:
            if approval_id is not None:
                await session.execute(
                    delete(ApprovalRecord).where(col(ApprovalRecord.id) == approval_id)
                )
            ids = [officer.id, *(a.id for a in admins)]
            await session.execute(
                delete(TrainingRecord).where(col(TrainingRecord.user_id).in_(ids))
            )
            await session.execute(delete(User).where(col(User.id).in_(ids)))
            await session.commit()
