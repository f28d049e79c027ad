"""enrollment evidence: how each enrolled VM proved its identity (issue 10, the audit chain)

Revision ID: 0002_enrollment_evidence
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0002_enrollment_evidence'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('enrollment_evidence',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('workflow_id', sa.String(length=512), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('instance_key', sa.String(length=255), nullable=False),
    sa.Column('cloud_account', sa.String(length=255), nullable=True),
    sa.Column('customer', sa.String(length=255), nullable=True),
    sa.Column('systems_account', sa.String(length=32), nullable=True),
    sa.Column('managed_instance_id', sa.String(length=64), nullable=True),
    sa.Column('patch_group', sa.String(length=64), nullable=True),
    sa.Column('key_kind', sa.String(length=32), nullable=True),
    sa.Column('key_id', sa.String(length=255), nullable=True),
    sa.Column('identity_sha256', sa.String(length=64), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrollment_evidence')),
    sa.UniqueConstraint('workflow_id', 'run_id', name=op.f('uq_enrollment_evidence_workflow_id_run_id'))
    )
    with op.batch_alter_table('enrollment_evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrollment_evidence_managed_instance_id'), ['managed_instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_enrollment_evidence_provider_instance_key_verified_at'), ['provider', 'instance_key', 'verified_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('enrollment_evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enrollment_evidence_provider_instance_key_verified_at'))
        batch_op.drop_index(batch_op.f('ix_enrollment_evidence_managed_instance_id'))

    op.drop_table('enrollment_evidence')
