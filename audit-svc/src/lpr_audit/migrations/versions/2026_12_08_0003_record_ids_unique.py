"""Each chain stores a record once: a unique index on the sender's id for it.

A sender that resends a batch audit-svc had committed (its answer was lost to a timeout
or a reset connection) must not have its records appended a second time. The access log
is unique on ``fields ->> 'event_id'``, the dissemination log on ``fields ->> 'record_id'``:
expression indexes over the hashed fields, so no column is added, the copied columns
that verification compares stay as they are, and every stored row is covered.

Rows stored twice before this revision cannot be removed (the log is append-only, and a
removed row would break the chain). The index leaves out exactly those extra copies,
every copy after the first of one id, by their ``seq``::

    WHERE seq > <highest extra copy> OR seq <> ALL ('{<extra copies>}')

so the first copy of each such id is indexed (a resend of it is still refused), every
row appended from now on is checked by the first comparison alone, and a database
without duplicates gets a plain unique index. The writer repeats the predicate in its
look-ups (it reads it from the catalog) so that they can use the index.

The table is locked against appends (SHARE) before the extra copies are listed, so none
can be stored between the listing and the index build; appends wait for the build.

Revision ID: audit_0003
Revises: audit_0002
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "audit_0003"
down_revision: str | None = "audit_0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# (table, field of ``fields`` that identifies a record, index name)
KEYS = (
    ("access_events", "event_id", "uq_access_events_event_id"),
    ("dissemination_records", "record_id", "uq_dissemination_records_record_id"),
)


def extra_copies(connection: sa.Connection, table: str, field: str) -> list[int]:
    """The seqs of every stored copy after the first of one id, in seq order."""
    rows = connection.execute(
        sa.text(
            "SELECT seq FROM ("
            "  SELECT seq, row_number() OVER (PARTITION BY fields ->> :field ORDER BY seq) AS n"
            f"  FROM audit.{table} WHERE fields ->> :field IS NOT NULL"
            ") AS copies WHERE n > 1 ORDER BY seq"
        ),
        {"field": field},
    )
    return [int(row[0]) for row in rows]


def create_unique_index(connection: sa.Connection, table: str, field: str, index: str) -> None:
    """Lock ``table`` against appends, list its extra copies, index the rest unique."""
    connection.execute(sa.text(f"LOCK TABLE audit.{table} IN SHARE MODE"))
    extra = extra_copies(connection, table, field)
    predicate = ""
    if extra:
        listed = ",".join(str(seq) for seq in extra)
        predicate = f" WHERE seq > {extra[-1]} OR seq <> ALL ('{{{listed}}}'::bigint[])"
    connection.execute(
        sa.text(
            f"CREATE UNIQUE INDEX {index} ON audit.{table} ((fields ->> '{field}')){predicate}"
        )
    )


def upgrade() -> None:
    for table, field, index in KEYS:
        create_unique_index(op.get_bind(), table, field, index)


def downgrade() -> None:
    for _, _, index in reversed(KEYS):
        op.execute(f"DROP INDEX IF EXISTS audit.{index}")
