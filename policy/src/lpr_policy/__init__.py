"""lpr_policy: the Casbin model, baseline policy and decision engine of the LPR platform.

Usage (gateway lifespan)::

    engine = PolicyEngine(extra_rules_loader=load_rows, purposes_loader=load_purposes)
    await engine.reload()
    decision = engine.decide(subject, Resource.READS, Action.SEARCH, context)
"""

from lpr_policy.adapter import PolicyRowError, RowsAdapter, RulesLoader, read_policy_file
from lpr_policy.conditions import CONDITIONS, DEFAULT_CASE_NUMBER_PATTERN
from lpr_policy.engine import (
    DEFAULT_LOOKBACK_DAYS,
    PolicyEngine,
    PurposesLoader,
    default_model_path,
    default_policy_path,
)
from lpr_policy.models import (
    DEFAULT_PURPOSES,
    AccessContext,
    Approval,
    CameraStatus,
    Decision,
    Mou,
    MouStatus,
    Purpose,
    Subject,
    is_vague,
)
from lpr_policy.vocabulary import (
    DATA_CLASS_OF,
    PERMISSIONS,
    Action,
    DataClass,
    Resource,
    Role,
    SubjectKind,
    is_known_permission,
)

__all__ = [
    "CONDITIONS",
    "DATA_CLASS_OF",
    "DEFAULT_CASE_NUMBER_PATTERN",
    "DEFAULT_LOOKBACK_DAYS",
    "DEFAULT_PURPOSES",
    "PERMISSIONS",
    "AccessContext",
    "Action",
    "Approval",
    "CameraStatus",
    "DataClass",
    "Decision",
    "Mou",
    "MouStatus",
    "PolicyEngine",
    "PolicyRowError",
    "Purpose",
    "PurposesLoader",
    "Resource",
    "Role",
    "RowsAdapter",
    "RulesLoader",
    "Subject",
    "SubjectKind",
    "default_model_path",
    "default_policy_path",
    "is_known_permission",
    "is_vague",
    "read_policy_file",
]
