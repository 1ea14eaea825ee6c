"""The policy as a table: one row per rule, each named after the IACP clause it encodes.

Columns: subject, purpose, resource, action, expected, clause, rule, plus the rest of the
access context (case number, lookback, offense, reason, target agency). ``rule`` is the
granting policy row on allow and the failed check on deny.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from lpr_policy import (
    AccessContext,
    Action,
    Approval,
    CameraStatus,
    DataClass,
    Mou,
    MouStatus,
    PolicyEngine,
    Resource,
    Subject,
    SubjectKind,
)

NOW = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)
HOME = "pd-a"
PARTNER_AGENCY = "so-b"
CASE = "PD-2025-001234"

MOU = Mou(
    id="mou-7",
    owner_agency=HOME,
    partner_agency=PARTNER_AGENCY,
    status=MouStatus.ACTIVE,
    data_classes=frozenset({DataClass.READS, DataClass.HITS}),
    purposes=frozenset({"stolen_vehicle", "amber_alert"}),
    max_lookback_days=30,
    signed_on=date(2025, 1, 15),
    expires_on=date(2026, 1, 14),
)


def user(
    *roles: str,
    training_days: int | None = 180,
    approvals: tuple[Approval, ...] = (),
    agency: str = HOME,
    mou: Mou | None = None,
) -> Subject:
    """A user of ``agency`` whose training expires ``training_days`` from NOW."""
    return Subject(
        kind=SubjectKind.USER,
        id="42",
        agency=agency,
        roles=frozenset(roles),
        training_expires_at=None if training_days is None else NOW + timedelta(training_days),
        approvals=approvals,
        mou=mou,
    )


def partner(mou: Mou | None = MOU) -> Subject:
    """The partner agency's API client."""
    return Subject(kind=SubjectKind.PARTNER, id="client-so-b", agency=PARTNER_AGENCY, mou=mou)


def camera(*, in_service: bool = True, approved: bool = True, special: bool = False) -> Subject:
    """A camera of the home agency."""
    status = CameraStatus(
        in_service=in_service, deployment_approved=approved, special_detail=special
    )
    return Subject(kind=SubjectKind.CAMERA, id="cam-3", agency=HOME, camera=status)


def approval(
    resource: Resource,
    action: Action,
    *,
    starts: timedelta = timedelta(days=-1),
    ends: timedelta = timedelta(days=6),
    case_number: str | None = CASE,
    max_lookback_days: int | None = 365,
) -> Approval:
    """An approval whose window is given relative to NOW."""
    return Approval(
        id="apr-1",
        resource=resource,
        action=action,
        not_before=NOW + starts,
        not_after=NOW + ends,
        case_number=case_number,
        max_lookback_days=max_lookback_days,
        approved_by="admin-1",
    )


OFFICER = user("officer")
ADMINISTRATOR = user("administrator")
AUDITOR = user("auditor")
RECORDS = user("records")
SEARCH = {"case_number": CASE, "lookback_days": 30}
LONG_SEARCH = {"case_number": CASE, "lookback_days": 200}
EXPORT_APPROVAL = approval(Resource.READS, Action.EXPORT)
LOOKBACK_APPROVAL = approval(Resource.READS, Action.SEARCH)
REASON = "Vehicle seen leaving burglary at 12 Main St, witness statement"


def row(
    case_id: str,
    subject: Subject,
    purpose: str | None,
    resource: Resource | str,
    action: Action | str,
    expected: bool,
    clause: str,
    rule: str,
    **context: Any,
) -> Any:
    """One table row; the pytest id names the IACP clause it encodes."""
    return pytest.param(
        subject, purpose, resource, action, expected, clause, rule, context, id=case_id
    )


R, A = Resource, Action

TABLE = [
    # --- A.1-2: official public-safety purpose on every data access
    row("IACP-A.1-2-specific-purpose-allowed", OFFICER, "stolen_vehicle", R.READS, A.READ, True, "A.1-2", "A.1-2:officer-views-read"),
    row("IACP-A.1-2-vague-purpose-other-denied", OFFICER, "other", R.READS, A.SEARCH, False, "A.1-2", "vague-purpose", **SEARCH),
    row("IACP-A.1-2-vague-purpose-test-denied", OFFICER, "Test", R.READS, A.SEARCH, False, "A.1-2", "vague-purpose", **SEARCH),
    row("IACP-A.1-2-empty-purpose-denied", OFFICER, "", R.READS, A.SEARCH, False, "A.1-2", "vague-purpose", **SEARCH),
    row("IACP-A.1-2-missing-purpose-denied", OFFICER, None, R.IMAGES, A.READ, False, "A.1-2", "vague-purpose"),
    row("IACP-A.1-2-investigation-without-offense-denied", OFFICER, "investigation", R.READS, A.SEARCH, False, "A.1-2", "vague-purpose", **SEARCH),
    row("IACP-A.1-2-investigation-with-vague-offense-denied", OFFICER, "investigation", R.READS, A.SEARCH, False, "A.1-2", "vague-purpose", offense="other", **SEARCH),
    row("IACP-A.1-2-investigation-of-named-offense-allowed", OFFICER, "investigation", R.READS, A.SEARCH, True, "C.8", "C.8:officer-historical-search", offense="burglary", **SEARCH),
    row("IACP-A.1-2-purpose-not-administered-denied", OFFICER, "parking_enforcement", R.READS, A.SEARCH, False, "A.1-2", "unknown-purpose", **SEARCH),
    # --- B.1.d, C.2: only trained users operate the system
    row("IACP-C.2-current-training-allowed", OFFICER, "amber_alert", R.READS, A.SEARCH, True, "C.8", "C.8:officer-historical-search", **SEARCH),
    row("IACP-C.2-expired-training-denied", user("officer", training_days=-1), "amber_alert", R.READS, A.SEARCH, False, "C.2", "training-expired", **SEARCH),
    row("IACP-C.2-training-expiring-now-denied", user("officer", training_days=0), "amber_alert", R.ALERTS, A.READ, False, "C.2", "training-expired"),
    row("IACP-C.2-no-training-on-record-denied", user("officer", training_days=None), None, R.ALERTS, A.READ, False, "C.2", "training-missing"),
    row("IACP-C.2-expired-training-denies-administrator", user("administrator", training_days=-30), None, R.USERS, A.MANAGE, False, "C.2", "training-expired"),
    row("IACP-C.2-expired-training-denies-auditor", user("auditor", training_days=-30), None, R.AUDIT, A.READ, False, "C.2", "training-expired"),
    # --- C.8: historical search needs a case number and a bounded time range
    row("IACP-C.8-search-requires-case-number", OFFICER, "stolen_vehicle", R.READS, A.SEARCH, False, "C.8", "case-number-required", lookback_days=30),
    row("IACP-C.8-malformed-case-number-denied", OFFICER, "stolen_vehicle", R.READS, A.SEARCH, False, "C.8", "case-number-format", case_number="12345", lookback_days=30),
    row("IACP-C.8-search-requires-time-range", OFFICER, "stolen_vehicle", R.READS, A.SEARCH, False, "C.8", "time-range-required", case_number=CASE),
    row("IACP-C.8-search-at-default-90-days-allowed", OFFICER, "stolen_vehicle", R.READS, A.SEARCH, True, "C.8", "C.8:officer-historical-search", case_number=CASE, lookback_days=90),
    row("IACP-C.8-since-91-days-ago-counts-as-lookback", OFFICER, "stolen_vehicle", R.READS, A.SEARCH, False, "B.1.f", "lookback-exceeds-limit", case_number=CASE, since=NOW - timedelta(days=90, hours=1)),
    # --- B.1.f: approvals, in and out of their window
    row("IACP-B.1.f-search-beyond-90-days-without-approval-denied", OFFICER, "stolen_vehicle", R.READS, A.SEARCH, False, "B.1.f", "lookback-exceeds-limit", **LONG_SEARCH),
    row("IACP-B.1.f-search-beyond-90-days-with-approval-in-window-allowed", user("officer", approvals=(LOOKBACK_APPROVAL,)), "stolen_vehicle", R.READS, A.SEARCH, True, "C.8", "C.8:officer-historical-search", **LONG_SEARCH),
    row("IACP-B.1.f-expired-approval-denied", user("officer", approvals=(approval(R.READS, A.SEARCH, starts=timedelta(days=-10), ends=timedelta(days=-1)),)), "stolen_vehicle", R.READS, A.SEARCH, False, "B.1.f", "approval-outside-window", **LONG_SEARCH),
    row("IACP-B.1.f-approval-not-yet-valid-denied", user("officer", approvals=(approval(R.READS, A.SEARCH, starts=timedelta(hours=1)),)), "stolen_vehicle", R.READS, A.SEARCH, False, "B.1.f", "approval-outside-window", **LONG_SEARCH),
    row("IACP-B.1.f-approval-for-another-case-does-not-apply", user("officer", approvals=(approval(R.READS, A.SEARCH, case_number="PD-2025-009999"),)), "stolen_vehicle", R.READS, A.SEARCH, False, "B.1.f", "lookback-exceeds-limit", **LONG_SEARCH),
    row("IACP-B.1.f-lookback-beyond-approved-days-denied", user("officer", approvals=(approval(R.READS, A.SEARCH, max_lookback_days=120),)), "stolen_vehicle", R.READS, A.SEARCH, False, "B.1.f", "lookback-exceeds-approval", **LONG_SEARCH),
    row("IACP-B.1.f-records-release-with-approval-allowed", user("records", approvals=(EXPORT_APPROVAL,)), "stolen_vehicle", R.READS, A.EXPORT, True, "B.1.f", "B.1.f:records-releases-case-data", case_number=CASE),
    row("IACP-B.1.f-records-release-without-approval-denied", RECORDS, "stolen_vehicle", R.READS, A.EXPORT, False, "B.1.f", "approval-required", case_number=CASE),
    row("IACP-B.1.f-records-release-after-approval-window-denied", user("records", approvals=(approval(R.READS, A.EXPORT, starts=timedelta(days=-9), ends=timedelta(seconds=-1)),)), "stolen_vehicle", R.READS, A.EXPORT, False, "B.1.f", "approval-outside-window", case_number=CASE),
    row("IACP-B.1.f-search-approval-does-not-cover-export", user("records", approvals=(LOOKBACK_APPROVAL,)), "stolen_vehicle", R.READS, A.EXPORT, False, "B.1.f", "approval-required", case_number=CASE),
    row("IACP-B.1.f-officer-requests-approval-with-reason", OFFICER, None, R.APPROVALS, A.CREATE, True, "B.1.f", "B.1.f:officer-requests-approval", reason=REASON),
    row("IACP-B.1.f-officer-cannot-decide-approvals", OFFICER, None, R.APPROVALS, A.MANAGE, False, "B.1.a", "deny-by-default"),
    row("IACP-B.1.f-administrator-decides-approvals", ADMINISTRATOR, None, R.APPROVALS, A.MANAGE, True, "B.1.f", "B.1.f:administrator-decides-approvals"),
    # --- C.3-C.6: hot lists, alerts, manual entries
    row("IACP-C.3-officer-loads-current-hotlists", OFFICER, None, R.HOTLISTS, A.READ, True, "C.3", "C.3:officer-loads-current-hotlists"),
    row("IACP-C.3-officer-cannot-manage-hotlist-sources", OFFICER, None, R.HOTLISTS, A.MANAGE, False, "B.1.a", "deny-by-default"),
    row("IACP-C.4-officer-receives-alerts", OFFICER, None, R.ALERTS, A.READ, True, "C.4", "C.4:officer-receives-alerts"),
    row("IACP-C.5-officer-records-disposition", OFFICER, None, R.ALERTS, A.UPDATE, True, "C.5", "C.5:officer-records-disposition"),
    row("IACP-C.5-auditor-cannot-record-disposition", AUDITOR, None, R.ALERTS, A.UPDATE, False, "B.1.a", "deny-by-default"),
    row("IACP-C.6-manual-entry-with-reason-allowed", OFFICER, None, R.HOTLIST_ENTRIES, A.CREATE, True, "C.6", "C.6:officer-manual-entry-with-reason", reason=REASON),
    row("IACP-C.6-manual-entry-without-reason-denied", OFFICER, None, R.HOTLIST_ENTRIES, A.CREATE, False, "C.6", "reason-required"),
    row("IACP-C.6-manual-entry-vague-reason-denied", OFFICER, None, R.HOTLIST_ENTRIES, A.CREATE, False, "C.6", "reason-required", reason="other"),
    # --- B.1.e, B.2, C.7: cameras post reads only, in service, deployment approved
    row("IACP-B.1.e-camera-posts-read", camera(), None, R.READS, A.CREATE, True, "B.1.e", "B.1.e:camera-posts-reads"),
    row("IACP-B.2-out-of-service-camera-refused", camera(in_service=False), None, R.READS, A.CREATE, False, "B.2", "camera-out-of-service"),
    row("IACP-C.7-unapproved-special-detail-refused", camera(approved=False, special=True), None, R.READS, A.CREATE, False, "C.7", "special-detail-not-approved"),
    row("IACP-C.7-approved-special-detail-accepted", camera(special=True), None, R.READS, A.CREATE, True, "B.1.e", "B.1.e:camera-posts-reads"),
    row("IACP-B.1.e-camera-without-approved-deployment-refused", camera(approved=False), None, R.READS, A.CREATE, False, "B.1.e", "deployment-not-approved"),
    row("IACP-B.1.e-camera-cannot-search-reads", camera(), "stolen_vehicle", R.READS, A.SEARCH, False, "B.1.a", "deny-by-default", **SEARCH),
    row("IACP-B.1.e-camera-cannot-read-images", camera(), "stolen_vehicle", R.IMAGES, A.READ, False, "B.1.a", "deny-by-default"),
    row("IACP-D.2-camera-cannot-post-to-another-agency", camera(), None, R.READS, A.CREATE, False, "D.2", "cross-agency-camera", target_agency=PARTNER_AGENCY),
    row("IACP-B.1.e-officer-cannot-post-reads", OFFICER, None, R.READS, A.CREATE, False, "B.1.a", "deny-by-default"),
    row("IACP-B.2-officer-records-equipment-check", OFFICER, None, R.EQUIPMENT_CHECKS, A.CREATE, True, "B.2", "B.2:officer-records-equipment-check"),
    # --- auditors read the logs, not the data
    row("IACP-B.1.c-auditor-reads-audit", AUDITOR, None, R.AUDIT, A.READ, True, "B.1.c", "B.1.c:auditor-queries-access-log"),
    row("IACP-B.1.c-auditor-exports-audit", AUDITOR, None, R.AUDIT, A.EXPORT, True, "B.1.c", "B.1.c:auditor-exports-access-log"),
    row("IACP-D.1-auditor-reads-dissemination-log", AUDITOR, None, R.DISSEMINATION, A.READ, True, "D.1", "D.1:auditor-views-dissemination"),
    row("IACP-A.2-auditor-reads-reports", AUDITOR, None, R.REPORTS, A.READ, True, "A.2", "A.2:auditor-views-reports"),
    row("IACP-A.2-auditor-cannot-search-reads", AUDITOR, "stolen_vehicle", R.READS, A.SEARCH, False, "B.1.a", "deny-by-default", **SEARCH),
    row("IACP-A.2-auditor-cannot-view-images", AUDITOR, "stolen_vehicle", R.IMAGES, A.READ, False, "B.1.a", "deny-by-default"),
    row("IACP-A.2-auditor-cannot-manage-users", AUDITOR, None, R.USERS, A.MANAGE, False, "B.1.a", "deny-by-default"),
    row("IACP-B.1.c-officer-cannot-read-audit", OFFICER, None, R.AUDIT, A.READ, False, "B.1.a", "deny-by-default"),
    row("IACP-B.1.c-administrator-cannot-read-audit", ADMINISTRATOR, None, R.AUDIT, A.READ, False, "B.1.a", "deny-by-default"),
    # --- administrators manage governance records, but hold no LPR data access
    row("IACP-B.1.d-administrator-manages-users", ADMINISTRATOR, None, R.USERS, A.MANAGE, True, "B.1.d", "B.1.d:administrator-manages-users"),
    row("IACP-D.2-administrator-manages-agencies", ADMINISTRATOR, None, R.AGENCIES, A.MANAGE, True, "D.2", "D.2:administrator-manages-agencies"),
    row("IACP-D.2-administrator-manages-mous", ADMINISTRATOR, None, R.MOUS, A.MANAGE, True, "D.2", "D.2:administrator-manages-mous"),
    row("IACP-B.1.e-administrator-manages-cameras", ADMINISTRATOR, None, R.CAMERAS, A.MANAGE, True, "B.1.e", "B.1.e:administrator-manages-cameras"),
    row("IACP-C.7-administrator-approves-deployments", ADMINISTRATOR, None, R.DEPLOYMENTS, A.MANAGE, True, "C.7", "C.7:administrator-approves-deployments"),
    row("IACP-B.2-administrator-manages-equipment-checks", ADMINISTRATOR, None, R.EQUIPMENT_CHECKS, A.MANAGE, True, "B.2", "B.2:administrator-manages-equipment-checks"),
    row("IACP-A.1-2-administrator-manages-purposes", ADMINISTRATOR, None, R.PURPOSES, A.MANAGE, True, "A.1-2", "A.1-2:administrator-manages-purposes"),
    row("IACP-C.3-administrator-manages-hotlist-sources", ADMINISTRATOR, None, R.HOTLISTS, A.MANAGE, True, "C.3", "C.3:administrator-manages-hotlist-sources"),
    row("IACP-B.1.a-administrator-sets-retention", ADMINISTRATOR, None, R.RETENTION, A.MANAGE, True, "B.1.a", "B.1.a:administrator-sets-retention"),
    row("IACP-B.1.b-administrator-releases-legal-hold-with-reason", ADMINISTRATOR, None, R.LEGAL_HOLDS, A.DELETE, True, "B.1.b", "B.1.b:administrator-releases-legal-hold", reason=REASON),
    row("IACP-B.1.b-legal-hold-release-without-reason-denied", ADMINISTRATOR, None, R.LEGAL_HOLDS, A.DELETE, False, "B.1.b", "reason-required"),
    row("IACP-D.1-administrator-exports-dissemination-log", ADMINISTRATOR, None, R.DISSEMINATION, A.EXPORT, True, "D.1", "D.1:administrator-exports-dissemination"),
    row("IACP-B.1-administrator-cannot-search-reads", ADMINISTRATOR, "stolen_vehicle", R.READS, A.SEARCH, False, "B.1.a", "deny-by-default", **SEARCH),
    row("IACP-B.1-administrator-who-is-also-officer-searches", user("administrator", "officer"), "stolen_vehicle", R.READS, A.SEARCH, True, "C.8", "C.8:officer-historical-search", **SEARCH),
    row("IACP-B.1.d-officer-cannot-manage-users", OFFICER, None, R.USERS, A.MANAGE, False, "B.1.a", "deny-by-default"),
    row("IACP-D.2-officer-cannot-manage-mous", OFFICER, None, R.MOUS, A.MANAGE, False, "B.1.a", "deny-by-default"),
    # --- records clerks: case files, legal holds, releases
    row("IACP-B.1.b-records-places-legal-hold", RECORDS, None, R.LEGAL_HOLDS, A.CREATE, True, "B.1.b", "B.1.b:records-places-legal-hold", case_number=CASE, reason=REASON),
    row("IACP-B.1.b-legal-hold-needs-case-number", RECORDS, None, R.LEGAL_HOLDS, A.CREATE, False, "C.8", "case-number-required", reason=REASON),
    row("IACP-B.1.b-records-views-case-read", RECORDS, "wanted_person", R.READS, A.READ, True, "B.1.b", "B.1.b:records-views-case-read", case_number=CASE),
    row("IACP-B.1.b-records-views-read-without-case-denied", RECORDS, "wanted_person", R.READS, A.READ, False, "C.8", "case-number-required"),
    row("IACP-B.1.b-records-cannot-release-legal-hold", RECORDS, None, R.LEGAL_HOLDS, A.DELETE, False, "B.1.a", "deny-by-default", reason=REASON),
    row("IACP-C.5-records-cannot-work-alerts", RECORDS, None, R.ALERTS, A.UPDATE, False, "B.1.a", "deny-by-default"),
    row("IACP-B.1.f-officer-cannot-release-case-data", user("officer", approvals=(EXPORT_APPROVAL,)), "stolen_vehicle", R.READS, A.EXPORT, False, "B.1.a", "deny-by-default", case_number=CASE),
    # --- D.1, D.2: sharing outside the agency only under an MOU in force
    row("IACP-D.2-partner-search-within-mou-allowed", partner(), "stolen_vehicle", R.READS, A.SEARCH, True, "D.2", "D.2:partner-search-under-mou", **SEARCH),
    row("IACP-D.2-partner-hits-for-plate-allowed", partner(), "amber_alert", R.HITS, A.READ, True, "D.2", "D.2:partner-hits-for-plate-under-mou", lookback_days=7),
    row("IACP-D.2-partner-hits-need-a-bounded-time", partner(), "amber_alert", R.HITS, A.READ, False, "C.8", "time-range-required"),
    row("IACP-D.2-expired-mou-denied", partner(replace(MOU, expires_on=date(2025, 6, 1))), "stolen_vehicle", R.READS, A.SEARCH, False, "D.2", "mou-expired", **SEARCH),
    row("IACP-D.2-suspended-mou-denied", partner(replace(MOU, status=MouStatus.SUSPENDED)), "stolen_vehicle", R.READS, A.SEARCH, False, "D.2", "mou-not-in-force", **SEARCH),
    row("IACP-D.2-unsigned-mou-denied", partner(replace(MOU, signed_on=None)), "stolen_vehicle", R.READS, A.SEARCH, False, "D.2", "mou-not-in-force", **SEARCH),
    row("IACP-D.2-mou-excluding-images-denied", partner(), "stolen_vehicle", R.IMAGES, A.READ, False, "D.2", "mou-data-class"),
    row("IACP-D.2-mou-including-images-allowed", partner(replace(MOU, data_classes=frozenset(DataClass))), "stolen_vehicle", R.IMAGES, A.READ, True, "D.2", "D.2:partner-views-image-under-mou"),
    row("IACP-D.2-lookback-beyond-mou-denied", partner(), "stolen_vehicle", R.READS, A.SEARCH, False, "D.2", "mou-lookback", case_number=CASE, lookback_days=31),
    row("IACP-D.2-partner-approval-cannot-extend-mou-lookback", replace(partner(), approvals=(LOOKBACK_APPROVAL,)), "stolen_vehicle", R.READS, A.SEARCH, False, "D.2", "mou-lookback", case_number=CASE, lookback_days=60),
    row("IACP-D.2-purpose-outside-mou-denied", partner(), "wanted_person", R.READS, A.SEARCH, False, "D.2", "mou-purpose", **SEARCH),
    row("IACP-D.2-partner-vague-purpose-denied", partner(), "other", R.READS, A.SEARCH, False, "A.1-2", "vague-purpose", **SEARCH),
    row("IACP-D.2-partner-search-requires-case-number", partner(), "stolen_vehicle", R.READS, A.SEARCH, False, "C.8", "case-number-required", lookback_days=10),
    row("IACP-D.2-partner-search-requires-time-range", partner(), "stolen_vehicle", R.READS, A.SEARCH, False, "C.8", "time-range-required", case_number=CASE),
    row("IACP-D.2-partner-without-mou-denied", partner(None), "stolen_vehicle", R.READS, A.SEARCH, False, "D.2", "mou-missing", **SEARCH),
    row("IACP-D.2-mou-with-another-owner-does-not-apply", partner(), "stolen_vehicle", R.READS, A.SEARCH, False, "D.2", "mou-missing", target_agency="pd-c", **SEARCH),
    row("IACP-D.2-partner-cannot-read-audit", partner(), "stolen_vehicle", R.AUDIT, A.READ, False, "D.2", "mou-data-class"),
    row("IACP-D.2-partner-cannot-post-reads", partner(), "stolen_vehicle", R.READS, A.CREATE, False, "B.1.a", "deny-by-default"),
    row("IACP-D.2-user-of-other-agency-without-mou-denied", user("officer", agency=PARTNER_AGENCY), "stolen_vehicle", R.READS, A.SEARCH, False, "D.2", "mou-missing", **SEARCH),
    row("IACP-D.2-user-of-other-agency-under-mou-searches-as-partner", user("officer", agency=PARTNER_AGENCY, mou=MOU), "stolen_vehicle", R.READS, A.SEARCH, True, "D.2", "D.2:partner-search-under-mou", **SEARCH),
    row("IACP-D.2-officer-role-does-not-carry-to-other-agency", user("officer", agency=PARTNER_AGENCY, mou=MOU), None, R.ALERTS, A.READ, False, "D.2", "mou-data-class"),
    # --- deny by default
    row("IACP-B.1.a-unknown-resource-denied", OFFICER, "stolen_vehicle", "plates", A.READ, False, "B.1.a", "unknown-permission"),
    row("IACP-B.1.a-unknown-action-denied", OFFICER, "stolen_vehicle", R.READS, "purge", False, "B.1.a", "unknown-permission"),
    row("IACP-B.1.a-unlisted-pair-denied", ADMINISTRATOR, None, R.IMAGES, A.DELETE, False, "B.1.a", "unknown-permission"),
    row("IACP-B.1.a-unknown-role-denied", user("janitor"), "stolen_vehicle", R.READS, A.READ, False, "B.1.a", "deny-by-default"),
    row("IACP-B.1.a-user-without-roles-denied", user(), None, R.ALERTS, A.READ, False, "B.1.a", "deny-by-default"),
    row("IACP-B.1.a-partner-role-on-user-record-grants-nothing", user("partner"), "stolen_vehicle", R.READS, A.READ, False, "B.1.a", "deny-by-default"),
    row("IACP-B.1.a-camera-role-on-user-record-grants-nothing", user("camera"), None, R.READS, A.CREATE, False, "B.1.a", "deny-by-default"),
    row("IACP-B.1.a-service-without-grant-denied", Subject(kind=SubjectKind.SERVICE, id="hotlist-svc", agency=HOME, roles=frozenset({"officer"})), None, R.AUDIT, A.READ, False, "B.1.a", "deny-by-default"),
]  # fmt: skip


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    """The packaged model and baseline policy."""
    return PolicyEngine.from_files()


@pytest.mark.parametrize(
    ("subject", "purpose", "resource", "action", "expected", "clause", "rule", "context"), TABLE
)
def test_policy_table(
    engine: PolicyEngine,
    subject: Subject,
    purpose: str | None,
    resource: Resource | str,
    action: Action | str,
    expected: bool,
    clause: str,
    rule: str,
    context: dict[str, Any],
) -> None:
    context = {"target_agency": HOME, "now": NOW, **context}
    decision = engine.decide(subject, resource, action, AccessContext(purpose=purpose, **context))
    assert (decision.allowed, decision.clause, decision.rule) == (expected, clause, rule), (
        decision.reason
    )
    assert decision.reason


def test_table_ids_are_unique_and_name_a_clause() -> None:
    ids = [param.id for param in TABLE]
    assert len(ids) == len(set(ids))
    assert all(str(case_id).startswith("IACP-") for case_id in ids)
