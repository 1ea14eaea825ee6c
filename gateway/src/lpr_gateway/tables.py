"""Import every table model so the metadata (migrations, app) knows them all."""

from lpr_gateway.access.models import AuditOutbox
from lpr_gateway.cameras.models import Camera, CameraSignature, Deployment, EquipmentCheck
from lpr_gateway.governance.models import (
    Agency,
    ApprovalRecord,
    MouRecord,
    PolicyRule,
    PurposeRecord,
)
from lpr_gateway.identity.models import PartnerClient, TrainingRecord, User

__all__ = [
    "Agency",
    "ApprovalRecord",
    "AuditOutbox",
    "Camera",
    "CameraSignature",
    "Deployment",
    "EquipmentCheck",
    "MouRecord",
    "PartnerClient",
    "PolicyRule",
    "PurposeRecord",
    "TrainingRecord",
    "User",
]
