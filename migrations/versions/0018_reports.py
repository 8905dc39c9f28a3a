"""reports: sent monthly unit reports (frozen figures, sender, SHA-256); indexes for period reports

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 15:10:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import portal.db


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sent_monthly_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('sent_by_id', sa.Integer(), nullable=False),
    sa.Column('sent_by_username', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('sent_at', portal.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], ),
    sa.ForeignKeyConstraint(['sent_by_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('unit_id', 'month', name='uq_sent_monthly_report_unit_month')
    )
    with op.batch_alter_table('sent_monthly_report', schema=None) as batch_op:
        batch_op.create_index('ix_sent_monthly_report_unitpath', ['unit_path', 'month'], unique=False)
    op.create_index('ix_purchase_on', 'purchase', ['purchased_on'], unique=False)
    op.create_index('ix_member_event_kind_at', 'member_event', ['kind', 'at'], unique=False)
    op.create_index('ix_member_card_issued', 'member_card', ['issued_on'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_member_card_issued', table_name='member_card')
    op.drop_index('ix_member_event_kind_at', table_name='member_event')
    op.drop_index('ix_purchase_on', table_name='purchase')
    with op.batch_alter_table('sent_monthly_report', schema=None) as batch_op:
        batch_op.drop_index('ix_sent_monthly_report_unitpath')
    op.drop_table('sent_monthly_report')
