"""Create the audit schema.

Revision ID: audit_0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "audit_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.execute('CREATE SCHEMA IF NOT EXISTS "audit"')


def downgrade() -> None:
    op.execute('DROP SCHEMA IF EXISTS "audit" CASCADE')
