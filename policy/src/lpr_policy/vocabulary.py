"""The enumerated vocabulary of the policy: resources, actions, roles, data classes.

The gateway maps every route to one (resource, action) pair from this module; the
baseline ``policy.csv`` may only name pairs listed in :data:`PERMISSIONS` (a test checks).
"""

from __future__ import annotations

from enum import StrEnum


class Resource(StrEnum):
    """What a request touches (the Casbin object)."""

    READS = "reads"
    IMAGES = "images"
    HITS = "hits"
    ALERTS = "alerts"
    HOTLISTS = "hotlists"
    HOTLIST_ENTRIES = "hotlist_entries"
    USERS = "users"
    AGENCIES = "agencies"
    MOUS = "mous"
    CAMERAS = "cameras"
    DEPLOYMENTS = "deployments"
    EQUIPMENT_CHECKS = "equipment_checks"
    APPROVALS = "approvals"
    PURPOSES = "purposes"
    AUDIT = "audit"
    DISSEMINATION = "dissemination"
    RETENTION = "retention"
    LEGAL_HOLDS = "legal_holds"
    REPORTS = "reports"


class Action(StrEnum):
    """What is done to the resource (the Casbin action).

    ``manage`` covers create, update and delete of governance records; the gateway maps
    POST/PUT/PATCH/DELETE on those routes to it.
    """

    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    DELETE = "delete"
    SEARCH = "search"
    MANAGE = "manage"
    EXPORT = "export"


class Role(StrEnum):
    """Roles a subject can hold in an agency (the Casbin domain)."""

    OFFICER = "officer"
    ADMINISTRATOR = "administrator"
    AUDITOR = "auditor"
    RECORDS = "records"
    PARTNER = "partner"
    CAMERA = "camera"


class SubjectKind(StrEnum):
    """How the caller authenticated (same values as ``lpr_common.context.SubjectKind``)."""

    USER = "user"
    PARTNER = "partner"
    CAMERA = "camera"
    SERVICE = "service"


class DataClass(StrEnum):
    """Classes of LPR data an MOU can share (IACP D.2)."""

    READS = "reads"
    HITS = "hits"
    IMAGES = "images"


_GOVERNANCE = frozenset({Action.READ, Action.MANAGE})

PERMISSIONS: dict[Resource, frozenset[Action]] = {
    Resource.READS: frozenset({Action.CREATE, Action.READ, Action.SEARCH, Action.EXPORT}),
    Resource.IMAGES: frozenset({Action.READ}),
    Resource.HITS: frozenset({Action.READ}),
    Resource.ALERTS: frozenset({Action.READ, Action.UPDATE}),
    Resource.HOTLISTS: _GOVERNANCE,
    Resource.HOTLIST_ENTRIES: frozenset({Action.CREATE, Action.DELETE}),
    Resource.USERS: _GOVERNANCE,
    Resource.AGENCIES: _GOVERNANCE,
    Resource.MOUS: _GOVERNANCE,
    Resource.CAMERAS: _GOVERNANCE,
    Resource.DEPLOYMENTS: _GOVERNANCE,
    Resource.EQUIPMENT_CHECKS: frozenset({Action.READ, Action.CREATE, Action.MANAGE}),
    Resource.APPROVALS: frozenset({Action.READ, Action.CREATE, Action.MANAGE}),
    Resource.PURPOSES: _GOVERNANCE,
    Resource.AUDIT: frozenset({Action.READ, Action.EXPORT}),
    Resource.DISSEMINATION: frozenset({Action.READ, Action.EXPORT}),
    Resource.RETENTION: _GOVERNANCE,
    Resource.LEGAL_HOLDS: frozenset({Action.READ, Action.CREATE, Action.DELETE}),
    Resource.REPORTS: frozenset({Action.READ}),
}
"""Every (resource, action) pair the system knows; anything else is denied."""

DATA_CLASS_OF: dict[Resource, DataClass] = {
    Resource.READS: DataClass.READS,
    Resource.IMAGES: DataClass.IMAGES,
    Resource.HITS: DataClass.HITS,
}
"""Resources that can leave the agency under an MOU, and the data class each belongs to."""


def is_known_permission(resource: str, action: str) -> bool:
    """Return True when ``resource``/``action`` is a pair listed in :data:`PERMISSIONS`."""
    try:
        return Action(action) in PERMISSIONS[Resource(resource)]
    except (ValueError, KeyError):
        return False
