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
        partner: Open to partner agencies under an MOU (listed under the ``partners`` tag).
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
    partner: bool = False

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
        partner=True,
    ),
    RouteRule(
        "GET", "/v1/reads/{read_id}", R.READS, A.READ, O.RECOGNITION, "Read one read", partner=True
    ),
    RouteRule(
        "GET",
        "/v1/reads/{read_id}/image",
        R.IMAGES,
        A.READ,
        O.RECOGNITION,
        "Fetch the image of a read",
        partner=True,
    ),
    RouteRule(
        "GET",
        "/v1/reads/{read_id}/plates/{index}/crop",
        R.IMAGES,
        A.READ,
        O.RECOGNITION,
        "Fetch the plate crop of a read",
        partner=True,
    ),
    RouteRule(
        "GET", "/v1/retention/runs", R.RETENTION, A.READ, O.RECOGNITION, "List retention runs"
    ),
    RouteRule(
        "POST",
        "/v1/retention/runs",
        R.RETENTION,
        A.MANAGE,
        O.RECOGNITION,
        "Run read retention now",
    ),
    RouteRule(
        "GET",
        "/v1/retention/runs/{run_id}",
        R.RETENTION,
        A.READ,
        O.RECOGNITION,
        "Read a retention run and its receipt",
    ),
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
    # hotlist: lists, entries, alerts, dispositions, shift checks (one row per operation of
    # hotlist-svc; a test checks the rows against its OpenAPI document)
    RouteRule("GET", "/v1/hotlists", R.HOTLISTS, A.READ, O.HOTLIST, "List hot lists"),
    RouteRule("POST", "/v1/hotlists", R.HOTLISTS, A.MANAGE, O.HOTLIST, "Create a hot list"),
    RouteRule(
        "GET", "/v1/hotlists/config", R.HOTLISTS, A.READ, O.HOTLIST, "Read the matching settings"
    ),
    RouteRule(
        "PUT",
        "/v1/hotlists/config",
        R.HOTLISTS,
        A.MANAGE,
        O.HOTLIST,
        "Change the matching settings",
    ),
    RouteRule(
        "GET",
        "/v1/hotlists/sync",
        R.HOTLISTS,
        A.READ,
        O.HOTLIST,
        "Changes to the hot lists since a version (C.3)",
    ),
    RouteRule("GET", "/v1/hotlists/{list_id}", R.HOTLISTS, A.READ, O.HOTLIST, "Read a hot list"),
    RouteRule(
        "PATCH", "/v1/hotlists/{list_id}", R.HOTLISTS, A.MANAGE, O.HOTLIST, "Change a hot list"
    ),
    RouteRule(
        "POST",
        "/v1/hotlists/{list_id}/imports",
        R.HOTLISTS,
        A.MANAGE,
        O.HOTLIST,
        "Import a file as the list's new version",
    ),
    RouteRule(
        "GET",
        "/v1/hotlists/{list_id}/versions",
        R.HOTLISTS,
        A.READ,
        O.HOTLIST,
        "List a hot list's versions",
    ),
    RouteRule(
        "GET",
        "/v1/hotlists/{list_id}/versions/{number}/entries",
        R.HOTLISTS,
        A.READ,
        O.HOTLIST,
        "List the entries of one version",
    ),
    RouteRule(
        "GET",
        "/v1/hotlists/{list_id}/entries",
        R.HOTLISTS,
        A.READ,
        O.HOTLIST,
        "List the current entries",
    ),
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
        "GET",
        "/v1/hotlists/{list_id}/manual-entries",
        R.HOTLISTS,
        A.READ,
        O.HOTLIST,
        "List manual entries with their reasons",
    ),
    RouteRule(
        "DELETE",
        "/v1/hotlists/{list_id}/entries/{entry_id}",
        R.HOTLIST_ENTRIES,
        A.DELETE,
        O.HOTLIST,
        "Remove an entry with a reason",
    ),
    RouteRule(
        "GET",
        "/v1/alerts/stream",
        R.ALERTS,
        A.READ,
        O.HOTLIST,
        "Receive alerts as a server-sent event stream",
        stream=True,
    ),
    RouteRule(
        "GET",
        "/v1/alerts/open",
        R.ALERTS,
        A.READ,
        O.HOTLIST,
        "Report alerts still without a disposition",
    ),
    RouteRule("GET", "/v1/alerts", R.ALERTS, A.READ, O.HOTLIST, "List the agency's alerts"),
    RouteRule(
        "GET", "/v1/alerts/{alert_id}", R.ALERTS, A.READ, O.HOTLIST, "Show an alert with history"
    ),
    *(
        RouteRule(
            "POST",
            f"/v1/alerts/{{alert_id}}/{step}",
            R.ALERTS,
            A.UPDATE,
            O.HOTLIST,
            summary,
        )
        for step, summary in (
            ("acknowledge", "Acknowledge a new alert (C.4)"),
            ("verify", "Record that the read matches the entry (C.4.a)"),
            ("misread", "Flag an alert as a misread (C.4.a)"),
            ("status-check", "Record the dispatch or MDT status check (C.4.b)"),
            ("disposition", "Record the disposition of an alert (C.5)"),
        )
    ),
    RouteRule("GET", "/v1/hits", R.HITS, A.READ, O.HOTLIST, "Hits for a plate", partner=True),
    RouteRule(
        "GET", "/v1/dispositions", R.ALERTS, A.READ, O.HOTLIST, "List the administered dispositions"
    ),
    # The list of dispositions is hot-list configuration, administered like the lists.
    RouteRule(
        "PUT",
        "/v1/dispositions/{code}",
        R.HOTLISTS,
        A.MANAGE,
        O.HOTLIST,
        "Add or change an administered disposition",
    ),
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
    # audit: access log, dissemination log, reports (exports are listed first, above)
    RouteRule("GET", "/v1/audit/events", R.AUDIT, A.READ, O.AUDIT, "Query the access log"),
    RouteRule(
        "POST",
        "/v1/audit/checkpoints",
        R.AUDIT,
        A.EXPORT,
        O.AUDIT,
        "Sign a checkpoint of a chain",
    ),
    RouteRule(
        "GET",
        "/v1/audit/public-key",
        R.AUDIT,
        A.READ,
        O.AUDIT,
        "The checkpoint public key(s)",
    ),
    RouteRule(
        "GET",
        "/v1/audit/verification",
        R.AUDIT,
        A.READ,
        O.AUDIT,
        "Verify a chain and its checkpoints",
    ),
    RouteRule("GET", "/v1/audit/misuse", R.AUDIT, A.READ, O.AUDIT, "Flags of possible misuse"),
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
        "/v1/reports/transparency",
        R.REPORTS,
        A.READ,
        O.AUDIT,
        "The transparency report (aggregate counts)",
    ),
]

ROUTE_TABLE: tuple[RouteRule, ...] = (*GATEWAY_ROUTES, *FORWARDED_ROUTES)

_INDEX: dict[tuple[str, str], RouteRule] = {(r.method, r.path): r for r in ROUTE_TABLE}
if len(_INDEX) != len(ROUTE_TABLE):  # pragma: no cover - caught at import by every test
    raise RuntimeError("the route table lists an operation twice")


def rule_for(method: str, path_template: str) -> RouteRule | None:
    """The row for a matched route, or None (deny by default)."""
    return _INDEX.get((method.upper(), path_template))
