"""Access log and dissemination log chains, checkpoints, retention settings; append-only.

Every table is append-only twice over:

- the role ``lpr_audit_writer`` (NOLOGIN; the service switches to it with SET ROLE on
  every connection) holds INSERT and SELECT only: UPDATE, DELETE and TRUNCATE are revoked;
- a trigger refuses UPDATE, DELETE and TRUNCATE for everyone, owners included. A superuser
  can still disable it; that is what the hash chain and the signed checkpoints catch.

Revision ID: audit_0002
Revises: audit_0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "audit_0002"
down_revision: str | None = "audit_0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

TABLES = (
    "access_events",
    "dissemination_records",
    "checkpoints",
    "retention_setting_changes",
)
ROLE = "lpr_audit_writer"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE audit.access_events (
            seq bigint NOT NULL,
            prev_hash text NOT NULL,
            hash text NOT NULL,
            fields jsonb NOT NULL,
            occurred_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL,
            event_type text NOT NULL,
            outcome text NOT NULL,
            subject_id text,
            agency text,
            purpose text,
            case_number text,
            plate text,
            resource text,
            action text,
            CONSTRAINT pk_access_events PRIMARY KEY (seq),
            CONSTRAINT ck_access_events_seq_positive CHECK (seq > 0)
        )
        """
    )
    op.execute("CREATE INDEX ix_access_events_occurred_at ON audit.access_events (occurred_at)")
    op.execute("CREATE INDEX ix_access_events_recorded_at ON audit.access_events (recorded_at)")
    op.execute(
        "CREATE INDEX ix_access_events_event_type ON audit.access_events (event_type, occurred_at)"
    )
    op.execute(
        "CREATE INDEX ix_access_events_subject_id ON audit.access_events (subject_id, occurred_at)"
    )
    op.execute("CREATE INDEX ix_access_events_agency ON audit.access_events (agency)")
    op.execute(
        "CREATE INDEX ix_access_events_case_number ON audit.access_events (case_number) "
        "WHERE case_number IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX ix_access_events_plate ON audit.access_events (plate) WHERE plate IS NOT NULL"
    )
    op.execute(
        """
        CREATE TABLE audit.dissemination_records (
            seq bigint NOT NULL,
            prev_hash text NOT NULL,
            hash text NOT NULL,
            fields jsonb NOT NULL,
            occurred_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL,
            recipient_agency text NOT NULL,
            released_by text NOT NULL,
            released_by_agency text NOT NULL,
            mou_id text,
            purpose text,
            case_number text,
            data_class text NOT NULL,
            record_count integer NOT NULL,
            CONSTRAINT pk_dissemination_records PRIMARY KEY (seq),
            CONSTRAINT ck_dissemination_records_seq_positive CHECK (seq > 0)
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_dissemination_records_occurred_at "
        "ON audit.dissemination_records (occurred_at)"
    )
    op.execute(
        "CREATE INDEX ix_dissemination_records_recorded_at "
        "ON audit.dissemination_records (recorded_at)"
    )
    op.execute(
        "CREATE INDEX ix_dissemination_records_recipient_agency "
        "ON audit.dissemination_records (recipient_agency)"
    )
    op.execute(
        """
        CREATE TABLE audit.checkpoints (
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            chain text NOT NULL,
            seq bigint NOT NULL,
            hash text NOT NULL,
            created_at timestamptz NOT NULL,
            signature text NOT NULL,
            key_id text NOT NULL,
            CONSTRAINT pk_checkpoints PRIMARY KEY (id),
            CONSTRAINT ck_checkpoints_chain CHECK (chain IN ('access', 'dissemination'))
        )
        """
    )
    op.execute("CREATE INDEX ix_checkpoints_chain_seq ON audit.checkpoints (chain, seq)")
    op.execute(
        """
        CREATE TABLE audit.retention_setting_changes (
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            retention_class text NOT NULL,
            period_minutes bigint,
            changed_by text NOT NULL,
            reason text NOT NULL,
            changed_at timestamptz NOT NULL,
            CONSTRAINT pk_retention_setting_changes PRIMARY KEY (id)
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_retention_setting_changes_changed_at "
        "ON audit.retention_setting_changes (retention_class, changed_at)"
    )

    # Defence in depth: even the owner cannot change or remove a row without first
    # disabling this trigger, which only a superuser or the owner can do.
    op.execute(
        """
        CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit records are append-only: % on %.% refused',
                TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON audit.{table} "
            "FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON audit.{table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()"
        )

    # Roles are cluster-wide: several databases (test runs) may create it concurrently.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
                CREATE ROLE {ROLE} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END
        $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA audit TO {ROLE}")
    for table in TABLES:
        op.execute(f"REVOKE ALL ON audit.{table} FROM PUBLIC")
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit.{table} FROM {ROLE}")
        op.execute(f"GRANT SELECT, INSERT ON audit.{table} TO {ROLE}")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS audit.{table}")
    op.execute("DROP FUNCTION IF EXISTS audit.refuse_change()")
    # The role is cluster-wide and may hold grants in other databases: it stays.
    op.execute(f"REVOKE ALL ON SCHEMA audit FROM {ROLE}")
