"""membership.visit_base_on: the day from which the next scheduled follow-up visit counts (the
last visit's day, else the joining day), and the indexes the visits due list walks in due order
(the members by scope, tier and that day; the large purchases by amount)

Revision ID: 0034
Revises: 0033
Create Date: 2026-11-27 11:20:00

Backfilled from the visits and the memberships (one UPDATE; the same SQL as
portal.membership.models.visit_base_sql).
"""
import sqlalchemy as sa
from alembic import op


revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None

BACKFILL_SQL = """
UPDATE membership SET visit_base_on = COALESCE(
    (SELECT MAX(v.visited_on) FROM member_visit v WHERE v.customer_id = membership.customer_id),
    joined_on)"""


def upgrade() -> None:
    op.add_column('membership', sa.Column('visit_base_on', sa.Date(), nullable=True))
    op.execute(sa.text(BACKFILL_SQL))
    op.create_index('ix_membership_visit_owner', 'membership',
                    ['owner_id', 'status', 'tier', 'visit_base_on', 'customer_id'], unique=False)
    op.create_index('ix_membership_visit_unit', 'membership',
                    ['unit_path', 'status', 'tier', 'visit_base_on', 'customer_id'], unique=False)
    op.create_index('ix_purchase_visit_due', 'purchase',
                    ['status', 'paid_total_fen', 'purchased_on', 'customer_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_purchase_visit_due', table_name='purchase')
    op.drop_index('ix_membership_visit_unit', table_name='membership')
    op.drop_index('ix_membership_visit_owner', table_name='membership')
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_column('visit_base_on')
