"""Users, their training records and partner clients (the gateway's identities)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID, uuid4

from pydantic import field_validator
from sqlmodel import Field, SQLModel

from lpr_common.values import StorableDatetime
from lpr_gateway.columns import not_null, text_array_column, timestamp_column, utcnow
from lpr_gateway.settings import SCHEMA


class UserRole(StrEnum):
    """Roles a user can hold (IACP: officers, administrators, auditors, records clerks)."""

    OFFICER = "officer"
    ADMINISTRATOR = "administrator"
    AUDITOR = "auditor"
    RECORDS = "records"


class UserBase(SQLModel):
    """Fields of a user that administrators set."""

    username: str = Field(min_length=2, max_length=100, index=True, unique=True)
    display_name: str | None = Field(default=None, max_length=200)
    agency: str = Field(min_length=3, max_length=20)
    roles: list[str] = Field(default_factory=list, sa_column=text_array_column())
    authorised_repairer: bool = Field(
        default=False, description="may return a camera to service after a failed check (B.3)"
    )
    active: bool = True


class UserCreate(SQLModel):
    """A new user; the password is hashed with argon2id and never stored in clear."""

    username: str = Field(min_length=2, max_length=100)
    display_name: str | None = Field(default=None, max_length=200)
    agency: str | None = Field(
        default=None, min_length=3, max_length=20, description="defaults to the platform's agency"
    )
    roles: list[UserRole] = Field(min_length=1)
    password: str | None = Field(
        default=None, min_length=12, description="omit for users of the identity provider"
    )
    authorised_repairer: bool = False
    training_expires_at: StorableDatetime | None = Field(
        default=None, description="records a training course valid until this time"
    )

    @field_validator("training_expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a timezone")
        return value


class UserUpdate(SQLModel):
    """Changes to a user; a field left out is kept, and only ``display_name`` may be null."""

    display_name: str | None = Field(default=None, max_length=200)
    roles: list[UserRole] | None = Field(default=None, min_length=1)
    active: bool | None = None
    authorised_repairer: bool | None = None
    password: str | None = Field(default=None, min_length=12)

    _not_null = field_validator("roles", "active", "authorised_repairer", "password")(not_null)


class User(UserBase, table=True):
    """A person who uses the platform."""

    __tablename__ = "users"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    password_hash: str | None = None
    failed_logins: int = 0
    locked_until: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=timestamp_column(server_now=True)
    )


class TrainingRecordBase(SQLModel):
    """A completed LPR training course (IACP B.1.d, C.2)."""

    course: str = Field(min_length=3, max_length=200)
    completed_on: date
    expires_at: datetime = Field(sa_column=timestamp_column())

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a timezone")
        return value


class TrainingRecordCreate(SQLModel):
    """A training course to record."""

    course: str = Field(min_length=3, max_length=200)
    completed_on: date
    expires_at: StorableDatetime

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a timezone")
        return value


class TrainingRecord(TrainingRecordBase, table=True):
    """A training record of a user."""

    __tablename__ = "training_records"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    user_id: UUID = Field(foreign_key=f"{SCHEMA}.users.id", index=True, ondelete="CASCADE")
    recorded_by: str | None = None
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=timestamp_column(server_now=True)
    )


class TrainingRecordPublic(SQLModel):
    """A training record as the API shows it."""

    id: UUID
    user_id: UUID
    course: str
    completed_on: date
    expires_at: datetime
    recorded_by: str | None


class UserPublic(SQLModel):
    """A user as the API shows it (never the password hash)."""

    id: UUID
    username: str
    display_name: str | None
    agency: str
    roles: list[str]
    authorised_repairer: bool
    active: bool
    locked_until: datetime | None
    training_expires_at: datetime | None = None
    training_current: bool = False


class PartnerClient(SQLModel, table=True):
    """OAuth2 client credentials of an external agency, one per MOU (IACP D.2)."""

    __tablename__ = "partner_clients"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    client_id: str = Field(unique=True, index=True, max_length=100)
    secret_hash: str
    agency: str = Field(max_length=20)
    mou_id: UUID = Field(foreign_key=f"{SCHEMA}.mous.id", index=True)
    active: bool = True
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=timestamp_column(server_now=True)
    )


class PartnerClientPublic(SQLModel):
    """A partner client as listed (no secret)."""

    id: UUID
    client_id: str
    agency: str
    mou_id: UUID
    active: bool
    created_at: datetime


class PartnerClientCreated(PartnerClientPublic):
    """A new partner client: the secret is shown this once and stored only hashed."""

    client_secret: str


class Token(SQLModel):
    """An OAuth2 access token answer."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
