"""api_refusal_window: refused POS API calls counted per client address and minute

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 11:50:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import portal.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_refusal_window',
    sa.Column('client_addr', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('window_start', portal.db.UTCDateTime(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('throttled', sa.Integer(), nullable=False),
    sa.Column('problems', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('first_call', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.PrimaryKeyConstraint('client_addr')
    )
    op.create_index(op.f('ix_api_refusal_window_window_start'), 'api_refusal_window', ['window_start'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_api_refusal_window_window_start'), table_name='api_refusal_window')
    op.drop_table('api_refusal_window')
