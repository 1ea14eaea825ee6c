"""deployment results counted in bigint

Revision ID: gateway_0005
Revises: gateway_0004
Create Date: 2026-12-08 00:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "gateway_0005"
down_revision: str | None = "gateway_0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_COUNTS = ("reads_count", "hits_count", "dispositions_count")


def upgrade() -> None:
    # A deployment's results grow for as long as it runs: an ``integer`` count overflowed
    # (a 500 on every report) after about two billion reads. One statement, one rewrite.
    op.execute(
        "ALTER TABLE gateway.deployments "
        + ", ".join(f"ALTER COLUMN {name} TYPE bigint" for name in _COUNTS)
    )


def downgrade() -> None:
    # Fails (and changes nothing) if a count no longer fits an ``integer``.
    op.execute(
        "ALTER TABLE gateway.deployments "
        + ", ".join(f"ALTER COLUMN {name} TYPE integer" for name in _COUNTS)
    )
