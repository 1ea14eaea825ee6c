"""Users, training, logins and partner clients: the rules."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from lpr_common.errors import Conflict, FieldError, InvalidInput, NotFound, Unauthenticated
from lpr_common.nul import NUL
from lpr_gateway.errors import AccountLocked
from lpr_gateway.governance.models import MouRecord
from lpr_gateway.identity.models import (
    PartnerClient,
    PartnerClientCreated,
    TrainingRecord,
    User,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from lpr_gateway.security import hash_password, verify_password

DEFAULT_COURSE = "LPR operator training"


async def training_expiry(session: AsyncSession, user_id: UUID) -> datetime | None:
    """End of the user's most recent training, or None."""
    result: datetime | None = await session.scalar(
        select(func.max(col(TrainingRecord.expires_at))).where(
            col(TrainingRecord.user_id) == user_id
        )
    )
    return result


async def to_public(session: AsyncSession, user: User, now: datetime | None = None) -> UserPublic:
    """A user as the API shows it, with the state of their training."""
    expires = await training_expiry(session, user.id)
    current = expires is not None and expires > (now or datetime.now(UTC))
    return UserPublic.model_validate(
        user, update={"training_expires_at": expires, "training_current": current}
    )


async def create_user(
    *,
    session: AsyncSession,
    data: UserCreate,
    default_agency: str,
    recorded_by: str | None,
) -> User:
    """Create a user (and a training record when an expiry is given)."""
    exists = await session.scalar(select(col(User.id)).where(col(User.username) == data.username))
    if exists is not None:
        raise Conflict(
            f"username {data.username!r} is taken",
            errors=[FieldError(field="username", reason="already taken")],
        )
    user = User(
        username=data.username,
        display_name=data.display_name,
        agency=data.agency or default_agency,
        roles=sorted({role.value for role in data.roles}),
        authorised_repairer=data.authorised_repairer,
        password_hash=hash_password(data.password) if data.password else None,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"username {data.username!r} is taken")
    if data.training_expires_at is not None:
        await add_training(
            session=session,
            user=user,
            course=DEFAULT_COURSE,
            completed_on=datetime.now(UTC).date(),
            expires_at=data.training_expires_at,
            recorded_by=recorded_by,
        )
    return user


async def add_training(
    *,
    session: AsyncSession,
    user: User,
    course: str,
    completed_on: date,
    expires_at: datetime,
    recorded_by: str | None,
) -> TrainingRecord:
    """Record a completed training course (IACP C.2)."""
    if expires_at.tzinfo is None:
        raise InvalidInput.field("expires_at", "must carry a timezone")
    record = TrainingRecord(
        user_id=user.id,
        course=course,
        completed_on=completed_on,
        expires_at=expires_at,
        recorded_by=recorded_by,
    )
    session.add(record)
    await session.flush()
    return record


async def get_user(session: AsyncSession, user_id: UUID) -> User:
    """A user by id, or 404."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


async def update_user(*, session: AsyncSession, user: User, data: UserUpdate) -> User:
    """Apply changes to a user."""
    changes = data.model_dump(exclude_unset=True)
    password = changes.pop("password", None)
    if "roles" in changes and changes["roles"] is not None:
        changes["roles"] = sorted({str(role) for role in changes["roles"]})
    if "roles" in changes and not changes["roles"]:
        raise InvalidInput.field("roles", "a user needs at least one role")
    for name, value in changes.items():
        setattr(user, name, value)
    if password:
        user.password_hash = hash_password(password)
    session.add(user)
    await session.flush()
    return user


async def check_password_login(
    *,
    session: AsyncSession,
    username: str,
    password: str,
    now: datetime,
    max_failures: int,
    lockout: timedelta,
) -> User:
    """Verify a password login, counting failures and locking the account (CJIS 5.5.3).

    The caller must commit even when this raises, so that the failure count is kept.

    Raises:
        AccountLocked: the account is locked (now or by this failure).
        Unauthenticated: wrong username or password, or a disabled account.
    """
    if NUL in username:
        # No account can have that name (PostgreSQL cannot store U+0000): an unknown user.
        await verify_password(None, password)
        raise Unauthenticated("invalid username or password")
    # Locked until the caller commits: failures sent in parallel are counted one after
    # another, so a guesser cannot escape the lockout by sending its guesses at once.
    user = (
        await session.scalars(
            select(User)
            .where(col(User.username) == username)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if user is not None and user.locked_until is not None and user.locked_until > now:
        raise _locked(user.locked_until, now)
    valid = await verify_password(user.password_hash if user else None, password)
    if user is None:
        raise Unauthenticated("invalid username or password")
    if not valid:
        user.failed_logins += 1
        if user.failed_logins >= max_failures:
            user.locked_until = now + lockout
            user.failed_logins = 0
            session.add(user)
            await session.flush()
            raise _locked(user.locked_until, now)
        session.add(user)
        await session.flush()
        raise Unauthenticated("invalid username or password")
    if not user.active:
        raise Unauthenticated("account disabled")
    if user.failed_logins or user.locked_until:
        user.failed_logins, user.locked_until = 0, None
        session.add(user)
        await session.flush()
    return user


def _locked(until: datetime, now: datetime) -> AccountLocked:
    seconds = max(1, int((until - now).total_seconds()))
    return AccountLocked(
        f"account locked after repeated failed logins until {until.isoformat()}",
        headers={"Retry-After": str(seconds)},
    )


async def check_client_login(
    *, session: AsyncSession, client_id: str, client_secret: str
) -> PartnerClient:
    """Verify a partner's client credentials."""
    if NUL in client_id:
        await verify_password(None, client_secret)
        raise Unauthenticated("invalid client credentials")
    client = (
        await session.scalars(
            select(PartnerClient).where(col(PartnerClient.client_id) == client_id)
        )
    ).first()
    valid = await verify_password(client.secret_hash if client else None, client_secret)
    if client is None or not valid:
        raise Unauthenticated("invalid client credentials")
    if not client.active:
        raise Unauthenticated("partner client disabled")
    return client


async def create_partner_client(*, session: AsyncSession, mou: MouRecord) -> PartnerClientCreated:
    """Create client credentials for an MOU's partner; the secret is returned this once."""
    secret = secrets.token_urlsafe(32)
    client = PartnerClient(
        client_id=f"{mou.partner_agency.lower()}-{secrets.token_hex(4)}",
        secret_hash=hash_password(secret),
        agency=mou.partner_agency,
        mou_id=mou.id,
    )
    session.add(client)
    await session.flush()
    return PartnerClientCreated.model_validate(client, update={"client_secret": secret})
