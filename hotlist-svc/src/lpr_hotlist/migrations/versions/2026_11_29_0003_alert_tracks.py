"""Multi-frame fusion: one alert per vehicle pass (track) and hot-list entry.

recognition-svc sends each frame of a passing vehicle with the ``track_id`` of the pass;
``uq_alerts_track_id_entry_id`` lets only one alert exist per track and entry, and
``member_read_ids`` lists every read of the pass that matched it (``read_id`` stays the
read that raised it). ``fused_plate`` is the plate voted over the frames, as last sent.
Existing alerts list their own read.

Revision ID: hotlist_0003
Revises: hotlist_0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "hotlist_0003"
down_revision: str | None = "hotlist_0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE hotlist.alerts ADD COLUMN track_id uuid")
    op.execute("ALTER TABLE hotlist.alerts ADD COLUMN fused_plate varchar(10)")
    op.execute(
        "ALTER TABLE hotlist.alerts ADD COLUMN member_read_ids jsonb NOT NULL DEFAULT '[]'::jsonb"
    )
    op.execute("UPDATE hotlist.alerts SET member_read_ids = jsonb_build_array(read_id::text)")
    op.execute(
        "CREATE UNIQUE INDEX uq_alerts_track_id_entry_id ON hotlist.alerts (track_id, entry_id) "
        "WHERE track_id IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX ix_alerts_member_read_ids ON hotlist.alerts "
        "USING gin (member_read_ids jsonb_path_ops)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS hotlist.ix_alerts_member_read_ids")
    op.execute("DROP INDEX IF EXISTS hotlist.uq_alerts_track_id_entry_id")
    op.execute("ALTER TABLE hotlist.alerts DROP COLUMN member_read_ids")
    op.execute("ALTER TABLE hotlist.alerts DROP COLUMN fused_plate")
    op.execute("ALTER TABLE hotlist.alerts DROP COLUMN track_id")
