"""notify lpr_subjects_changed on writes to the rows a policy subject is built from

Revision ID: gateway_0003
Revises: gateway_0002
Create Date: 2026-11-29 09:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "gateway_0003"
down_revision: str | None = "gateway_0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# Each replica caches the policy subject of a caller for a few seconds; any write to
# these rows (whoever makes it: the API, lprctl, plain SQL) empties the caches on commit.
TABLES = ("users", "training_records", "approvals", "mous", "partner_clients")


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION gateway.notify_subjects_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('lpr_subjects_changed', TG_TABLE_NAME);
            RETURN NULL;
        END $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_subjects_changed AFTER INSERT OR UPDATE OR DELETE OR "
            f"TRUNCATE ON gateway.{table} FOR EACH STATEMENT "
            "EXECUTE FUNCTION gateway.notify_subjects_changed()"
        )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS gateway.notify_subjects_changed() CASCADE")
