"""Multi-frame fusion: tracks (one passing vehicle per camera) and their member plates.

``tracks`` holds the fused plate of the frames one camera sent of one vehicle;
``track_members`` the plate of each read on it, with that frame's own text and
per-character confidences (the votes). A read's plate is on at most one track (the
primary key). Members have no foreign key to ``reads``: reads live in day partitions that
retention drops whole, and the purge deletes the members of the reads it deletes (and a
track left without members) in its own transaction.

Revision ID: recognition_0005
Revises: recognition_0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "recognition_0005"
down_revision: str | None = "recognition_0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE recognition.tracks (
            id uuid NOT NULL,
            camera_id text NOT NULL,
            agency text NOT NULL,
            first_captured_at timestamptz NOT NULL,
            last_captured_at timestamptz NOT NULL,
            fused_text text NOT NULL,
            fused_confidence double precision NOT NULL,
            character_confidences double precision[] NOT NULL,
            member_count integer NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_tracks PRIMARY KEY (id),
            CONSTRAINT ck_tracks_span CHECK (first_captured_at <= last_captured_at)
        )
        """
    )
    # A frame looks for tracks of its camera that started within the window around it.
    op.execute(
        "CREATE INDEX ix_tracks_camera_id ON recognition.tracks (camera_id, first_captured_at)"
    )
    op.execute(
        """
        CREATE TABLE recognition.track_members (
            read_id uuid NOT NULL,
            plate_index integer NOT NULL,
            captured_at timestamptz NOT NULL,
            track_id uuid NOT NULL,
            text text NOT NULL,
            confidence double precision NOT NULL,
            character_confidences double precision[] NOT NULL,
            CONSTRAINT pk_track_members PRIMARY KEY (read_id, plate_index),
            CONSTRAINT fk_track_members_track_id_tracks FOREIGN KEY (track_id)
                REFERENCES recognition.tracks (id) ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX ix_track_members_track_id ON recognition.track_members (track_id)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS recognition.track_members")
    op.execute("DROP TABLE IF EXISTS recognition.tracks")
