"""programme rules: applications (referrer, a leader's exception, the joining fee as paid); spend cleared on restore

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 11:45:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import portal.db


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.add_column(sa.Column('spend_counted_from', sa.Date(), nullable=True))
    with op.batch_alter_table('membership_application', schema=None) as batch_op:
        batch_op.add_column(sa.Column('referrer_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('exception_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('exception_reason', sqlmodel.sql.sqltypes.AutoString(length=500),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('exception_at', portal.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('fee_paid_method', sqlmodel.sql.sqltypes.AutoString(length=16),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('fee_paid_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('fee_paid_at', portal.db.UTCDateTime(), nullable=True))
        batch_op.create_foreign_key('fk_membership_application_referrer', 'membership', ['referrer_id'], ['id'])
        batch_op.create_foreign_key('fk_membership_application_exception_by', 'user_account',
                                    ['exception_by_id'], ['id'])
        batch_op.create_foreign_key('fk_membership_application_fee_paid_by', 'user_account',
                                    ['fee_paid_by_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_column('spend_counted_from')
    with op.batch_alter_table('membership_application', schema=None) as batch_op:
        batch_op.drop_constraint('fk_membership_application_fee_paid_by', type_='foreignkey')
        batch_op.drop_constraint('fk_membership_application_exception_by', type_='foreignkey')
        batch_op.drop_constraint('fk_membership_application_referrer', type_='foreignkey')
        for column in ('fee_paid_at', 'fee_paid_by_id', 'fee_paid_method', 'exception_at',
                       'exception_reason', 'exception_by_id', 'referrer_id'):
            batch_op.drop_column(column)
