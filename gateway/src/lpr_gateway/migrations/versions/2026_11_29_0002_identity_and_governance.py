"""identity and governance

Revision ID: gateway_0002
Revises: gateway_0001
Create Date: 2026-11-29 08:39:56.168262
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'gateway_0002'
down_revision: str | None = 'gateway_0001'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# The purposes in force on a fresh install (lpr_policy.DEFAULT_PURPOSES, copied so that
# the migration does not change when the library does).
DEFAULT_PURPOSES = (
    ("stolen_vehicle", "Stolen vehicle", False),
    ("stolen_plate", "Stolen license plate", False),
    ("amber_alert", "AMBER alert", False),
    ("missing_person", "Missing or endangered person", False),
    ("wanted_person", "Wanted person / warrant", False),
    ("investigation", "Investigation of a named offense", True),
)


def upgrade() -> None:
    op.create_table('agencies',
    sa.Column('id', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('contact', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agencies')),
    schema='gateway'
    )
    op.create_table('audit_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_outbox')),
    schema='gateway'
    )
    op.create_table('camera_signatures',
    sa.Column('signature', sa.String(length=64), nullable=False),
    sa.Column('camera_id', sa.Uuid(), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('signature', name=op.f('pk_camera_signatures')),
    schema='gateway'
    )
    op.create_table('deployments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('agency', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('location', sa.String(), nullable=True),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('vehicle', sa.String(), nullable=True),
    sa.Column('purpose', sa.String(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('special_detail', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('decided_by', sa.Uuid(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reads_count', sa.Integer(), nullable=False),
    sa.Column('hits_count', sa.Integer(), nullable=False),
    sa.Column('dispositions_count', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployments')),
    schema='gateway'
    )
    op.create_table('mous',
    sa.Column('partner_agency', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('data_classes', sa.ARRAY(sa.String()), server_default='{}', nullable=False),
    sa.Column('purposes', sa.ARRAY(sa.String()), server_default='{}', nullable=False),
    sa.Column('max_lookback_days', sa.Integer(), nullable=False),
    sa.Column('signed_on', sa.Date(), nullable=True),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('contact', sa.String(length=300), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_agency', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mous')),
    schema='gateway'
    )
    op.create_table('policy_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ptype', sa.String(length=1), nullable=False),
    sa.Column('v0', sa.String(), nullable=False),
    sa.Column('v1', sa.String(), nullable=False),
    sa.Column('v2', sa.String(), nullable=False),
    sa.Column('v3', sa.String(), nullable=True),
    sa.Column('v4', sa.String(), nullable=True),
    sa.Column('v5', sa.String(), nullable=True),
    sa.Column('created_by', sa.String(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_rules')),
    schema='gateway'
    )
    op.create_table('purposes',
    sa.Column('code', sa.String(length=60), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('requires_offense', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_purposes')),
    schema='gateway'
    )
    op.create_table('users',
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('agency', sa.String(length=20), nullable=False),
    sa.Column('roles', sa.ARRAY(sa.String()), server_default='{}', nullable=False),
    sa.Column('authorised_repairer', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('password_hash', sa.String(), nullable=True),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    schema='gateway'
    )
    op.create_index(op.f('ix_gateway_users_username'), 'users', ['username'], unique=True, schema='gateway')
    op.create_table('approvals',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('resource', sa.String(), nullable=False),
    sa.Column('action', sa.String(), nullable=False),
    sa.Column('reason', sa.String(), nullable=False),
    sa.Column('case_number', sa.String(), nullable=True),
    sa.Column('max_lookback_days', sa.Integer(), nullable=True),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('not_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('decided_by', sa.Uuid(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.String(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['gateway.users.id'], name=op.f('fk_approvals_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approvals')),
    schema='gateway'
    )
    op.create_index(op.f('ix_gateway_approvals_user_id'), 'approvals', ['user_id'], unique=False, schema='gateway')
    op.create_table('cameras',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('agency', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('serial_number', sa.String(), nullable=True),
    sa.Column('deployment_id', sa.Uuid(), nullable=True),
    sa.Column('in_service', sa.Boolean(), nullable=False),
    sa.Column('out_of_service_check_id', sa.Uuid(), nullable=True),
    sa.Column('require_signature', sa.Boolean(), nullable=False),
    sa.Column('key_hash', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['deployment_id'], ['gateway.deployments.id'], name=op.f('fk_cameras_deployment_id_deployments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cameras')),
    schema='gateway'
    )
    op.create_index(op.f('ix_gateway_cameras_key_hash'), 'cameras', ['key_hash'], unique=True, schema='gateway')
    op.create_table('partner_clients',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.String(length=100), nullable=False),
    sa.Column('secret_hash', sa.String(), nullable=False),
    sa.Column('agency', sa.String(length=20), nullable=False),
    sa.Column('mou_id', sa.Uuid(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['mou_id'], ['gateway.mous.id'], name=op.f('fk_partner_clients_mou_id_mous')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_clients')),
    schema='gateway'
    )
    op.create_index(op.f('ix_gateway_partner_clients_client_id'), 'partner_clients', ['client_id'], unique=True, schema='gateway')
    op.create_index(op.f('ix_gateway_partner_clients_mou_id'), 'partner_clients', ['mou_id'], unique=False, schema='gateway')
    op.create_table('training_records',
    sa.Column('course', sa.String(length=200), nullable=False),
    sa.Column('completed_on', sa.Date(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('recorded_by', sa.String(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['gateway.users.id'], name=op.f('fk_training_records_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_records')),
    schema='gateway'
    )
    op.create_index(op.f('ix_gateway_training_records_user_id'), 'training_records', ['user_id'], unique=False, schema='gateway')
    op.create_table('equipment_checks',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('camera_id', sa.Uuid(), nullable=False),
    sa.Column('checked_by', sa.Uuid(), nullable=False),
    sa.Column('checked_by_repairer', sa.Boolean(), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('functional', sa.Boolean(), nullable=False),
    sa.Column('alignment_ok', sa.Boolean(), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('notes', sa.String(), nullable=True),
    sa.ForeignKeyConstraint(['camera_id'], ['gateway.cameras.id'], name=op.f('fk_equipment_checks_camera_id_cameras')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_equipment_checks')),
    schema='gateway'
    )
    op.create_index(op.f('ix_gateway_equipment_checks_camera_id'), 'equipment_checks', ['camera_id'], unique=False, schema='gateway')


    purposes = sa.table(
        "purposes",
        sa.column("code", sa.String),
        sa.column("label", sa.String),
        sa.column("requires_offense", sa.Boolean),
        sa.column("active", sa.Boolean),
        schema="gateway",
    )
    op.bulk_insert(
        purposes,
        [
            {"code": code, "label": label, "requires_offense": offense, "active": True}
            for code, label, offense in DEFAULT_PURPOSES
        ],
    )
    # Every replica LISTENs on lpr_policy_changed; any write to the rows the policy
    # engine loads (whoever makes it) notifies them on commit.
    op.execute(
        """
        CREATE FUNCTION gateway.notify_policy_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('lpr_policy_changed', TG_TABLE_NAME);
            RETURN NULL;
        END $$
        """
    )
    for table in ("policy_rules", "purposes"):
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON gateway.{table} FOR EACH STATEMENT EXECUTE FUNCTION gateway.notify_policy_changed()"
        )

def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS gateway.notify_policy_changed() CASCADE")
    op.drop_index(op.f('ix_gateway_equipment_checks_camera_id'), table_name='equipment_checks', schema='gateway')
    op.drop_table('equipment_checks', schema='gateway')
    op.drop_index(op.f('ix_gateway_training_records_user_id'), table_name='training_records', schema='gateway')
    op.drop_table('training_records', schema='gateway')
    op.drop_index(op.f('ix_gateway_partner_clients_mou_id'), table_name='partner_clients', schema='gateway')
    op.drop_index(op.f('ix_gateway_partner_clients_client_id'), table_name='partner_clients', schema='gateway')
    op.drop_table('partner_clients', schema='gateway')
    op.drop_index(op.f('ix_gateway_cameras_key_hash'), table_name='cameras', schema='gateway')
    op.drop_table('cameras', schema='gateway')
    op.drop_index(op.f('ix_gateway_approvals_user_id'), table_name='approvals', schema='gateway')
    op.drop_table('approvals', schema='gateway')
    op.drop_index(op.f('ix_gateway_users_username'), table_name='users', schema='gateway')
    op.drop_table('users', schema='gateway')
    op.drop_table('purposes', schema='gateway')
    op.drop_table('policy_rules', schema='gateway')
    op.drop_table('mous', schema='gateway')
    op.drop_table('deployments', schema='gateway')
    op.drop_table('camera_signatures', schema='gateway')
    op.drop_table('audit_outbox', schema='gateway')
    op.drop_table('agencies', schema='gateway')
