"""report_month: the purchase and points figures per month and (owner, unit path, tier), kept by the
domain's use cases in the same transaction as the facts; indexes for the period's complaints and visits

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-27 12:00:00

The summary is filled from the existing facts in the database (one INSERT ... SELECT: the rows
stream through the database, never through Python). Keys are each member's owner, unit path and
tier as they stand now, as the live reports group them (see portal.reports.rollup).
"""
import sqlalchemy as sa
from alembic import op


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

PATH = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")


def _rebuild_sql(dialect: str, where_members: str = "") -> str:
    pm = "to_char(p.purchased_on, 'YYYY-MM')" if dialect == "postgresql" else "strftime('%Y-%m', p.purchased_on)"
    em = """to_char(e."on", 'YYYY-MM')""" if dialect == "postgresql" else """strftime('%Y-%m', e."on")"""
    return f"""
WITH pm AS (
  SELECT p.membership_id AS mid, {pm} AS month, count(*) AS n, sum(p.paid_total_fen) AS fen
  FROM purchase p WHERE p.status = 'complete' AND p.membership_id IS NOT NULL {where_members.replace('{mid}', 'p.membership_id')}
  GROUP BY p.membership_id, {pm}
), pf AS (
  SELECT mid, month, n, fen,
    CASE WHEN month = min(month) OVER (PARTITION BY mid, substr(month, 1, 4),
                                       (CAST(substr(month, 6, 2) AS INTEGER) + 2) / 3) THEN 1 ELSE 0 END AS fq,
    CASE WHEN month = min(month) OVER (PARTITION BY mid, substr(month, 1, 4)) THEN 1 ELSE 0 END AS fy
  FROM pm
), pts AS (
  SELECT a.membership_id AS mid, {em} AS month,
    sum(CASE WHEN e.kind IN ('earn', 'referral', 'event') THEN e.points ELSE 0 END) AS earned,
    sum(CASE WHEN e.kind = 'redeem' THEN -e.points ELSE 0 END) AS redeemed,
    sum(CASE WHEN e.kind = 'expire' THEN -e.points ELSE 0 END) AS expired
  FROM points_entry e JOIN card_account a ON a.id = e.account_id
  WHERE e.kind IN ('earn', 'referral', 'event', 'redeem', 'expire') {where_members.replace('{mid}', 'a.membership_id')}
  GROUP BY a.membership_id, {em}
), facts AS (
  SELECT mid, month, n, fen, 1 AS bm, fq, fy, 0 AS earned, 0 AS redeemed, 0 AS expired FROM pf
  UNION ALL
  SELECT mid, month, 0, 0, 0, 0, 0, earned, redeemed, expired FROM pts
)
INSERT INTO report_month (month, owner_id, unit_path, tier, purchases, spend_fen, buyers, first_of_quarter,
                          first_of_year, points_earned, points_redeemed, points_expired)
SELECT facts.month, m.owner_id, m.unit_path, m.tier, sum(n), sum(fen), sum(bm), sum(fq), sum(fy),
       sum(earned), sum(redeemed), sum(expired)
FROM facts JOIN membership m ON m.id = facts.mid
GROUP BY facts.month, m.owner_id, m.unit_path, m.tier"""



def upgrade() -> None:
    op.create_table('report_month',
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', PATH, nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('purchases', sa.Integer(), nullable=False),
    sa.Column('spend_fen', sa.BigInteger(), nullable=False),
    sa.Column('buyers', sa.Integer(), nullable=False),
    sa.Column('first_of_quarter', sa.Integer(), nullable=False),
    sa.Column('first_of_year', sa.Integer(), nullable=False),
    sa.Column('points_earned', sa.BigInteger(), nullable=False),
    sa.Column('points_redeemed', sa.BigInteger(), nullable=False),
    sa.Column('points_expired', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('month', 'owner_id', 'unit_path', 'tier')
    )
    op.create_index('ix_report_month_unit', 'report_month', ['unit_path', 'month'], unique=False)
    op.create_index('ix_report_month_owner', 'report_month', ['owner_id', 'month'], unique=False)
    op.create_index('ix_complaint_recorded_at', 'complaint', ['recorded_at'], unique=False)
    op.create_index('ix_member_visit_on', 'member_visit', ['visited_on'], unique=False)
    bind = op.get_bind()
    bind.execute(sa.text(_rebuild_sql(bind.dialect.name)))


def downgrade() -> None:
    op.drop_index('ix_member_visit_on', table_name='member_visit')
    op.drop_index('ix_complaint_recorded_at', table_name='complaint')
    op.drop_index('ix_report_month_owner', table_name='report_month')
    op.drop_index('ix_report_month_unit', table_name='report_month')
    op.drop_table('report_month')
