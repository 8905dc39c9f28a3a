"""member events (seed 001, 五): yearly plans, events, invitations, registrations

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26 15:04:13
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import portal.db


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('event_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('budget_fen', sa.Integer(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', portal.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('budget_fen >= 0', name='ck_event_plan_budget'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('unit_id', 'year', name='uq_event_plan_unit_year')
    )
    with op.batch_alter_table('event_plan', schema=None) as batch_op:
        batch_op.create_index('ix_event_plan_unit_path', ['unit_path', 'year'], unique=False)

    op.create_table('member_activity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('theme', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('starts_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('ends_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('budget_fen', sa.Integer(), nullable=False),
    sa.Column('tiers', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('registration_opens_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('priority_opens_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('actual_cost_fen', sa.Integer(), nullable=True),
    sa.Column('invited_at', portal.db.UTCDateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', portal.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('budget_fen >= 0', name='ck_member_activity_budget'),
    sa.CheckConstraint('capacity > 0', name='ck_member_activity_capacity'),
    sa.CheckConstraint('ends_at > starts_at', name='ck_member_activity_times'),
    sa.CheckConstraint('points >= 0', name='ck_member_activity_points'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['plan_id'], ['event_plan.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('member_activity', schema=None) as batch_op:
        batch_op.create_index('ix_member_activity_plan', ['plan_id', 'starts_at'], unique=False)
        batch_op.create_index('ix_member_activity_unit_path', ['unit_path', 'starts_at'], unique=False)

    op.create_table('event_invitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('invited_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['member_activity.id'], ),
    sa.ForeignKeyConstraint(['invited_by_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['membership_id'], ['membership.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id', 'membership_id', name='uq_event_invitation_member')
    )
    with op.batch_alter_table('event_invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_invitation_membership_id'), ['membership_id'], unique=False)

    op.create_table('event_registration',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('queued_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('registered_by_id', sa.Integer(), nullable=True),
    sa.Column('cancelled_at', portal.db.UTCDateTime(), nullable=True),
    sa.Column('cancelled_by_id', sa.Integer(), nullable=True),
    sa.Column('checked_in_at', portal.db.UTCDateTime(), nullable=True),
    sa.Column('checked_in_by_id', sa.Integer(), nullable=True),
    sa.Column('points_credited', sa.Integer(), nullable=False),
    sa.Column('points_entry_id', sa.Integer(), nullable=True),
    sa.Column('satisfaction', sa.Integer(), nullable=True),
    sa.CheckConstraint('satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5', name='ck_event_registration_satisfaction'),
    sa.ForeignKeyConstraint(['cancelled_by_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['checked_in_by_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['event_id'], ['member_activity.id'], ),
    sa.ForeignKeyConstraint(['membership_id'], ['membership.id'], ),
    sa.ForeignKeyConstraint(['points_entry_id'], ['points_entry.id'], ),
    sa.ForeignKeyConstraint(['registered_by_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id', 'membership_id', name='uq_event_registration_member')
    )
    with op.batch_alter_table('event_registration', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_registration_membership_id'), ['membership_id'], unique=False)
        batch_op.create_index('ix_event_registration_queue', ['event_id', 'status', 'queued_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('event_registration', schema=None) as batch_op:
        batch_op.drop_index('ix_event_registration_queue')
        batch_op.drop_index(batch_op.f('ix_event_registration_membership_id'))

    op.drop_table('event_registration')
    with op.batch_alter_table('event_invitation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_invitation_membership_id'))

    op.drop_table('event_invitation')
    with op.batch_alter_table('member_activity', schema=None) as batch_op:
        batch_op.drop_index('ix_member_activity_unit_path')
        batch_op.drop_index('ix_member_activity_plan')

    op.drop_table('member_activity')
    with op.batch_alter_table('event_plan', schema=None) as batch_op:
        batch_op.drop_index('ix_event_plan_unit_path')

    op.drop_table('event_plan')
