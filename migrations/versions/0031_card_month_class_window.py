"""card_month (card tracking's counts per month, owner, unit path, tier and kind, kept with the card
steps), card_issue (the card issue list's walk by day and number within scope) and the class window summary (class_state, class_member, class_count: classes A-D and RFM as
of a day, rebuilt by the daily job and kept by the use cases in between)

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-27 08:30:00

card_month is filled from the existing facts (one INSERT ... SELECT; see portal.reports.card_rollup).
The class window tables start empty: until the daily job (`portal jobs daily`) or a bulk load
builds them as of its day, the classes page reads the facts as before.
"""
import sqlalchemy as sa
from alembic import op


revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None

PATH = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")


def _backfill_sql(dialect: str) -> str:
    if dialect == "postgresql":
        ev = "to_char(e.at + interval '8 hours', 'YYYY-MM')"
        ex = "to_char(a.expires_on, 'YYYY-MM')"
        ci = "to_char(c.issued_on, 'YYYY-MM')"
    else:
        ev = "strftime('%Y-%m', e.at, '+8 hours')"
        ex = "strftime('%Y-%m', a.expires_on)"
        ci = "strftime('%Y-%m', c.issued_on)"
    return f"""
INSERT INTO card_month (month, owner_id, unit_path, tier, kind, n)
SELECT f.month, m.owner_id, m.unit_path, m.tier, f.kind, count(*)
FROM (
  SELECT e.membership_id AS mid, {ev} AS month, e.kind AS kind FROM member_event e
  WHERE e.kind IN ('card_issued', 'replace', 'loss', 'freeze', 'renew', 'cancel')
  UNION ALL
  SELECT a.membership_id, {ex}, 'expired' FROM card_account a
  UNION ALL
  SELECT a.membership_id, {ci}, 'card' FROM member_card c JOIN card_account a ON a.id = c.account_id
) f JOIN membership m ON m.id = f.mid
GROUP BY f.month, m.owner_id, m.unit_path, m.tier, f.kind"""


CARD_ISSUE_SQL = """
INSERT INTO card_issue (card_id, membership_id, issued_on, number, owner_id, unit_path, tier)
SELECT c.id, m.id, c.issued_on, c.number, m.owner_id, m.unit_path, m.tier
FROM member_card c JOIN card_account a ON a.id = c.account_id JOIN membership m ON m.id = a.membership_id"""


def upgrade() -> None:
    op.create_table('card_month',
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', PATH, nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('month', 'owner_id', 'unit_path', 'tier', 'kind')
    )
    op.create_index('ix_card_month_unit', 'card_month', ['unit_path', 'month'], unique=False)
    op.create_index('ix_card_month_owner', 'card_month', ['owner_id', 'month'], unique=False)
    op.create_table('card_issue',
    sa.Column('card_id', sa.Integer(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('number', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', PATH, nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('card_id')
    )
    op.create_index('ix_card_issue_walk', 'card_issue', ['issued_on', 'number', 'owner_id', 'unit_path', 'tier'],
                    unique=False)
    op.create_index('ix_card_issue_member', 'card_issue', ['membership_id'], unique=False)
    op.create_table('class_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('window_months', sa.Integer(), nullable=False),
    sa.Column('a_spend_fen', sa.BigInteger(), nullable=False),
    sa.Column('b_spend_fen', sa.BigInteger(), nullable=False),
    sa.Column('c_spend_fen', sa.BigInteger(), nullable=False),
    sa.Column('a_purchases', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('class_member',
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('file_no', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', PATH, nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('spend_fen', sa.BigInteger(), nullable=False),
    sa.Column('purchases', sa.Integer(), nullable=False),
    sa.Column('last_on', sa.Date(), nullable=True),
    sa.Column('cls', sa.String(length=1), nullable=False),
    sa.Column('r', sa.Integer(), nullable=False),
    sa.Column('f', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('membership_id')
    )
    op.create_index('ix_class_member_rank', 'class_member', ['cls', sa.text('spend_fen DESC'), 'file_no'], unique=False)
    op.create_index('ix_class_member_owner', 'class_member', ['owner_id', 'cls', sa.text('spend_fen DESC'), 'file_no'],
                    unique=False)
    op.create_table('class_count',
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', PATH, nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('cls', sa.String(length=1), nullable=False),
    sa.Column('r', sa.Integer(), nullable=False),
    sa.Column('f', sa.Integer(), nullable=False),
    sa.Column('members', sa.Integer(), nullable=False),
    sa.Column('spend_fen', sa.BigInteger(), nullable=False),
    sa.Column('purchases', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('owner_id', 'unit_path', 'tier', 'cls', 'r', 'f')
    )
    op.create_index('ix_class_count_unit', 'class_count', ['unit_path'], unique=False)
    bind = op.get_bind()
    bind.execute(sa.text(_backfill_sql(bind.dialect.name)))
    bind.execute(sa.text(CARD_ISSUE_SQL))


def downgrade() -> None:
    op.drop_index('ix_class_count_unit', table_name='class_count')
    op.drop_table('class_count')
    op.drop_index('ix_class_member_owner', table_name='class_member')
    op.drop_index('ix_class_member_rank', table_name='class_member')
    op.drop_table('class_member')
    op.drop_table('class_state')
    op.drop_index('ix_card_issue_member', table_name='card_issue')
    op.drop_index('ix_card_issue_walk', table_name='card_issue')
    op.drop_table('card_issue')
    op.drop_index('ix_card_month_owner', table_name='card_month')
    op.drop_index('ix_card_month_unit', table_name='card_month')
    op.drop_table('card_month')
