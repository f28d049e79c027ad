"""reconcile events: what each reconcile run did, with its evidence (issue 11)

Revision ID: 0004_reconcile_events
Revises: 0003_window_held_os
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0004_reconcile_events'
down_revision = '0003_window_held_os'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reconcile_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('workflow_id', sa.String(length=512), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('cloud_account', sa.String(length=255), nullable=False),
    sa.Column('customer', sa.String(length=255), nullable=True),
    sa.Column('systems_account', sa.String(length=32), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('instance_key', sa.String(length=255), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=False),
    sa.Column('managed_instance_id', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=False),
    sa.Column('tags', sa.Text(), nullable=False),
    sa.Column('applied', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconcile_events')),
    sa.UniqueConstraint('workflow_id', 'run_id', 'position', name=op.f('uq_reconcile_events_workflow_id_run_id_position'))
    )
    with op.batch_alter_table('reconcile_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconcile_events_instance_key'), ['instance_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconcile_events_managed_instance_id'), ['managed_instance_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reconcile_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconcile_events_managed_instance_id'))
        batch_op.drop_index(batch_op.f('ix_reconcile_events_instance_key'))

    op.drop_table('reconcile_events')
