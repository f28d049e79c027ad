"""estate store: instances, patches, CVEs, software, baselines, window runs, aggregates, tokens

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=255), nullable=False),
    sa.Column('customer', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('digest', name=op.f('uq_api_tokens_digest'))
    )
    op.create_table('baselines',
    sa.Column('systems_account', sa.String(length=32), nullable=False),
    sa.Column('baseline_id', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('operating_system', sa.String(length=64), nullable=True),
    sa.Column('approval_rule', sa.Text(), nullable=True),
    sa.Column('patch_group', sa.String(length=64), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('systems_account', 'baseline_id', name=op.f('pk_baselines'))
    )
    op.create_table('compliance_aggregates',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('customer', sa.String(length=255), nullable=True),
    sa.Column('provider', sa.String(length=16), nullable=True),
    sa.Column('patch_group', sa.String(length=64), nullable=True),
    sa.Column('instances', sa.Integer(), nullable=False),
    sa.Column('compliant', sa.Integer(), nullable=False),
    sa.Column('non_compliant', sa.Integer(), nullable=False),
    sa.Column('unknown', sa.Integer(), nullable=False),
    sa.Column('missing', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('critical_missing', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compliance_aggregates'))
    )
    with op.batch_alter_table('compliance_aggregates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compliance_aggregates_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_aggregates_customer_at'), ['customer', 'at'], unique=False)

    op.create_table('instances',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('managed_instance_id', sa.String(length=64), nullable=False),
    sa.Column('systems_account', sa.String(length=32), nullable=False),
    sa.Column('instance_key', sa.String(length=255), nullable=True),
    sa.Column('provider', sa.String(length=16), nullable=True),
    sa.Column('customer', sa.String(length=255), nullable=True),
    sa.Column('cloud_account', sa.String(length=255), nullable=True),
    sa.Column('patch_group', sa.String(length=64), nullable=True),
    sa.Column('os_name', sa.String(length=128), nullable=True),
    sa.Column('os_version', sa.String(length=64), nullable=True),
    sa.Column('platform_type', sa.String(length=32), nullable=True),
    sa.Column('agent_version', sa.String(length=64), nullable=True),
    sa.Column('ping_status', sa.String(length=32), nullable=True),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=True),
    sa.Column('workflow_id', sa.String(length=512), nullable=True),
    sa.Column('workflow_run_id', sa.String(length=64), nullable=True),
    sa.Column('evidence_provider', sa.String(length=16), nullable=True),
    sa.Column('evidence_key_id', sa.String(length=255), nullable=True),
    sa.Column('evidence_digest', sa.String(length=128), nullable=True),
    sa.Column('evidence_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('installed', sa.Integer(), nullable=False),
    sa.Column('installed_other', sa.Integer(), nullable=False),
    sa.Column('installed_pending_reboot', sa.Integer(), nullable=False),
    sa.Column('installed_rejected', sa.Integer(), nullable=False),
    sa.Column('missing', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('not_applicable', sa.Integer(), nullable=False),
    sa.Column('critical_missing', sa.Integer(), nullable=False),
    sa.Column('baseline_id', sa.String(length=128), nullable=True),
    sa.Column('operation', sa.String(length=16), nullable=True),
    sa.Column('operation_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('operation_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('compliance', sa.String(length=16), nullable=False),
    sa.Column('compliance_rank', sa.SmallInteger(), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('departed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instances')),
    sa.UniqueConstraint('managed_instance_id', name=op.f('uq_instances_managed_instance_id'))
    )
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instances_compliance_rank_managed_instance_id'), ['compliance_rank', 'managed_instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_instances_customer_compliance_rank_managed_instance_id'), ['customer', 'compliance_rank', 'managed_instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_instances_customer_managed_instance_id'), ['customer', 'managed_instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_instances_customer_provider_patch_group'), ['customer', 'provider', 'patch_group'], unique=False)
        batch_op.create_index(batch_op.f('ix_instances_systems_account_departed_at'), ['systems_account', 'departed_at'], unique=False)

    op.create_table('window_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('window_workflow_id', sa.String(length=512), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('systems_account', sa.String(length=32), nullable=False),
    sa.Column('patch_group', sa.String(length=64), nullable=False),
    sa.Column('managed_instance_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=64), nullable=True),
    sa.Column('installed', sa.Integer(), nullable=False),
    sa.Column('missing', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('ended', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_window_runs')),
    sa.UniqueConstraint('run_id', 'managed_instance_id', name=op.f('uq_window_runs_run_id_managed_instance_id'))
    )
    with op.batch_alter_table('window_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_window_runs_managed_instance_id_ended'), ['managed_instance_id', 'ended'], unique=False)

    op.create_table('patches',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('kb_id', sa.String(length=255), nullable=False),
    sa.Column('classification', sa.String(length=64), nullable=True),
    sa.Column('severity', sa.String(length=32), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('installed_time', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], name=op.f('fk_patches_instance_id_instances'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patches'))
    )
    with op.batch_alter_table('patches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patches_instance_id'), ['instance_id'], unique=False)

    op.create_table('software',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('version', sa.String(length=128), nullable=True),
    sa.Column('publisher', sa.String(length=255), nullable=True),
    sa.Column('architecture', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], name=op.f('fk_software_instance_id_instances'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_software'))
    )
    with op.batch_alter_table('software', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_software_instance_id'), ['instance_id'], unique=False)

    op.create_table('patch_cves',
    sa.Column('patch_id', sa.Integer(), nullable=False),
    sa.Column('cve_id', sa.String(length=32), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], name=op.f('fk_patch_cves_instance_id_instances'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['patch_id'], ['patches.id'], name=op.f('fk_patch_cves_patch_id_patches'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('patch_id', 'cve_id', name=op.f('pk_patch_cves'))
    )
    with op.batch_alter_table('patch_cves', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patch_cves_cve_id_state_instance_id'), ['cve_id', 'state', 'instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_patch_cves_instance_id'), ['instance_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('patch_cves', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patch_cves_instance_id'))
        batch_op.drop_index(batch_op.f('ix_patch_cves_cve_id_state_instance_id'))

    op.drop_table('patch_cves')
    with op.batch_alter_table('software', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_software_instance_id'))

    op.drop_table('software')
    with op.batch_alter_table('patches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patches_instance_id'))

    op.drop_table('patches')
    with op.batch_alter_table('window_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_window_runs_managed_instance_id_ended'))

    op.drop_table('window_runs')
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instances_systems_account_departed_at'))
        batch_op.drop_index(batch_op.f('ix_instances_customer_provider_patch_group'))
        batch_op.drop_index(batch_op.f('ix_instances_customer_managed_instance_id'))
        batch_op.drop_index(batch_op.f('ix_instances_customer_compliance_rank_managed_instance_id'))
        batch_op.drop_index(batch_op.f('ix_instances_compliance_rank_managed_instance_id'))

    op.drop_table('instances')
    with op.batch_alter_table('compliance_aggregates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compliance_aggregates_customer_at'))
        batch_op.drop_index(batch_op.f('ix_compliance_aggregates_at'))

    op.drop_table('compliance_aggregates')
    op.drop_table('baselines')
    op.drop_table('api_tokens')
