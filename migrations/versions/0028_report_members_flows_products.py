"""report_member, report_flow and report_product: the overview's and the monthly report's member
counts, balances, joinings, tier moves, tiers over time, new cards and top products, kept by the domain's use
cases in the same transaction as the facts (see portal.reports.summaries and .products)

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-27 09:00:00

The summaries are filled from the existing facts in the database (INSERT ... SELECT: the rows
stream through the database, never through Python). Keys are each member's owner, unit path and
tier (and status) as they stand now.
"""
import sqlalchemy as sa
from alembic import op


revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

PATH = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")
RANK = {"regular": 0, "silver": 1, "gold": 2, "platinum": 3}


def _rank(col: str) -> str:
    return "CASE " + " ".join(f"WHEN {col} = '{t}' THEN {r}" for t, r in RANK.items()) + " ELSE -1 END"


def _backfill(dialect: str) -> list[str]:
    pg = dialect == "postgresql"
    jm = "to_char(joined_on, 'YYYY-MM')" if pg else "strftime('%Y-%m', joined_on)"
    em = """to_char("at" + interval '8 hours', 'YYYY-MM')""" if pg else """strftime('%Y-%m', "at", '+8 hours')"""
    tm = "to_char(changed_on, 'YYYY-MM')" if pg else "strftime('%Y-%m', changed_on)"
    cm = "to_char(c.issued_on, 'YYYY-MM')" if pg else "strftime('%Y-%m', c.issued_on)"
    pm = "to_char(p.purchased_on, 'YYYY-MM')" if pg else "strftime('%Y-%m', p.purchased_on)"
    return [f"""
INSERT INTO report_member (owner_id, unit_path, tier, status, members, holders, points_balance, stored_value_fen)
SELECT m.owner_id, m.unit_path, m.tier, m.status, count(*), sum(CASE WHEN a.n > 0 THEN 1 ELSE 0 END),
       coalesce(sum(a.pts), 0), coalesce(sum(a.sv), 0)
FROM membership m LEFT JOIN (SELECT membership_id, count(*) AS n, sum(points_balance) AS pts,
                                    sum(stored_value_fen) AS sv FROM card_account GROUP BY membership_id) a
  ON a.membership_id = m.id
GROUP BY m.owner_id, m.unit_path, m.tier, m.status""", f"""
INSERT INTO report_flow (month, owner_id, unit_path, tier, kind, a, b, n)
SELECT f.month, m.owner_id, m.unit_path, m.tier, f.kind, f.a, f.b, count(*)
FROM (
  SELECT id AS mid, {jm} AS month, 'join' AS kind, join_cause AS a, '' AS b FROM membership
  UNION ALL
  SELECT id, {jm}, 'ref', '', '' FROM membership WHERE referrer_id IS NOT NULL
  UNION ALL
  SELECT membership_id, {em}, 'move',
         CASE WHEN {_rank('to_value')} > {_rank('from_value')} THEN 'up' ELSE 'down' END, cause
  FROM member_event WHERE kind = 'tier'
  UNION ALL
  SELECT membership_id, {tm}, 'tc', from_tier, to_tier FROM tier_change
  UNION ALL
  SELECT a.membership_id, {cm}, 'card', CASE WHEN c.replaces_id IS NULL THEN 'new' ELSE 'replacement' END, ''
  FROM member_card c JOIN card_account a ON a.id = c.account_id
) f JOIN membership m ON m.id = f.mid
GROUP BY f.month, m.owner_id, m.unit_path, m.tier, f.kind, f.a, f.b""", f"""
WITH pl AS (
  SELECT p.membership_id AS mid, {pm} AS month, l.product AS product, sum(l.quantity) AS q, sum(l.paid_fen) AS fen
  FROM purchase p JOIN purchase_line l ON l.purchase_id = p.id
  WHERE p.status = 'complete' AND p.membership_id IS NOT NULL
  GROUP BY p.membership_id, {pm}, l.product
), pf AS (
  SELECT mid, month, product, q, fen,
    CASE WHEN month = min(month) OVER (PARTITION BY mid, product, substr(month, 1, 4),
                                       (CAST(substr(month, 6, 2) AS INTEGER) + 2) / 3) THEN 1 ELSE 0 END AS fq,
    CASE WHEN month = min(month) OVER (PARTITION BY mid, product, substr(month, 1, 4)) THEN 1 ELSE 0 END AS fy
  FROM pl
)
INSERT INTO report_product (month, owner_id, unit_path, tier, product, buyers, first_of_quarter, first_of_year,
                            quantity, paid_fen)
SELECT pf.month, m.owner_id, m.unit_path, m.tier, pf.product, count(*), sum(fq), sum(fy), sum(q), sum(fen)
FROM pf JOIN membership m ON m.id = pf.mid
GROUP BY pf.month, m.owner_id, m.unit_path, m.tier, pf.product"""]


def upgrade() -> None:
    op.create_table('report_member',
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', PATH, nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('members', sa.Integer(), nullable=False),
    sa.Column('holders', sa.Integer(), nullable=False),
    sa.Column('points_balance', sa.BigInteger(), nullable=False),
    sa.Column('stored_value_fen', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('owner_id', 'unit_path', 'tier', 'status')
    )
    op.create_index('ix_report_member_unit', 'report_member', ['unit_path'], unique=False)
    op.create_table('report_flow',
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', PATH, nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('a', sa.String(length=32), nullable=False),
    sa.Column('b', sa.String(length=32), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('month', 'owner_id', 'unit_path', 'tier', 'kind', 'a', 'b')
    )
    op.create_index('ix_report_flow_unit', 'report_flow', ['kind', 'unit_path', 'month'], unique=False)
    op.create_index('ix_report_flow_owner', 'report_flow', ['kind', 'owner_id', 'month'], unique=False)
    op.create_table('report_product',
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', PATH, nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('product', sa.String(length=200), nullable=False),
    sa.Column('buyers', sa.Integer(), nullable=False),
    sa.Column('first_of_quarter', sa.Integer(), nullable=False),
    sa.Column('first_of_year', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('paid_fen', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('month', 'owner_id', 'unit_path', 'tier', 'product')
    )
    op.create_index('ix_report_product_unit', 'report_product', ['unit_path', 'month'], unique=False)
    op.create_index('ix_report_product_owner', 'report_product', ['owner_id', 'month'], unique=False)
    bind = op.get_bind()
    for sql in _backfill(bind.dialect.name):
        bind.execute(sa.text(sql))


def downgrade() -> None:
    op.drop_index('ix_report_product_owner', table_name='report_product')
    op.drop_index('ix_report_product_unit', table_name='report_product')
    op.drop_table('report_product')
    op.drop_index('ix_report_flow_owner', table_name='report_flow')
    op.drop_index('ix_report_flow_unit', table_name='report_flow')
    op.drop_table('report_flow')
    op.drop_index('ix_report_member_unit', table_name='report_member')
    op.drop_table('report_member')
