"""Cameras, deployments and equipment checks: the rules (IACP B.1.e, B.2, B.3, C.7)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from lpr_common.errors import InvalidInput, NotFound
from lpr_common.values import INT8_MAX
from lpr_gateway.cameras.models import (
    Camera,
    CameraCreate,
    CameraRegistered,
    CameraUpdate,
    Deployment,
    DeploymentCreate,
    DeploymentResults,
    DeploymentStatus,
    EquipmentCheck,
    EquipmentCheckCreate,
    EquipmentCheckPublic,
)
from lpr_gateway.identity.models import User
from lpr_gateway.security import hash_camera_key, new_camera_key


async def get_deployment(session: AsyncSession, deployment_id: UUID) -> Deployment:
    """A deployment by id, or 404."""
    deployment = await session.get(Deployment, deployment_id)
    if deployment is None:
        raise NotFound(f"no deployment {deployment_id}")
    return deployment


async def get_camera(session: AsyncSession, camera_id: UUID) -> Camera:
    """A camera by id, or 404."""
    camera = await session.get(Camera, camera_id)
    if camera is None:
        raise NotFound(f"no camera {camera_id}")
    return camera


async def _check_deployment(session: AsyncSession, deployment_id: UUID | None) -> None:
    if deployment_id is not None and await session.get(Deployment, deployment_id) is None:
        raise InvalidInput.field("deployment_id", f"no deployment {deployment_id}")


async def register_camera(
    *, session: AsyncSession, data: CameraCreate, agency: str
) -> CameraRegistered:
    """Register a camera; its key is returned this once and stored as a SHA-256 hash."""
    await _check_deployment(session, data.deployment_id)
    key = new_camera_key()
    camera = Camera(
        agency=agency,
        name=data.name,
        kind=data.kind.value,
        serial_number=data.serial_number,
        deployment_id=data.deployment_id,
        require_signature=data.require_signature,
        key_hash=hash_camera_key(key),
    )
    session.add(camera)
    await session.flush()
    return CameraRegistered.model_validate(camera, update={"api_key": key})


async def rotate_key(*, session: AsyncSession, camera: Camera) -> CameraRegistered:
    """Replace a camera's key; the old one stops working at once."""
    key = new_camera_key()
    camera.key_hash = hash_camera_key(key)
    session.add(camera)
    await session.flush()
    return CameraRegistered.model_validate(camera, update={"api_key": key})


async def update_camera(*, session: AsyncSession, camera: Camera, data: CameraUpdate) -> Camera:
    """Change a camera's name, deployment or signature requirement."""
    changes = data.model_dump(exclude_unset=True)
    if "deployment_id" in changes:
        await _check_deployment(session, changes["deployment_id"])
    for name, value in changes.items():
        setattr(camera, name, value)
    session.add(camera)
    await session.flush()
    return camera


async def create_deployment(
    *, session: AsyncSession, data: DeploymentCreate, agency: str, created_by: UUID | None
) -> Deployment:
    """Record a deployment; a special detail stays pending until approved (C.7)."""
    if data.ends_at is not None and data.ends_at <= data.starts_at:
        raise InvalidInput.field("ends_at", "must be after starts_at")
    if data.kind == "location" and not (data.location or data.latitude is not None):
        raise InvalidInput.field("location", "a location deployment needs a place")
    if data.kind == "vehicle" and not data.vehicle:
        raise InvalidInput.field("vehicle", "a vehicle deployment names the vehicle")
    deployment = Deployment(
        agency=agency,
        name=data.name,
        kind=data.kind.value,
        location=data.location,
        latitude=data.latitude,
        longitude=data.longitude,
        vehicle=data.vehicle,
        purpose=data.purpose,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        special_detail=data.special_detail,
        # Deployments are created by administrators; only special details need a
        # separate, explicit approval (C.7).
        status=(
            DeploymentStatus.PENDING.value
            if data.special_detail
            else DeploymentStatus.APPROVED.value
        ),
        decided_by=None if data.special_detail else created_by,
        decided_at=None if data.special_detail else datetime.now(UTC),
        created_by=created_by,
    )
    session.add(deployment)
    await session.flush()
    return deployment


async def decide_deployment(
    *, session: AsyncSession, deployment: Deployment, approve: bool, decided_by: UUID | None
) -> Deployment:
    """Approve or reject a deployment."""
    deployment.status = (
        DeploymentStatus.APPROVED.value if approve else DeploymentStatus.REJECTED.value
    )
    deployment.decided_by = decided_by
    deployment.decided_at = datetime.now(UTC)
    session.add(deployment)
    await session.flush()
    return deployment


async def add_results(
    *, session: AsyncSession, deployment_id: UUID, results: DeploymentResults
) -> Deployment:
    """Add reads, hits and dispositions to a deployment's results (atomic increments).

    Raises:
        NotFound: no such deployment.
        InvalidInput: a count would pass what a ``bigint`` holds (naming the field); nothing
            is added then.
    """
    added = {
        "reads": (col(Deployment.reads_count), results.reads),
        "hits": (col(Deployment.hits_count), results.hits),
        "dispositions": (col(Deployment.dispositions_count), results.dispositions),
    }
    # Each increment fits a bigint, their sum with the total may not: the row is updated
    # only where every sum fits, so PostgreSQL never has to refuse one (a 500).
    updated = await session.scalar(
        update(Deployment)
        .where(
            col(Deployment.id) == deployment_id,
            *(total <= INT8_MAX - count for total, count in added.values()),
        )
        .values({total: total + count for total, count in added.values()})
        .returning(col(Deployment.id))
    )
    deployment = await get_deployment(session, deployment_id)
    await session.refresh(deployment)
    if updated is None:
        for field, (_, count) in added.items():
            if getattr(deployment, f"{field}_count") > INT8_MAX - count:
                raise InvalidInput.field(
                    field, f"would take the deployment's {field}_count past {INT8_MAX}"
                )
    return deployment


async def record_check(
    *, session: AsyncSession, data: EquipmentCheckCreate, checker: User
) -> EquipmentCheckPublic:
    """Record an equipment check and apply it to the camera (B.2, B.3).

    A failed check takes the camera out of service. Only a passing check by an
    authorised repairer puts it back; a passing check by anyone else is recorded and
    the camera stays out.
    """
    camera = await session.get(Camera, data.camera_id)
    if camera is None:
        raise InvalidInput.field("camera_id", f"no camera {data.camera_id}")
    passed = data.functional and data.alignment_ok
    check = EquipmentCheck(
        camera_id=camera.id,
        checked_by=checker.id,
        checked_by_repairer=checker.authorised_repairer,
        checked_at=data.checked_at or datetime.now(UTC),
        functional=data.functional,
        alignment_ok=data.alignment_ok,
        passed=passed,
        notes=data.notes,
    )
    session.add(check)
    if not passed:
        camera.in_service = False
        camera.out_of_service_check_id = check.id
    elif camera.in_service or checker.authorised_repairer:
        camera.in_service = True
        camera.out_of_service_check_id = None
    session.add(camera)
    await session.flush()
    return EquipmentCheckPublic.model_validate(
        check, update={"camera_in_service": camera.in_service}
    )
