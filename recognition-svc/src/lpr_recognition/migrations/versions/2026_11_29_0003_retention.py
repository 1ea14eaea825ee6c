"""Retention: legal holds, the runs of the purge job, blobs waiting to be deleted.

``legal_holds`` keep reads for a case until an administrator releases them with a reason
(IACP B.1.b); ``legal_hold_reads`` lists the reads each hold covers (by id, or found by
plate and time range). ``retention_runs`` records every purge and the receipts it sent.
``retention_blob_deletions`` is the durable queue of image blobs whose last read went:
files are removed after the purge commits, and a crash in between leaves them queued.
``ix_reads_blob_key`` lets the purge check that no remaining read shares a blob
(blobs are content-addressed, so two reads of the same image share one).

Revision ID: recognition_0003
Revises: recognition_0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "recognition_0003"
down_revision: str | None = "recognition_0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE recognition.legal_holds (
            id uuid NOT NULL,
            agency text NOT NULL,
            case_number text NOT NULL,
            reason text NOT NULL,
            placed_by text NOT NULL,
            placed_by_name text,
            placed_at timestamptz NOT NULL DEFAULT now(),
            plate text,
            range_start timestamptz,
            range_end timestamptz,
            released_at timestamptz,
            released_by text,
            release_reason text,
            CONSTRAINT pk_legal_holds PRIMARY KEY (id),
            CONSTRAINT ck_legal_holds_case_number CHECK (length(btrim(case_number)) > 0),
            CONSTRAINT ck_legal_holds_reason CHECK (length(btrim(reason)) > 0),
            CONSTRAINT ck_legal_holds_selector CHECK (
                (plate IS NULL AND range_start IS NULL AND range_end IS NULL)
                OR (plate IS NOT NULL AND range_start IS NOT NULL AND range_end IS NOT NULL
                    AND range_start < range_end)
            ),
            CONSTRAINT ck_legal_holds_release CHECK (
                (released_at IS NULL AND released_by IS NULL AND release_reason IS NULL)
                OR (released_at IS NOT NULL AND released_by IS NOT NULL
                    AND release_reason IS NOT NULL)
            )
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_legal_holds_active ON recognition.legal_holds (agency, placed_at) "
        "WHERE released_at IS NULL"
    )
    op.execute(
        """
        CREATE TABLE recognition.legal_hold_reads (
            hold_id uuid NOT NULL,
            read_id uuid NOT NULL,
            captured_at timestamptz NOT NULL,
            CONSTRAINT pk_legal_hold_reads PRIMARY KEY (hold_id, read_id),
            CONSTRAINT fk_legal_hold_reads_hold_id_legal_holds FOREIGN KEY (hold_id)
                REFERENCES recognition.legal_holds (id) ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX ix_legal_hold_reads_read_id ON recognition.legal_hold_reads (read_id)")
    op.execute(
        """
        CREATE TABLE recognition.retention_runs (
            id uuid NOT NULL,
            trigger text NOT NULL,
            triggered_by text,
            started_at timestamptz NOT NULL,
            finished_at timestamptz,
            outcome text NOT NULL,
            detail text,
            periods jsonb,
            receipts jsonb,
            first_seq bigint,
            last_seq bigint,
            CONSTRAINT pk_retention_runs PRIMARY KEY (id),
            CONSTRAINT ck_retention_runs_outcome
                CHECK (outcome IN ('completed', 'skipped', 'failed'))
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_retention_runs_started_at ON recognition.retention_runs (started_at)"
    )
    op.execute(
        """
        CREATE TABLE recognition.retention_blob_deletions (
            blob_key text NOT NULL,
            queued_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_retention_blob_deletions PRIMARY KEY (blob_key)
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_reads_blob_key ON recognition.reads (blob_key) WHERE blob_key IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS recognition.ix_reads_blob_key")
    op.execute("DROP TABLE IF EXISTS recognition.retention_blob_deletions")
    op.execute("DROP TABLE IF EXISTS recognition.retention_runs")
    op.execute("DROP TABLE IF EXISTS recognition.legal_hold_reads")
    op.execute("DROP TABLE IF EXISTS recognition.legal_holds")
