"""Agencies, MOUs, approvals, purposes and runtime policy rows."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID, uuid4

from pydantic import field_validator
from sqlmodel import Field, SQLModel

from lpr_common.values import StorableDatetime
from lpr_gateway.columns import not_null, text_array_column, timestamp_column, utcnow
from lpr_gateway.settings import SCHEMA
from lpr_policy import DataClass, MouStatus


class AgencyBase(SQLModel):
    """An agency: this platform's own, or a partner under an MOU."""

    id: str = Field(
        primary_key=True, min_length=3, max_length=20, description="ORI, e.g. CA0010000"
    )
    name: str = Field(min_length=2, max_length=200)
    contact: str | None = Field(default=None, max_length=300)


class AgencyCreate(AgencyBase):
    """A new agency."""


class AgencyUpdate(SQLModel):
    """Changes to an agency; a null ``contact`` clears it."""

    name: str | None = Field(default=None, min_length=2, max_length=200)
    contact: str | None = Field(default=None, max_length=300)

    _not_null = field_validator("name")(not_null)


class Agency(AgencyBase, table=True):
    """An agency record."""

    __tablename__ = "agencies"
    __table_args__ = {"schema": SCHEMA}

    created_at: datetime = Field(
        default_factory=utcnow, sa_column=timestamp_column(server_now=True)
    )


class AgencyPublic(AgencyBase):
    """An agency as the API shows it."""

    created_at: datetime


class MouBase(SQLModel):
    """A memorandum of understanding with a partner agency (IACP D.2)."""

    partner_agency: str = Field(min_length=3, max_length=20)
    status: str = Field(default=MouStatus.DRAFT.value, max_length=20)
    data_classes: list[str] = Field(default_factory=list, sa_column=text_array_column())
    purposes: list[str] = Field(default_factory=list, sa_column=text_array_column())
    max_lookback_days: int = Field(ge=0, le=3650)
    signed_on: date | None = None
    expires_on: date | None = None
    contact: str | None = Field(default=None, max_length=300)


class MouCreate(SQLModel):
    """A new MOU."""

    partner_agency: str = Field(min_length=3, max_length=20)
    status: MouStatus = MouStatus.DRAFT
    data_classes: list[DataClass] = Field(min_length=1)
    purposes: list[str] = Field(min_length=1)
    max_lookback_days: int = Field(ge=0, le=3650)
    signed_on: date | None = None
    expires_on: date | None = None
    contact: str | None = Field(default=None, max_length=300)


class MouUpdate(SQLModel):
    """Changes to an MOU (status, scope, dates); only the dates and contact may be null."""

    status: MouStatus | None = None
    data_classes: list[DataClass] | None = Field(default=None, min_length=1)
    purposes: list[str] | None = Field(default=None, min_length=1)
    max_lookback_days: int | None = Field(default=None, ge=0, le=3650)
    signed_on: date | None = None
    expires_on: date | None = None
    contact: str | None = Field(default=None, max_length=300)

    _not_null = field_validator("status", "data_classes", "purposes", "max_lookback_days")(not_null)


class MouRecord(MouBase, table=True):
    """An MOU record; the owner is always this platform's agency."""

    __tablename__ = "mous"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    owner_agency: str = Field(max_length=20)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=timestamp_column(server_now=True)
    )


class MouPublic(SQLModel):
    """An MOU as the API shows it."""

    id: UUID
    owner_agency: str
    partner_agency: str
    status: MouStatus
    data_classes: list[str]
    purposes: list[str]
    max_lookback_days: int
    signed_on: date | None
    expires_on: date | None
    contact: str | None
    created_at: datetime


class ApprovalCreate(SQLModel):
    """A data-access request by a user (IACP B.1.f)."""

    resource: str = Field(description="resource asked for, e.g. reads")
    action: str = Field(description="action asked for, e.g. search or export")
    reason: str = Field(min_length=10, max_length=2000)
    case_number: str | None = None
    max_lookback_days: int | None = Field(default=None, ge=1, le=3650)
    not_before: StorableDatetime
    not_after: StorableDatetime

    @field_validator("not_before", "not_after")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a timezone")
        return value


class ApprovalDecision(SQLModel):
    """An administrator's decision on a request."""

    approve: bool
    note: str | None = Field(default=None, max_length=2000)


class ApprovalRecord(SQLModel, table=True):
    """A data-access request and its decision; approved ones feed the policy."""

    __tablename__ = "approvals"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    user_id: UUID = Field(foreign_key=f"{SCHEMA}.users.id", index=True)
    resource: str
    action: str
    reason: str
    case_number: str | None = None
    max_lookback_days: int | None = None
    not_before: datetime = Field(sa_column=timestamp_column())
    not_after: datetime = Field(sa_column=timestamp_column())
    status: str = "pending"
    decided_by: UUID | None = None
    decided_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    note: str | None = None
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=timestamp_column(server_now=True)
    )


class ApprovalPublic(SQLModel):
    """An approval as the API shows it."""

    id: UUID
    user_id: UUID
    resource: str
    action: str
    reason: str
    case_number: str | None
    max_lookback_days: int | None
    not_before: datetime
    not_after: datetime
    status: str
    decided_by: UUID | None
    decided_at: datetime | None
    note: str | None


class PurposeBase(SQLModel):
    """An administered public-safety purpose (IACP A.1-2)."""

    code: str = Field(primary_key=True, min_length=3, max_length=60, regex=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=3, max_length=200)
    requires_offense: bool = False


class PurposeCreate(PurposeBase):
    """A new purpose; vague ones are refused."""


class PurposeRecord(PurposeBase, table=True):
    """A purpose record."""

    __tablename__ = "purposes"
    __table_args__ = {"schema": SCHEMA}

    active: bool = True
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=timestamp_column(server_now=True)
    )


class PurposePublic(PurposeBase):
    """A purpose as the API shows it."""

    active: bool


class PolicyRuleCreate(SQLModel):
    """A runtime policy row (``p`` grant or ``g`` role assignment), see lpr_policy.adapter."""

    ptype: str = Field(regex=r"^[pg]$")
    v0: str
    v1: str
    v2: str
    v3: str | None = None
    v4: str | None = None
    v5: str | None = None


class PolicyRule(SQLModel, table=True):
    """A runtime policy row (the usual ``casbin_rule`` table)."""

    __tablename__ = "policy_rules"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    ptype: str = Field(max_length=1)
    v0: str
    v1: str
    v2: str
    v3: str | None = None
    v4: str | None = None
    v5: str | None = None
    created_by: str | None = None
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=timestamp_column(server_now=True)
    )


class PolicyRulePublic(SQLModel):
    """A runtime policy row as the API shows it."""

    id: int
    ptype: str
    v0: str
    v1: str
    v2: str
    v3: str | None
    v4: str | None
    v5: str | None
    created_by: str | None
