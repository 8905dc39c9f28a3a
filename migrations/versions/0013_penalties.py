"""penalties for leaking or reselling customer files (seed 000)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 12:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import portal.db


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('penalty',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('person_unit_path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('measures', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('evidence_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('evidence_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', portal.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('penalty', schema=None) as batch_op:
        batch_op.create_index('ix_penalty_person', ['person_id', 'id'], unique=False)
        batch_op.create_index('ix_penalty_person_unit', ['person_unit_path', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('penalty', schema=None) as batch_op:
        batch_op.drop_index('ix_penalty_person_unit')
        batch_op.drop_index('ix_penalty_person')
    op.drop_table('penalty')
