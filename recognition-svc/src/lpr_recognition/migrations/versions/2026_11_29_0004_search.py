"""Search indexes: OCR-equivalent plates, read locations, deployments.

- ``ix_plates_canonical_text``: the canonical OCR form of each plate (every character
  mapped to its class representative, ``lpr_common.plates.DEFAULT_OCR_CLASSES``) with the
  capture time, for OCR-equivalent search within time partitions. An expression index, so
  nothing has to compute it at insert time; the search repeats the same expression
  (``lpr_recognition.search.repository.canonical_sql``, checked against this file by a
  test). Changing the OCR classes needs a new revision with the new expression.
- Partial plates with a literal prefix (``7AB*``) use ``ix_plates_normalized_text`` of
  revision 0002: the search adds a range on the prefix next to its ``LIKE``.
- ``ix_reads_location``: GiST on the read's point, for area search (box or radius).
- ``ix_reads_deployment_id``: deployment filters and the unknown-deployment check.

Revision ID: recognition_0004
Revises: recognition_0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "recognition_0004"
down_revision: str | None = "recognition_0003"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

CANONICAL_EXPRESSION = "translate(normalized_text, 'ODQILTZSBG', '0001112586')"


def upgrade() -> None:
    op.execute(
        f"CREATE INDEX ix_plates_canonical_text ON recognition.plates "
        f"(({CANONICAL_EXPRESSION}), captured_at)"
    )
    op.execute(
        "CREATE INDEX ix_reads_location ON recognition.reads USING gist (point(longitude, latitude))"
    )
    op.execute(
        "CREATE INDEX ix_reads_deployment_id ON recognition.reads (deployment_id, captured_at)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS recognition.ix_reads_deployment_id")
    op.execute("DROP INDEX IF EXISTS recognition.ix_reads_location")
    op.execute("DROP INDEX IF EXISTS recognition.ix_plates_canonical_text")
