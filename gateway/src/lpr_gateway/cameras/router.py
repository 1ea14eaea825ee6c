"""Routes: cameras, deployments, equipment checks; the internal results route."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, status
from sqlalchemy import select
from sqlmodel import col

from lpr_common.context import InternalContextDep
from lpr_common.db import SessionDep
from lpr_common.errors import PolicyDenied
from lpr_gateway.access.guard import CallerDep
from lpr_gateway.cameras import service
from lpr_gateway.cameras.models import (
    Camera,
    CameraCreate,
    CameraPublic,
    CameraRegistered,
    CameraUpdate,
    Deployment,
    DeploymentCreate,
    DeploymentDecision,
    DeploymentPublic,
    DeploymentResults,
    EquipmentCheck,
    EquipmentCheckCreate,
    EquipmentCheckPublic,
)
from lpr_gateway.settings import Settings

cameras_router = APIRouter(prefix="/v1/cameras", tags=["cameras"])
deployments_router = APIRouter(prefix="/v1/deployments", tags=["deployments"])
checks_router = APIRouter(prefix="/v1/equipment-checks", tags=["equipment checks"])
internal_router = APIRouter(prefix="/internal/v1", tags=["internal"])


@cameras_router.get("", response_model=list[CameraPublic])
async def list_cameras(session: SessionDep) -> list[CameraPublic]:
    """List cameras and whether each is in service."""
    cameras = await session.scalars(select(Camera).order_by(col(Camera.name)))
    return [CameraPublic.model_validate(c) for c in cameras]


@cameras_router.post("", response_model=CameraRegistered, status_code=status.HTTP_201_CREATED)
async def register_camera(
    data: CameraCreate, request: Request, session: SessionDep
) -> CameraRegistered:
    """Register a camera; the answer shows its API key once."""
    settings: Settings = request.app.state.settings
    return await service.register_camera(session=session, data=data, agency=settings.agency)


@cameras_router.get("/{camera_id}", response_model=CameraPublic)
async def get_camera(camera_id: UUID, session: SessionDep) -> CameraPublic:
    """Read one camera."""
    return CameraPublic.model_validate(await service.get_camera(session, camera_id))


@cameras_router.patch("/{camera_id}", response_model=CameraPublic)
async def update_camera(camera_id: UUID, data: CameraUpdate, session: SessionDep) -> CameraPublic:
    """Assign a camera to a deployment or change its signature requirement."""
    camera = await service.get_camera(session, camera_id)
    return CameraPublic.model_validate(
        await service.update_camera(session=session, camera=camera, data=data)
    )


@cameras_router.post("/{camera_id}/key", response_model=CameraRegistered)
async def rotate_camera_key(camera_id: UUID, session: SessionDep) -> CameraRegistered:
    """Replace a camera's API key; the answer shows the new key once."""
    camera = await service.get_camera(session, camera_id)
    return await service.rotate_key(session=session, camera=camera)


@deployments_router.get("", response_model=list[DeploymentPublic])
async def list_deployments(session: SessionDep) -> list[DeploymentPublic]:
    """List deployments with their approval and results."""
    deployments = await session.scalars(
        select(Deployment).order_by(col(Deployment.starts_at).desc())
    )
    return [DeploymentPublic.model_validate(d) for d in deployments]


@deployments_router.post("", response_model=DeploymentPublic, status_code=status.HTTP_201_CREATED)
async def create_deployment(
    data: DeploymentCreate, request: Request, session: SessionDep, caller: CallerDep
) -> DeploymentPublic:
    """Record a deployment (a special detail waits for approval)."""
    settings: Settings = request.app.state.settings
    deployment = await service.create_deployment(
        session=session, data=data, agency=settings.agency, created_by=caller.user_id
    )
    return DeploymentPublic.model_validate(deployment)


@deployments_router.get("/{deployment_id}", response_model=DeploymentPublic)
async def get_deployment(deployment_id: UUID, session: SessionDep) -> DeploymentPublic:
    """Read one deployment with its results."""
    return DeploymentPublic.model_validate(await service.get_deployment(session, deployment_id))


@deployments_router.post("/{deployment_id}/decision", response_model=DeploymentPublic)
async def decide_deployment(
    deployment_id: UUID, data: DeploymentDecision, session: SessionDep, caller: CallerDep
) -> DeploymentPublic:
    """Approve or reject a deployment (special details, C.7)."""
    deployment = await service.get_deployment(session, deployment_id)
    deployment = await service.decide_deployment(
        session=session, deployment=deployment, approve=data.approve, decided_by=caller.user_id
    )
    return DeploymentPublic.model_validate(deployment)


@checks_router.get("", response_model=list[EquipmentCheckPublic])
async def list_checks(
    session: SessionDep, camera_id: UUID | None = None
) -> list[EquipmentCheckPublic]:
    """List equipment checks, newest first, optionally of one camera."""
    query = select(EquipmentCheck).order_by(col(EquipmentCheck.checked_at).desc())
    if camera_id is not None:
        query = query.where(col(EquipmentCheck.camera_id) == camera_id)
    return [EquipmentCheckPublic.model_validate(c) for c in await session.scalars(query)]


@checks_router.post("", response_model=EquipmentCheckPublic, status_code=status.HTTP_201_CREATED)
async def record_check(
    data: EquipmentCheckCreate, session: SessionDep, caller: CallerDep
) -> EquipmentCheckPublic:
    """Record an equipment check; a failure takes the camera out of service (B.2)."""
    principal = caller.principal
    if principal is None or principal.user is None:
        raise PolicyDenied("equipment checks are recorded by users", rule="users-only")
    return await service.record_check(session=session, data=data, checker=principal.user)


@internal_router.post("/deployments/{deployment_id}/results", response_model=DeploymentPublic)
async def add_deployment_results(
    deployment_id: UUID, data: DeploymentResults, session: SessionDep, _: InternalContextDep
) -> DeploymentPublic:
    """Add reads, hits and dispositions to a deployment's results (B.1.e)."""
    await service.get_deployment(session, deployment_id)
    deployment = await service.add_results(
        session=session, deployment_id=deployment_id, results=data
    )
    return DeploymentPublic.model_validate(deployment)
