"""Routes: OAuth2 token endpoint, key set, users and their training."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Request, status
from sqlalchemy import select
from sqlmodel import col

from lpr_common.audit_client import AuditEvent
from lpr_common.db import SessionDep
from lpr_common.errors import BadRequest, LprError, Unauthenticated
from lpr_gateway.access import audit
from lpr_gateway.access.guard import CallerDep
from lpr_gateway.identity import service
from lpr_gateway.identity.models import (
    Token,
    TrainingRecord,
    TrainingRecordCreate,
    TrainingRecordPublic,
    User,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from lpr_gateway.security import TokenClaims, TokenIssuer
from lpr_gateway.settings import Settings

auth_router = APIRouter(prefix="/v1/auth", tags=["auth"])
users_router = APIRouter(prefix="/v1/users", tags=["users"])


def _login_event(request: Request, outcome: str, **fields: Any) -> AuditEvent:
    client = request.client
    return AuditEvent(
        component=audit.COMPONENT,
        event_type="auth.login",
        outcome=outcome,  # type: ignore[arg-type]
        method=request.method,
        path=request.url.path,
        client_address=client.host if client else None,
        **fields,
    )


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequest("malformed Basic credentials")
    return client_id, secret


@auth_router.post("/token", response_model=Token)
async def issue_token(
    request: Request,
    session: SessionDep,
    grant_type: Annotated[str, Form(description="password or client_credentials")],
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
) -> Token:
    """Issue a short-lived access token (OAuth2 password or client credentials)."""
    settings: Settings = request.app.state.settings
    issuer: TokenIssuer = request.app.state.token_issuer
    now = datetime.now(UTC)
    if grant_type == "password":
        if not username or not password:
            raise BadRequest(
                "username and password are required for grant_type=password",
            )
        try:
            user = await service.check_password_login(
                session=session,
                username=username,
                password=password,
                now=now,
                max_failures=settings.gateway_login_max_failures,
                lockout=timedelta(minutes=settings.gateway_lockout_minutes),
            )
        except LprError as error:
            # The failure count must survive the refused request: commit it now.
            await session.commit()
            await audit.record(
                request.app,
                _login_event(
                    request,
                    "failure",
                    subject_kind="user",
                    subject_name=username,
                    reason=error.detail,
                    rule=error.slug,
                ),
            )
            raise
        await session.commit()
        await audit.record(
            request.app,
            _login_event(
                request,
                "success",
                subject_kind="user",
                subject_id=str(user.id),
                subject_name=user.username,
                agency=user.agency,
                roles=list(user.roles),
            ),
        )
        token = issuer.issue(
            TokenClaims(sub=str(user.id), agency=user.agency, roles=list(user.roles), kind="user"),
            now=now,
        )
    elif grant_type == "client_credentials":
        basic = _basic_credentials(request)
        if basic is not None:
            client_id, client_secret = basic
        if not client_id or not client_secret:
            raise BadRequest("client_id and client_secret are required for client_credentials")
        try:
            client = await service.check_client_login(
                session=session, client_id=client_id, client_secret=client_secret
            )
        except Unauthenticated as error:
            await audit.record(
                request.app,
                _login_event(
                    request,
                    "failure",
                    subject_kind="partner",
                    subject_name=client_id,
                    reason=error.detail,
                    rule=error.slug,
                ),
            )
            raise
        await audit.record(
            request.app,
            _login_event(
                request,
                "success",
                subject_kind="partner",
                subject_id=client.client_id,
                subject_name=client.client_id,
                agency=client.agency,
                roles=["partner"],
                mou_id=str(client.mou_id),
            ),
        )
        token = issuer.issue(
            TokenClaims(
                sub=client.client_id,
                agency=client.agency,
                roles=["partner"],
                kind="partner",
                mou=str(client.mou_id),
            ),
            now=now,
        )
    else:
        raise BadRequest(f"unsupported grant_type {grant_type!r}")
    return Token(access_token=token, expires_in=int(issuer.ttl.total_seconds()))


@auth_router.get("/jwks")
async def jwks(request: Request) -> dict[str, list[dict[str, str]]]:
    """Publish the public key that verifies the gateway's tokens."""
    issuer: TokenIssuer = request.app.state.token_issuer
    return issuer.jwks()


@users_router.get("", response_model=list[UserPublic])
async def list_users(session: SessionDep, caller: CallerDep) -> list[UserPublic]:
    """List users with the state of their training."""
    users = (await session.scalars(select(User).order_by(col(User.username)))).all()
    now = caller.event.occurred_at
    return [await service.to_public(session, user, now) for user in users]


@users_router.post("", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
async def create_user(
    data: UserCreate, request: Request, session: SessionDep, caller: CallerDep
) -> UserPublic:
    """Create a user with roles, agency and, optionally, a password and training."""
    settings: Settings = request.app.state.settings
    user = await service.create_user(
        session=session,
        data=data,
        default_agency=settings.agency,
        recorded_by=caller.principal.id if caller.principal else None,
    )
    return await service.to_public(session, user)


@users_router.get("/{user_id}", response_model=UserPublic)
async def get_user(user_id: UUID, session: SessionDep) -> UserPublic:
    """Read one user."""
    return await service.to_public(session, await service.get_user(session, user_id))


@users_router.patch("/{user_id}", response_model=UserPublic)
async def update_user(user_id: UUID, data: UserUpdate, session: SessionDep) -> UserPublic:
    """Change a user's roles, status, repairer flag or password."""
    user = await service.get_user(session, user_id)
    await service.update_user(session=session, user=user, data=data)
    return await service.to_public(session, user)


@users_router.post("/{user_id}/unlock", response_model=UserPublic)
async def unlock_user(user_id: UUID, session: SessionDep) -> UserPublic:
    """Lift a login lockout."""
    user = await service.get_user(session, user_id)
    user.failed_logins, user.locked_until = 0, None
    session.add(user)
    await session.flush()
    return await service.to_public(session, user)


@users_router.get("/{user_id}/training", response_model=list[TrainingRecordPublic])
async def list_training(user_id: UUID, session: SessionDep) -> list[TrainingRecordPublic]:
    """List a user's training records."""
    await service.get_user(session, user_id)
    records = await session.scalars(
        select(TrainingRecord)
        .where(col(TrainingRecord.user_id) == user_id)
        .order_by(col(TrainingRecord.expires_at).desc())
    )
    return [TrainingRecordPublic.model_validate(r) for r in records]


@users_router.post(
    "/{user_id}/training", response_model=TrainingRecordPublic, status_code=status.HTTP_201_CREATED
)
async def add_training(
    user_id: UUID, data: TrainingRecordCreate, session: SessionDep, caller: CallerDep
) -> TrainingRecordPublic:
    """Record a completed training course and its expiry (IACP C.2)."""
    user = await service.get_user(session, user_id)
    record = await service.add_training(
        session=session,
        user=user,
        course=data.course,
        completed_on=data.completed_on,
        expires_at=data.expires_at,
        recorded_by=caller.principal.id if caller.principal else None,
    )
    return TrainingRecordPublic.model_validate(record)
