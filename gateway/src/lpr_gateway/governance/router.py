"""Routes: agencies, MOUs and partner clients, approvals, purposes, runtime policy rows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import select
from sqlmodel import col

from lpr_common.db import SessionDep
from lpr_common.errors import Conflict, InvalidInput, NotFound
from lpr_common.values import Int4
from lpr_gateway.access.guard import CallerDep
from lpr_gateway.governance.models import (
    Agency,
    AgencyCreate,
    AgencyPublic,
    AgencyUpdate,
    ApprovalCreate,
    ApprovalDecision,
    ApprovalPublic,
    ApprovalRecord,
    MouCreate,
    MouPublic,
    MouRecord,
    MouUpdate,
    PolicyRule,
    PolicyRuleCreate,
    PolicyRulePublic,
    PurposeCreate,
    PurposePublic,
    PurposeRecord,
)
from lpr_gateway.governance.policy_store import notify_changed
from lpr_gateway.identity.models import PartnerClient, PartnerClientCreated, PartnerClientPublic
from lpr_gateway.identity.service import create_partner_client
from lpr_gateway.settings import Settings
from lpr_policy import PERMISSIONS, Action, PolicyEngine, PolicyRowError, Resource, is_vague
from lpr_policy.adapter import normalize_row

agencies_router = APIRouter(prefix="/v1/agencies", tags=["agencies"])
mous_router = APIRouter(prefix="/v1/mous", tags=["mous"])
approvals_router = APIRouter(prefix="/v1/approvals", tags=["approvals"])
purposes_router = APIRouter(prefix="/v1/purposes", tags=["purposes"])
policy_router = APIRouter(prefix="/v1/policy", tags=["policy"])


@agencies_router.get("", response_model=list[AgencyPublic])
async def list_agencies(session: SessionDep) -> list[AgencyPublic]:
    """List agencies."""
    agencies = await session.scalars(select(Agency).order_by(col(Agency.id)))
    return [AgencyPublic.model_validate(a) for a in agencies]


@agencies_router.post("", response_model=AgencyPublic, status_code=status.HTTP_201_CREATED)
async def create_agency(data: AgencyCreate, session: SessionDep) -> AgencyPublic:
    """Record an agency (this one, or a partner)."""
    if await session.get(Agency, data.id) is not None:
        raise Conflict(f"agency {data.id} exists")
    agency = Agency.model_validate(data)
    session.add(agency)
    await session.flush()
    return AgencyPublic.model_validate(agency)


@agencies_router.get("/{agency_id}", response_model=AgencyPublic)
async def get_agency(agency_id: str, session: SessionDep) -> AgencyPublic:
    """Read one agency."""
    agency = await session.get(Agency, agency_id)
    if agency is None:
        raise NotFound(f"no agency {agency_id}")
    return AgencyPublic.model_validate(agency)


@agencies_router.patch("/{agency_id}", response_model=AgencyPublic)
async def update_agency(agency_id: str, data: AgencyUpdate, session: SessionDep) -> AgencyPublic:
    """Change an agency's name or contact."""
    agency = await session.get(Agency, agency_id)
    if agency is None:
        raise NotFound(f"no agency {agency_id}")
    for name, value in data.model_dump(exclude_unset=True).items():
        setattr(agency, name, value)
    session.add(agency)
    await session.flush()
    return AgencyPublic.model_validate(agency)


def _check_mou_purposes(purposes: list[str], engine: PolicyEngine) -> None:
    for code in purposes:
        if is_vague(code):
            raise InvalidInput.field("purposes", f"vague purpose {code!r}")
        if code not in engine.purposes:
            raise InvalidInput.field("purposes", f"purpose {code!r} is not administered")


@mous_router.get("", response_model=list[MouPublic])
async def list_mous(session: SessionDep) -> list[MouPublic]:
    """List MOUs."""
    mous = await session.scalars(select(MouRecord).order_by(col(MouRecord.created_at)))
    return [MouPublic.model_validate(m) for m in mous]


@mous_router.post("", response_model=MouPublic, status_code=status.HTTP_201_CREATED)
async def create_mou(data: MouCreate, request: Request, session: SessionDep) -> MouPublic:
    """Record an MOU with a partner agency (IACP D.2)."""
    settings: Settings = request.app.state.settings
    _check_mou_purposes(data.purposes, request.app.state.policy)
    if data.partner_agency == settings.agency:
        raise InvalidInput.field("partner_agency", "an MOU is with another agency")
    _check_mou_dates(data.signed_on, data.expires_on, changed="expires_on")
    mou = MouRecord(
        owner_agency=settings.agency,
        partner_agency=data.partner_agency,
        status=data.status.value,
        data_classes=sorted({d.value for d in data.data_classes}),
        purposes=sorted(set(data.purposes)),
        max_lookback_days=data.max_lookback_days,
        signed_on=data.signed_on,
        expires_on=data.expires_on,
        contact=data.contact,
    )
    session.add(mou)
    await session.flush()
    return MouPublic.model_validate(mou)


def _check_mou_dates(signed_on: date | None, expires_on: date | None, *, changed: str) -> None:
    if signed_on and expires_on and expires_on < signed_on:
        if changed == "signed_on":
            raise InvalidInput.field("signed_on", "must not be after expires_on")
        raise InvalidInput.field("expires_on", "must not be before signed_on")


async def _mou(session: SessionDep, mou_id: UUID) -> MouRecord:
    mou = await session.get(MouRecord, mou_id)
    if mou is None:
        raise NotFound(f"no MOU {mou_id}")
    return mou


@mous_router.get("/{mou_id}", response_model=MouPublic)
async def get_mou(mou_id: UUID, session: SessionDep) -> MouPublic:
    """Read one MOU."""
    return MouPublic.model_validate(await _mou(session, mou_id))


@mous_router.patch("/{mou_id}", response_model=MouPublic)
async def update_mou(
    mou_id: UUID, data: MouUpdate, request: Request, session: SessionDep
) -> MouPublic:
    """Change an MOU's status, scope or dates."""
    mou = await _mou(session, mou_id)
    changes = data.model_dump(exclude_unset=True)
    # The dates as they would be stored, so that changing one cannot cross the other.
    _check_mou_dates(
        changes.get("signed_on", mou.signed_on),
        changes.get("expires_on", mou.expires_on),
        changed="expires_on" if "expires_on" in changes else "signed_on",
    )
    if changes.get("purposes") is not None:
        _check_mou_purposes(changes["purposes"], request.app.state.policy)
        changes["purposes"] = sorted(set(changes["purposes"]))
    if changes.get("data_classes") is not None:
        changes["data_classes"] = sorted({str(d) for d in changes["data_classes"]})
    if changes.get("status") is not None:
        changes["status"] = str(changes["status"])
    for name, value in changes.items():
        setattr(mou, name, value)
    session.add(mou)
    await session.flush()
    return MouPublic.model_validate(mou)


@mous_router.get("/{mou_id}/clients", response_model=list[PartnerClientPublic])
async def list_clients(mou_id: UUID, session: SessionDep) -> list[PartnerClientPublic]:
    """List the partner clients of an MOU."""
    await _mou(session, mou_id)
    clients = await session.scalars(
        select(PartnerClient).where(col(PartnerClient.mou_id) == mou_id)
    )
    return [PartnerClientPublic.model_validate(c) for c in clients]


@mous_router.post(
    "/{mou_id}/clients", response_model=PartnerClientCreated, status_code=status.HTTP_201_CREATED
)
async def create_client(mou_id: UUID, session: SessionDep) -> PartnerClientCreated:
    """Create client credentials for the MOU's partner; the secret is shown once."""
    return await create_partner_client(session=session, mou=await _mou(session, mou_id))


@approvals_router.get("", response_model=list[ApprovalPublic])
async def list_approvals(session: SessionDep, caller: CallerDep) -> list[ApprovalPublic]:
    """List data-access requests (officers see their own)."""
    query = select(ApprovalRecord).order_by(col(ApprovalRecord.created_at).desc())
    if not caller.has_role("administrator", "auditor"):
        query = query.where(col(ApprovalRecord.user_id) == caller.user_id)
    return [ApprovalPublic.model_validate(a) for a in await session.scalars(query)]


@approvals_router.post("", response_model=ApprovalPublic, status_code=status.HTTP_201_CREATED)
async def request_approval(
    data: ApprovalCreate, session: SessionDep, caller: CallerDep
) -> ApprovalPublic:
    """Request time-bound access that the policy does not grant by default (B.1.f)."""
    try:
        resource, action = Resource(data.resource), Action(data.action)
    except ValueError:
        raise InvalidInput.field("resource", f"unknown permission {data.resource}:{data.action}")
    if action not in PERMISSIONS[resource]:
        raise InvalidInput.field("action", f"unknown permission {data.resource}:{data.action}")
    if data.not_after <= data.not_before:
        raise InvalidInput.field("not_after", "must be after not_before")
    if caller.user_id is None:
        raise InvalidInput.field("user", "approvals are requested by users")
    approval = ApprovalRecord(
        user_id=caller.user_id,
        resource=resource.value,
        action=action.value,
        reason=data.reason,
        case_number=data.case_number,
        max_lookback_days=data.max_lookback_days,
        not_before=data.not_before,
        not_after=data.not_after,
    )
    session.add(approval)
    await session.flush()
    return ApprovalPublic.model_validate(approval)


async def _approval(
    session: SessionDep, approval_id: UUID, *, for_update: bool = False
) -> ApprovalRecord:
    approval = await session.get(
        ApprovalRecord, approval_id, with_for_update=for_update, populate_existing=for_update
    )
    if approval is None:
        raise NotFound(f"no approval {approval_id}")
    return approval


@approvals_router.get("/{approval_id}", response_model=ApprovalPublic)
async def get_approval(approval_id: UUID, session: SessionDep, caller: CallerDep) -> ApprovalPublic:
    """Read one data-access request."""
    approval = await _approval(session, approval_id)
    if not caller.has_role("administrator", "auditor") and approval.user_id != caller.user_id:
        raise NotFound(f"no approval {approval_id}")
    return ApprovalPublic.model_validate(approval)


@approvals_router.post("/{approval_id}/decision", response_model=ApprovalPublic)
async def decide_approval(
    approval_id: UUID, data: ApprovalDecision, session: SessionDep, caller: CallerDep
) -> ApprovalPublic:
    """Approve or deny a data-access request (B.1.f), once: a second decision is a 409."""
    # Locked: two administrators deciding at once must not both pass the pending check.
    approval = await _approval(session, approval_id, for_update=True)
    if approval.status != "pending":
        raise Conflict(f"approval {approval_id} is already {approval.status}")
    if approval.user_id == caller.user_id:
        raise Conflict("an administrator cannot approve their own request")
    approval.status = "approved" if data.approve else "denied"
    approval.decided_by = caller.user_id
    approval.decided_at = datetime.now(UTC)
    approval.note = data.note
    session.add(approval)
    await session.flush()
    return ApprovalPublic.model_validate(approval)


@purposes_router.get("", response_model=list[PurposePublic])
async def list_purposes(session: SessionDep) -> list[PurposePublic]:
    """List the administered public-safety purposes."""
    purposes = await session.scalars(
        select(PurposeRecord).where(col(PurposeRecord.active)).order_by(col(PurposeRecord.code))
    )
    return [PurposePublic.model_validate(p) for p in purposes]


@purposes_router.post("", response_model=PurposePublic, status_code=status.HTTP_201_CREATED)
async def create_purpose(data: PurposeCreate, session: SessionDep) -> PurposePublic:
    """Add a public-safety purpose; vague ones are refused (A.1-2)."""
    if is_vague(data.code):
        raise InvalidInput.field("code", f"vague purpose {data.code!r}: name a specific purpose")
    if is_vague(data.label):
        raise InvalidInput.field("label", f"vague purpose {data.label!r}: name a specific purpose")
    existing = await session.get(PurposeRecord, data.code)
    if existing is not None and existing.active:
        raise Conflict(f"purpose {data.code} exists")
    purpose = existing or PurposeRecord(code=data.code, label=data.label)
    purpose.label, purpose.requires_offense, purpose.active = (
        data.label,
        data.requires_offense,
        True,
    )
    purpose.updated_at = datetime.now(UTC)
    session.add(purpose)
    await session.flush()
    await notify_changed(session)
    return PurposePublic.model_validate(purpose)


@purposes_router.delete("/{code}", status_code=status.HTTP_204_NO_CONTENT)
async def retire_purpose(code: str, session: SessionDep) -> Response:
    """Retire a purpose (kept for the records that cite it)."""
    purpose = await session.get(PurposeRecord, code)
    if purpose is None or not purpose.active:
        raise NotFound(f"no purpose {code}")
    purpose.active = False
    purpose.updated_at = datetime.now(UTC)
    session.add(purpose)
    await session.flush()
    await notify_changed(session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@policy_router.get("/rules", response_model=list[PolicyRulePublic])
async def list_rules(session: SessionDep) -> list[PolicyRulePublic]:
    """List the runtime policy rows (grants and role assignments from the database)."""
    rules = await session.scalars(select(PolicyRule).order_by(col(PolicyRule.id)))
    return [PolicyRulePublic.model_validate(r) for r in rules]


@policy_router.post("/rules", response_model=PolicyRulePublic, status_code=status.HTTP_201_CREATED)
async def add_rule(
    data: PolicyRuleCreate, session: SessionDep, caller: CallerDep
) -> PolicyRulePublic:
    """Add a runtime policy row; every replica applies it within seconds."""
    values = (data.ptype, data.v0, data.v1, data.v2, data.v3, data.v4, data.v5)
    try:
        normalize_row(values)
    except PolicyRowError as error:
        raise InvalidInput.field("rule", str(error))
    rule = PolicyRule(
        **data.model_dump(), created_by=caller.principal.id if caller.principal else None
    )
    session.add(rule)
    await session.flush()
    await notify_changed(session)
    return PolicyRulePublic.model_validate(rule)


@policy_router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(rule_id: Int4, session: SessionDep) -> Response:
    """Remove a runtime policy row."""
    rule = await session.get(PolicyRule, rule_id)
    if rule is None:
        raise NotFound(f"no policy rule {rule_id}")
    await session.delete(rule)
    await session.flush()
    await notify_changed(session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
