"""Reads, plates, idempotency keys and the outbox.

``reads`` and ``plates`` are partitioned by day on ``captured_at`` (partitions are made on
demand by ``lpr_recognition.reads.partitions``), so retention drops whole days. Their
primary keys carry the partition key; idempotency on the camera's own read id lives in the
small unpartitioned ``read_keys`` table.

Revision ID: recognition_0002
Revises: recognition_0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "recognition_0002"
down_revision: str | None = "recognition_0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE recognition.reads (
            id uuid NOT NULL,
            captured_at timestamptz NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            camera_id text NOT NULL,
            camera_read_id text NOT NULL,
            agency text NOT NULL,
            deployment_id text,
            unit_id text,
            latitude double precision NOT NULL,
            longitude double precision NOT NULL,
            heading double precision,
            speed double precision,
            lane integer,
            edge_plate text,
            edge_plate_confidence double precision,
            edge_plate_state text,
            image_sha256 text,
            blob_key text,
            image_content_type text,
            image_width integer,
            image_height integer,
            image_size integer,
            status text NOT NULL DEFAULT 'pending',
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            last_error text,
            preserved boolean NOT NULL DEFAULT false,
            recognized_at timestamptz,
            matched_at timestamptz,
            CONSTRAINT pk_reads PRIMARY KEY (id, captured_at),
            CONSTRAINT ck_reads_status CHECK (status IN ('pending', 'recognized', 'matched')),
            CONSTRAINT ck_reads_latitude CHECK (latitude BETWEEN -90 AND 90),
            CONSTRAINT ck_reads_longitude CHECK (longitude BETWEEN -180 AND 180),
            CONSTRAINT ck_reads_heading CHECK (heading IS NULL OR heading BETWEEN 0 AND 360),
            CONSTRAINT ck_reads_speed CHECK (speed IS NULL OR speed >= 0)
        ) PARTITION BY RANGE (captured_at)
        """
    )
    op.execute(
        "CREATE INDEX ix_reads_pending ON recognition.reads (next_attempt_at) "
        "WHERE status = 'pending'"
    )
    op.execute("CREATE INDEX ix_reads_camera_id ON recognition.reads (camera_id, captured_at)")
    op.execute(
        """
        CREATE TABLE recognition.plates (
            read_id uuid NOT NULL,
            captured_at timestamptz NOT NULL,
            plate_index integer NOT NULL,
            text text NOT NULL,
            normalized_text text NOT NULL,
            confidence double precision NOT NULL,
            detection_confidence double precision,
            box integer[],
            region text,
            state text,
            source text NOT NULL,
            candidates jsonb NOT NULL DEFAULT '[]'::jsonb,
            CONSTRAINT pk_plates PRIMARY KEY (read_id, captured_at, plate_index),
            CONSTRAINT fk_plates_read_id_reads FOREIGN KEY (read_id, captured_at)
                REFERENCES recognition.reads (id, captured_at) ON DELETE CASCADE,
            CONSTRAINT ck_plates_source CHECK (source IN ('recognition', 'edge'))
        ) PARTITION BY RANGE (captured_at)
        """
    )
    op.execute(
        "CREATE INDEX ix_plates_normalized_text ON recognition.plates "
        "(normalized_text, captured_at)"
    )
    op.execute(
        """
        CREATE TABLE recognition.read_keys (
            camera_id text NOT NULL,
            camera_read_id text NOT NULL,
            read_id uuid NOT NULL,
            captured_at timestamptz NOT NULL,
            content_sha256 text NOT NULL,
            content jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_read_keys PRIMARY KEY (camera_id, camera_read_id)
        )
        """
    )
    op.execute("CREATE INDEX ix_read_keys_captured_at ON recognition.read_keys (captured_at)")
    op.execute("CREATE UNIQUE INDEX ix_read_keys_read_id ON recognition.read_keys (read_id)")
    op.execute(
        """
        CREATE TABLE recognition.outbox (
            id bigint GENERATED ALWAYS AS IDENTITY,
            kind text NOT NULL,
            read_id uuid,
            captured_at timestamptz,
            payload jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            last_error text,
            CONSTRAINT pk_outbox PRIMARY KEY (id),
            CONSTRAINT ck_outbox_kind CHECK (kind IN ('match', 'audit'))
        )
        """
    )
    op.execute("CREATE INDEX ix_outbox_kind ON recognition.outbox (kind, next_attempt_at)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS recognition.outbox")
    op.execute("DROP TABLE IF EXISTS recognition.read_keys")
    op.execute("DROP TABLE IF EXISTS recognition.plates")
    op.execute("DROP TABLE IF EXISTS recognition.reads")
