"""Tables of multi-frame fusion (schema ``recognition``; DDL in migration recognition_0005)."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ARRAY, Column, DateTime, Float
from sqlmodel import Field, SQLModel

from lpr_recognition.settings import SCHEMA


def _confidences() -> Any:
    return Field(default_factory=list, sa_column=Column(ARRAY(Float), nullable=False))


class Track(SQLModel, table=True):
    """One passing vehicle as one camera saw it: its frames' plates fused into one."""

    __tablename__ = "tracks"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(primary_key=True)
    camera_id: str
    agency: str
    first_captured_at: datetime = Field(sa_type=DateTime(timezone=True))
    last_captured_at: datetime = Field(sa_type=DateTime(timezone=True))
    fused_text: str
    fused_confidence: float
    character_confidences: list[float] = _confidences()
    member_count: int = 0
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class TrackMember(SQLModel, table=True):
    """One plate of one read on a track, with what that frame read on its own.

    There is no foreign key to ``reads``: reads live in day partitions that retention
    drops whole, and it deletes the members of purged reads in the same transaction.
    """

    __tablename__ = "track_members"
    __table_args__ = {"schema": SCHEMA}

    read_id: UUID = Field(primary_key=True)
    plate_index: int = Field(primary_key=True)
    captured_at: datetime = Field(sa_type=DateTime(timezone=True))
    track_id: UUID = Field(foreign_key=f"{SCHEMA}.tracks.id")
    text: str
    confidence: float
    character_confidences: list[float] = _confidences()
