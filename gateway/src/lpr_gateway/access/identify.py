"""Who is calling: user or partner tokens, identity-provider tokens, camera keys.

Then the policy's :class:`lpr_policy.Subject` is built from the gateway's records
(roles, training, approvals, MOU, camera and deployment state), once per request.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from lpr_common.errors import Unauthenticated
from lpr_gateway.access.subjects import SubjectCache
from lpr_gateway.cameras.models import Camera, CameraSignature, Deployment
from lpr_gateway.governance.models import ApprovalRecord, MouRecord
from lpr_gateway.identity.models import PartnerClient, TrainingRecord, User
from lpr_gateway.security import TokenIssuer, body_signature, hash_camera_key
from lpr_gateway.settings import Settings
from lpr_policy import (
    Action,
    Approval,
    CameraStatus,
    DataClass,
    Mou,
    MouStatus,
    Resource,
    Subject,
    SubjectKind,
)

CAMERA_KEY_HEADER = "X-Camera-Key"
TIMESTAMP_HEADER = "X-LPR-Timestamp"
SIGNATURE_HEADER = "X-LPR-Signature"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="lpr", ApiKey realm="lpr-cameras"'}


def unauthenticated(reason: str) -> Unauthenticated:
    """401 problem naming why the credentials were refused."""
    return Unauthenticated(reason, headers=_CHALLENGE)


@dataclass
class Principal:
    """An authenticated caller and the records it was authenticated against."""

    kind: SubjectKind
    id: str
    agency: str
    name: str | None = None
    roles: list[str] = field(default_factory=list)
    user: User | None = None
    partner: PartnerClient | None = None
    mou: MouRecord | None = None
    camera: Camera | None = None
    deployment: Deployment | None = None
    # Set when the principal came from the subject cache with its subject.
    cached_subject: Subject | None = None


def credentials_present(request: Request) -> bool:
    """True when the request carries any credential at all."""
    return bool(request.headers.get("authorization") or request.headers.get(CAMERA_KEY_HEADER))


async def authenticate(
    request: Request,
    session: AsyncSession,
    body: bytes,
    settings: Settings,
    *,
    cache: SubjectCache | None = None,
) -> Principal:
    """Authenticate the request or raise a 401 naming the reason.

    With ``cache``, a verified token of a user or partner whose records were read in the
    last seconds (and have not changed since) is answered from the cache.
    """
    authorization = request.headers.get("authorization", "")
    scheme, _, credential = authorization.partition(" ")
    camera_key = request.headers.get(CAMERA_KEY_HEADER)
    if camera_key is None and scheme.lower() == "apikey":
        camera_key = credential.strip()
    if camera_key:
        return await _camera(request, session, camera_key.strip(), body, settings)
    if scheme.lower() == "bearer" and credential.strip():
        return await _bearer(request, session, credential.strip(), settings, cache)
    if authorization:
        raise unauthenticated("unsupported authorization scheme; use Bearer or ApiKey")
    raise unauthenticated("missing credentials: send a bearer token or a camera key")


async def _bearer(
    request: Request,
    session: AsyncSession,
    token: str,
    settings: Settings,
    cache: SubjectCache | None = None,
) -> Principal:
    issuer: TokenIssuer = request.app.state.token_issuer
    # A token of ours verified before and not yet expired (most requests) needs no parsing.
    remembered = issuer.recall(token)
    if remembered is not None:
        claims = remembered
    else:
        verified = await _verify_bearer(request, session, token, settings, issuer)
        if isinstance(verified, Principal):
            return verified
        claims = verified
    kind = claims.get("kind")
    if cache is not None and kind in {"partner", "user"}:
        hit = cache.get(str(kind), str(claims["sub"]))
        if hit is not None:
            return hit[0]
    if kind == "partner":
        return await _partner(session, str(claims["sub"]))
    if kind == "user":
        try:
            user_id = UUID(str(claims["sub"]))
        except ValueError:
            raise unauthenticated("invalid token: bad subject")
        return await _user(await session.get(User, user_id))
    raise unauthenticated("invalid token: unknown kind")


async def _verify_bearer(
    request: Request, session: AsyncSession, token: str, settings: Settings, issuer: TokenIssuer
) -> dict[str, Any] | Principal:
    """The claims of one of our tokens, or the principal of an identity provider's token."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise unauthenticated("malformed token")
    issued_by = unverified.get("iss")
    try:
        if issued_by == issuer.issuer:
            return issuer.verify(token)
        if settings.gateway_oidc_issuer and issued_by == settings.gateway_oidc_issuer:
            return await _identity_provider_user(request, session, token, settings)
        raise unauthenticated(f"token issuer {issued_by!r} is not trusted")
    except jwt.ExpiredSignatureError:
        raise unauthenticated("token expired")
    except jwt.PyJWTError as exc:
        raise unauthenticated(f"invalid token: {exc}")


async def _identity_provider_user(
    request: Request, session: AsyncSession, token: str, settings: Settings
) -> Principal:
    client: jwt.PyJWKClient = request.app.state.oidc_jwks
    try:
        # PyJWKClient fetches the key set with blocking I/O (cached afterwards).
        signing_key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
        claims: dict[str, Any] = jwt.decode(
            token,
            signing_key.key,
            algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA", "PS256"],
            issuer=settings.gateway_oidc_issuer,
            audience=settings.gateway_oidc_audience,
            options={
                "require": ["exp", "iat", "sub", "iss"],
                "verify_aud": settings.gateway_oidc_audience is not None,
            },
        )
    except jwt.ExpiredSignatureError:
        raise unauthenticated("token expired")
    except jwt.PyJWKClientError as exc:
        raise unauthenticated(f"identity provider key set unavailable or key unknown: {exc}")
    except jwt.PyJWTError as exc:
        raise unauthenticated(f"invalid identity-provider token: {exc}")
    username = claims.get(settings.gateway_oidc_username_claim) or claims["sub"]
    user = (await session.scalars(select(User).where(col(User.username) == str(username)))).first()
    if user is None:
        raise unauthenticated(f"no local user {username!r} for the identity provider's subject")
    return await _user(user)


async def _user(user: User | None) -> Principal:
    if user is None:
        raise unauthenticated("token subject is not a known user")
    if not user.active:
        raise unauthenticated("account disabled")
    return Principal(
        kind=SubjectKind.USER,
        id=str(user.id),
        agency=user.agency,
        name=user.username,
        roles=list(user.roles),
        user=user,
    )


async def _partner(session: AsyncSession, client_id: str) -> Principal:
    client = (
        await session.scalars(
            select(PartnerClient).where(col(PartnerClient.client_id) == client_id)
        )
    ).first()
    if client is None or not client.active:
        raise unauthenticated("partner client unknown or disabled")
    mou = await session.get(MouRecord, client.mou_id)
    return Principal(
        kind=SubjectKind.PARTNER,
        id=client.client_id,
        agency=client.agency,
        name=client.client_id,
        roles=["partner"],
        partner=client,
        mou=mou,
    )


async def _camera(
    request: Request, session: AsyncSession, key: str, body: bytes, settings: Settings
) -> Principal:
    camera = (
        await session.scalars(select(Camera).where(col(Camera.key_hash) == hash_camera_key(key)))
    ).first()
    if camera is None:
        raise unauthenticated("unknown camera key")
    signature = request.headers.get(SIGNATURE_HEADER)
    if signature is not None or camera.require_signature:
        await _check_signature(request, session, camera, key, body, settings)
    deployment = (
        await session.get(Deployment, camera.deployment_id) if camera.deployment_id else None
    )
    return Principal(
        kind=SubjectKind.CAMERA,
        id=str(camera.id),
        agency=camera.agency,
        name=camera.name,
        roles=["camera"],
        camera=camera,
        deployment=deployment,
    )


async def _check_signature(
    request: Request,
    session: AsyncSession,
    camera: Camera,
    key: str,
    body: bytes,
    settings: Settings,
) -> None:
    signature = (request.headers.get(SIGNATURE_HEADER) or "").strip().lower()
    timestamp = (request.headers.get(TIMESTAMP_HEADER) or "").strip()
    if not signature or not timestamp:
        raise unauthenticated(
            f"camera requires a signed body: send {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}"
        )
    try:
        signed_at = int(timestamp)
    except ValueError:
        raise unauthenticated(f"{TIMESTAMP_HEADER} must be Unix seconds")
    now = request.state.now
    age = now.timestamp() - signed_at
    if age > settings.gateway_signature_max_age_s:
        raise unauthenticated(
            f"signature timestamp is {int(age)} s old; the limit is "
            f"{settings.gateway_signature_max_age_s} s"
        )
    if age < -60:
        raise unauthenticated("signature timestamp is in the future")
    expected = body_signature(key, timestamp, body)
    if not hmac.compare_digest(expected, signature):
        raise unauthenticated("wrong signature")
    # The primary key refuses a second use of the same signature on every replica.
    inserted = await session.scalar(
        insert(CameraSignature)
        .values(signature=signature, camera_id=camera.id, seen_at=now)
        .on_conflict_do_nothing()
        .returning(col(CameraSignature.signature))
    )
    if inserted is None:
        raise unauthenticated("replayed signature")


def _mou(record: MouRecord) -> Mou:
    return Mou(
        id=str(record.id),
        owner_agency=record.owner_agency,
        partner_agency=record.partner_agency,
        status=MouStatus(record.status),
        data_classes=frozenset(DataClass(value) for value in record.data_classes),
        purposes=frozenset(record.purposes),
        max_lookback_days=record.max_lookback_days,
        signed_on=record.signed_on,
        expires_on=record.expires_on,
    )


async def build_subject(
    session: AsyncSession, principal: Principal, settings: Settings, now: datetime
) -> Subject:
    """The policy's view of the caller, from the gateway's records as they are now."""
    if principal.cached_subject is not None:
        return principal.cached_subject
    if principal.kind is SubjectKind.CAMERA:
        camera, deployment = principal.camera, principal.deployment
        assert camera is not None
        status = CameraStatus(
            in_service=camera.in_service,
            deployment_approved=deployment is not None and deployment.accepts_reads(now),
            special_detail=deployment is not None and deployment.special_detail,
        )
        return Subject(SubjectKind.CAMERA, principal.id, principal.agency, camera=status)
    if principal.kind is SubjectKind.PARTNER:
        return Subject(
            SubjectKind.PARTNER,
            principal.id,
            principal.agency,
            roles=frozenset(principal.roles),
            mou=_mou(principal.mou) if principal.mou is not None else None,
        )
    user = principal.user
    assert user is not None
    training_expires_at = await session.scalar(
        select(func.max(col(TrainingRecord.expires_at))).where(
            col(TrainingRecord.user_id) == user.id
        )
    )
    approvals = []
    records = await session.scalars(
        select(ApprovalRecord).where(
            col(ApprovalRecord.user_id) == user.id,
            col(ApprovalRecord.status) == "approved",
            col(ApprovalRecord.not_after) > now - timedelta(days=1),
        )
    )
    for approval in records:
        try:
            resource, action = Resource(approval.resource), Action(approval.action)
        except ValueError:
            continue
        approvals.append(
            Approval(
                id=str(approval.id),
                resource=resource,
                action=action,
                not_before=approval.not_before,
                not_after=approval.not_after,
                case_number=approval.case_number,
                max_lookback_days=approval.max_lookback_days,
                approved_by=str(approval.decided_by) if approval.decided_by else None,
            )
        )
    mou = None
    if user.agency != settings.agency:
        # A user of another agency reads this agency's data only under an MOU with it.
        record = (
            await session.scalars(
                select(MouRecord)
                .where(
                    col(MouRecord.partner_agency) == user.agency,
                    col(MouRecord.owner_agency) == settings.agency,
                    col(MouRecord.status) == MouStatus.ACTIVE.value,
                )
                .order_by(col(MouRecord.created_at).desc())
            )
        ).first()
        mou = _mou(record) if record is not None else None
        principal.mou = record
    return Subject(
        SubjectKind.USER,
        principal.id,
        principal.agency,
        roles=frozenset(principal.roles),
        training_expires_at=training_expires_at,
        mou=mou,
        approvals=tuple(approvals),
    )
