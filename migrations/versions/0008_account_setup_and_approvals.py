"""accounts: one-time set-up codes, reach changes awaiting a second approver, password-help requests

Revision ID: 0008
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import portal.db


revision = '0008'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('awaiting_approval', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table('account_setup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('used_at', portal.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code_hash')
    )
    with op.batch_alter_table('account_setup', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_setup_user_id'), ['user_id'], unique=False)
    op.create_table('account_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('old_role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('old_unit_id', sa.Integer(), nullable=True),
    sa.Column('new_role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('new_unit_id', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('requested_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('requested_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', portal.db.UTCDateTime(), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['old_unit_id'], ['org_unit.id'], ),
    sa.ForeignKeyConstraint(['new_unit_id'], ['org_unit.id'], ),
    sa.ForeignKeyConstraint(['requested_by_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('account_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_change_user_id'), ['user_id'], unique=False)
        batch_op.create_index('ix_account_change_status', ['status', 'id'], unique=False)
    op.create_table('password_help',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('client_addr', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('requested_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('resolved_at', portal.db.UTCDateTime(), nullable=True),
    sa.Column('resolved_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('password_help', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_help_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_password_help_client_addr'), ['client_addr'], unique=False)


def downgrade() -> None:
    op.drop_table('password_help')
    op.drop_table('account_change')
    op.drop_table('account_setup')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('awaiting_approval')
        batch_op.drop_column('must_change_password')
