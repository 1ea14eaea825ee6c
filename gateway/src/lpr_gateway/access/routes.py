"""THE route table: every public (method, path) the gateway serves, and what it means.

Each row maps one operation to the policy's (resource, action) and names the service
that owns it. The gateway's own routers use the same path templates; the forwarded
operations are generated from this table (see :mod:`lpr_gateway.access.forward`), so the
OpenAPI document and the policy can never disagree. The guard looks a request up here by
the route FastAPI matched; anything not here is denied (404, audited). A test walks the
OpenAPI document and fails if an operation has no row or no guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lpr_policy import Action, Resource


class Owner(StrEnum):
    """The service that owns a path (docs/internal-api.md)."""

    GATEWAY = "gateway"
    RECOGNITION = "recognition"
    HOTLIST = "hotlist"
    AUDIT = "audit"


MUTATING_ACTIONS = frozenset({Action.CREATE, Action.UPDATE, Action.DELETE, Action.MANAGE})
"""Actions audited before the request goes on (nothing changes unless the event is kept)."""


@dataclass(frozen=True, slots=True)
class RouteRule:
    """One operation of the public API.

    Attributes:
        method: HTTP method.
        path: FastAPI path template, identical to the route's (``{rest:path}`` allowed).
        resource: The policy resource; None only for public routes.
        action: The policy action; None only for public routes.
        owner: Service that answers.
        summary: OpenAPI summary of a forwarded operation.
        public: No credentials needed (token endpoint, key set); audited by the route.
        camera_ingest: Camera read ingestion: signature check, body limit, audit outbox.
        stream: The answer is a long-lived stream (no read timeout).
        body_context: Purpose, case number, offense and time range come from the JSON body.
    """

    method: str
    path: str
    resource: Resource | None
    action: Action | None
    owner: Owner
    summary: str = ""
    public: bool = False
    camera_ingest: bool = False
    stream: bool = False
    body_context: bool = False

    @property
    def forwarded(self) -> bool:
        """True when another service answers."""
        return self.owner is not Owner.GATEWAY

    @property
    def mutating(self) -> bool:
        """True when the action changes stored state."""
        return self.action in MUTATING_ACTIONS


R, A, O = Resource, Action, Owner  # noqa: E741  (short names keep the table readable)


def _governance(path: str, resource: Resource, item: str) -> list[RouteRule]:
    """List/create on the collection, read/update on one item."""
    return [
        RouteRule("GET", path, resource, A.READ, O.GATEWAY),
        RouteRule("POST", path, resource, A.MANAGE, O.GATEWAY),
        RouteRule("GET", f"{path}/{{{item}}}", resource, A.READ, O.GATEWAY),
        RouteRule("PATCH", f"{path}/{{{item}}}", resource, A.MANAGE, O.GATEWAY),
    ]


def _prefix(
    path: str, resource: Resource, owner: Owner, *, write: Action = A.MANAGE, label: str
) -> list[RouteRule]:
    """Pass-through of a prefix: GET reads, other methods ``write`` (after specific rows)."""
    rules = []
    for template in (path, f"{path}/{{rest:path}}"):
        where = label if template == path else f"{label} (any sub-path)"
        rules.append(RouteRule("GET", template, resource, A.READ, owner, f"Read {where}"))
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            rules.append(RouteRule(method, template, resource, write, owner, f"Change {where}"))
    return rules


GATEWAY_ROUTES: list[RouteRule] = [
    RouteRule("POST", "/v1/auth/token", None, None, O.GATEWAY, public=True),
    RouteRule("GET", "/v1/auth/jwks", None, None, O.GATEWAY, public=True),
    *_governance("/v1/users", R.USERS, "user_id"),
    RouteRule("GET", "/v1/users/{user_id}/training", R.USERS, A.READ, O.GATEWAY),
    RouteRule("POST", "/v1/users/{user_id}/training", R.USERS, A.MANAGE, O.GATEWAY),
    RouteRule("POST", "/v1/users/{user_id}/unlock", R.USERS, A.MANAGE, O.GATEWAY),
    *_governance("/v1/agencies", R.AGENCIES, "agency_id"),
    *_governance("/v1/mous", R.MOUS, "mou_id"),
    RouteRule("GET", "/v1/mous/{mou_id}/clients", R.MOUS, A.READ, O.GATEWAY),
    RouteRule("POST", "/v1/mous/{mou_id}/clients", R.MOUS, A.MANAGE, O.GATEWAY),
    *_governance("/v1/cameras", R.CAMERAS, "camera_id"),
    RouteRule("POST", "/v1/cameras/{camera_id}/key", R.CAMERAS, A.MANAGE, O.GATEWAY),
    RouteRule("GET", "/v1/deployments", R.DEPLOYMENTS, A.READ, O.GATEWAY),
    RouteRule("POST", "/v1/deployments", R.DEPLOYMENTS, A.MANAGE, O.GATEWAY),
    RouteRule("GET", "/v1/deployments/{deployment_id}", R.DEPLOYMENTS, A.READ, O.GATEWAY),
    RouteRule(
        "POST", "/v1/deployments/{deployment_id}/decision", R.DEPLOYMENTS, A.MANAGE, O.GATEWAY
    ),
    RouteRule("GET", "/v1/equipment-checks", R.EQUIPMENT_CHECKS, A.READ, O.GATEWAY),
    RouteRule("POST", "/v1/equipment-checks", R.EQUIPMENT_CHECKS, A.CREATE, O.GATEWAY),
    RouteRule("GET", "/v1/approvals", R.APPROVALS, A.READ, O.GATEWAY),
    RouteRule("POST", "/v1/approvals", R.APPROVALS, A.CREATE, O.GATEWAY, body_context=True),
    RouteRule("GET", "/v1/approvals/{approval_id}", R.APPROVALS, A.READ, O.GATEWAY),
    RouteRule("POST", "/v1/approvals/{approval_id}/decision", R.APPROVALS, A.MANAGE, O.GATEWAY),
    RouteRule("GET", "/v1/purposes", R.PURPOSES, A.READ, O.GATEWAY),
    RouteRule("POST", "/v1/purposes", R.PURPOSES, A.MANAGE, O.GATEWAY),
    RouteRule("DELETE", "/v1/purposes/{code}", R.PURPOSES, A.MANAGE, O.GATEWAY),
    # Runtime policy rows are role assignments and grants to users: user administration.
    RouteRule("GET", "/v1/policy/rules", R.USERS, A.READ, O.GATEWAY),
    RouteRule("POST", "/v1/policy/rules", R.USERS, A.MANAGE, O.GATEWAY),
    RouteRule("DELETE", "/v1/policy/rules/{rule_id}", R.USERS, A.MANAGE, O.GATEWAY),
]

FORWARDED_ROUTES: list[RouteRule] = [
    # Longest prefix first: the retention periods are audit-svc's records.
    RouteRule(
        "GET",
        "/v1/retention/settings",
        R.RETENTION,
        A.READ,
        O.AUDIT,
        "Read the retention period of each class",
    ),
    RouteRule(
        "PUT",
        "/v1/retention/settings",
        R.RETENTION,
        A.MANAGE,
        O.AUDIT,
        "Change retention periods, with a reason",
    ),
    RouteRule(
        "GET",
        "/v1/audit/exports",
        R.AUDIT,
        A.EXPORT,
        O.AUDIT,
        "Export a verifiable bundle of the access log",
    ),
    RouteRule(
        "GET",
        "/v1/dissemination/exports",
        R.DISSEMINATION,
        A.EXPORT,
        O.AUDIT,
        "Export a verifiable bundle of the dissemination log",
    ),
    # recognition: reads, images, search, retention, legal holds
    RouteRule(
        "POST",
        "/v1/reads",
        R.READS,
        A.CREATE,
        O.RECOGNITION,
        "Post a read from a camera",
        camera_ingest=True,
    ),
    RouteRule(
        "POST",
        "/v1/reads/batch",
        R.READS,
        A.CREATE,
        O.RECOGNITION,
        "Post a batch of reads from a camera",
        camera_ingest=True,
    ),
    RouteRule(
        "POST",
        "/v1/reads/search",
        R.READS,
        A.SEARCH,
        O.RECOGNITION,
        "Search historical reads for a case",
        body_context=True,
    ),
    RouteRule(
        "POST",
        "/v1/reads/export",
        R.READS,
        A.EXPORT,
        O.RECOGNITION,
        "Export reads for a case",
        body_context=True,
    ),
    RouteRule("GET", "/v1/reads/{read_id}", R.READS, A.READ, O.RECOGNITION, "Read one read"),
    RouteRule(
        "GET",
        "/v1/reads/{read_id}/image",
        R.IMAGES,
        A.READ,
        O.RECOGNITION,
        "Fetch the image of a read",
    ),
    RouteRule(
        "GET",
        "/v1/reads/{read_id}/plates/{index}/crop",
        R.IMAGES,
        A.READ,
        O.RECOGNITION,
        "Fetch the plate crop of a read",
    ),
    *_prefix("/v1/retention", R.RETENTION, O.RECOGNITION, label="retention settings"),
    RouteRule("GET", "/v1/legal-holds", R.LEGAL_HOLDS, A.READ, O.RECOGNITION, "List legal holds"),
    RouteRule(
        "POST",
        "/v1/legal-holds",
        R.LEGAL_HOLDS,
        A.CREATE,
        O.RECOGNITION,
        "Place a legal hold",
        body_context=True,
    ),
    RouteRule(
        "GET",
        "/v1/legal-holds/{hold_id}",
        R.LEGAL_HOLDS,
        A.READ,
        O.RECOGNITION,
        "Read a legal hold",
    ),
    RouteRule(
        "DELETE",
        "/v1/legal-holds/{hold_id}",
        R.LEGAL_HOLDS,
        A.DELETE,
        O.RECOGNITION,
        "Release a legal hold",
    ),
    # hotlist: lists, entries, alerts, dispositions, shift checks
    RouteRule(
        "POST",
        "/v1/hotlists/{list_id}/entries",
        R.HOTLIST_ENTRIES,
        A.CREATE,
        O.HOTLIST,
        "Add a manual entry with a reason",
        body_context=True,
    ),
    RouteRule(
        "DELETE",
        "/v1/hotlists/{list_id}/entries/{entry_id}",
        R.HOTLIST_ENTRIES,
        A.DELETE,
        O.HOTLIST,
        "Remove an entry with a reason",
    ),
    *_prefix("/v1/hotlists", R.HOTLISTS, O.HOTLIST, label="hot lists"),
    RouteRule(
        "GET",
        "/v1/alerts/stream",
        R.ALERTS,
        A.READ,
        O.HOTLIST,
        "Receive alerts as a server-sent event stream",
        stream=True,
    ),
    *_prefix("/v1/alerts", R.ALERTS, O.HOTLIST, write=A.UPDATE, label="alerts"),
    *_prefix("/v1/dispositions", R.ALERTS, O.HOTLIST, write=A.UPDATE, label="dispositions"),
    RouteRule("GET", "/v1/shift-checks", R.HOTLISTS, A.READ, O.HOTLIST, "List shift-start checks"),
    # An officer confirming the current hot lists at shift start only reads them (C.3).
    RouteRule(
        "POST",
        "/v1/shift-checks",
        R.HOTLISTS,
        A.READ,
        O.HOTLIST,
        "Confirm the current hot lists at shift start",
    ),
    RouteRule("GET", "/v1/hits", R.HITS, A.READ, O.HOTLIST, "Hits for a plate", body_context=False),
    # audit: access log, dissemination log, reports
    RouteRule("GET", "/v1/audit", R.AUDIT, A.READ, O.AUDIT, "Query the access log"),
    RouteRule("GET", "/v1/audit/{rest:path}", R.AUDIT, A.READ, O.AUDIT, "Query the access log"),
    RouteRule(
        "POST",
        "/v1/audit/{rest:path}",
        R.AUDIT,
        A.EXPORT,
        O.AUDIT,
        "Export or verify the access log",
    ),
    RouteRule(
        "GET",
        "/v1/dissemination",
        R.DISSEMINATION,
        A.READ,
        O.AUDIT,
        "Query the dissemination log",
    ),
    RouteRule(
        "GET",
        "/v1/dissemination/{rest:path}",
        R.DISSEMINATION,
        A.READ,
        O.AUDIT,
        "Query the dissemination log",
    ),
    RouteRule(
        "POST",
        "/v1/dissemination/{rest:path}",
        R.DISSEMINATION,
        A.EXPORT,
        O.AUDIT,
        "Export the dissemination log",
    ),
    RouteRule("GET", "/v1/reports", R.REPORTS, A.READ, O.AUDIT, "List reports"),
    RouteRule("GET", "/v1/reports/{rest:path}", R.REPORTS, A.READ, O.AUDIT, "Read a report"),
]

ROUTE_TABLE: tuple[RouteRule, ...] = (*GATEWAY_ROUTES, *FORWARDED_ROUTES)

_INDEX: dict[tuple[str, str], RouteRule] = {(r.method, r.path): r for r in ROUTE_TABLE}
if len(_INDEX) != len(ROUTE_TABLE):  # pragma: no cover - caught at import by every test
    raise RuntimeError("the route table lists an operation twice")


def rule_for(method: str, path_template: str) -> RouteRule | None:
    """The row for a matched route, or None (deny by default)."""
    return _INDEX.get((method.upper(), path_template))
