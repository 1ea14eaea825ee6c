"""Retention receipts are sent once their purge has committed, and resent until recorded.

A completed run's row in ``retention_runs`` is written in the purge's own transaction with
its receipts and ``receipts_queued = true``: the receipts exist exactly when the purge
does. After the commit they go to audit-svc; once audit-svc has recorded them the row
gets its ``first_seq``/``last_seq`` and ``receipts_queued = false``. A run whose receipts
could not be delivered stays queued, and the flusher sends them later
(``ix_retention_runs_receipts_queued`` keeps that lookup small).

Runs recorded before this revision sent their receipts before committing: none is queued.

Revision ID: recognition_0006
Revises: recognition_0005
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "recognition_0006"
down_revision: str | None = "recognition_0005"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE recognition.retention_runs "
        "ADD COLUMN receipts_queued boolean NOT NULL DEFAULT false"
    )
    op.execute(
        "CREATE INDEX ix_retention_runs_receipts_queued "
        "ON recognition.retention_runs (started_at) WHERE receipts_queued"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS recognition.ix_retention_runs_receipts_queued")
    op.execute("ALTER TABLE recognition.retention_runs DROP COLUMN IF EXISTS receipts_queued")
