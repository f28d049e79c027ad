"""window runs: each instance's OS family and whether the run held it (issue 14: "held: no early
instance of this OS" in the compliance view)

Revision ID: 0003_window_held_os
Revises: 0002_enrollment_evidence
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0003_window_held_os'
down_revision = '0002_enrollment_evidence'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('window_runs') as batch:
        batch.add_column(sa.Column('os', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('held', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('window_runs') as batch:
        batch.drop_column('held')
        batch.drop_column('os')
