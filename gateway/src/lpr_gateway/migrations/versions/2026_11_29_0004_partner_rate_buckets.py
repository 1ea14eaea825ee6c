"""partner rate-limit buckets shared by every gateway replica

Revision ID: gateway_0004
Revises: gateway_0003
Create Date: 2026-11-29 11:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "gateway_0004"
down_revision: str | None = "gateway_0003"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # One token bucket per partner client; every replica takes its tokens here, so a
    # partner's limit holds however many gateways run. Unlogged: buckets refill within a
    # minute, and a crash that empties the table only hands out one fresh burst.
    op.execute(
        """
        CREATE UNLOGGED TABLE gateway.partner_rate_buckets (
            client_id text PRIMARY KEY,
            tokens double precision NOT NULL,
            updated_at timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS gateway.partner_rate_buckets")
