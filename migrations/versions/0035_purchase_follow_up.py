"""purchase_follow_up: the large purchases that may make a follow-up visit due, with copies of their
file's owner, unit and number, so that the visits due list walks each scope arm in purchase-day
order (service/follow_ups.py); ix_purchase_visit_due (the list's search by amount) goes

Revision ID: 0035
Revises: 0034
Create Date: 2026-11-27 14:00:00

Backfilled from the purchases of the last LOOKBACK_DAYS at or above the lowest large-purchase
threshold in force on any day from the window's first on (versions that take effect later
included; the portal's default when no version is in force on that day). The same rule and SQL
as portal.service.follow_ups, written out here so the migration stands alone.
"""
import json
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op


revision = '0035'
down_revision = '0034'
branch_labels = None
depends_on = None

LOOKBACK_DAYS = 90
DEFAULT_LARGE_PURCHASE_FEN = 1_000_000  # service.settings.ServiceSettings.large_purchase_fen
SHANGHAI = timezone(timedelta(hours=8))  # the programme's day

VERSIONS_SQL = """
SELECT effective_from, body FROM service_settings_version
WHERE effective_from >= COALESCE(
    (SELECT MAX(effective_from) FROM service_settings_version WHERE effective_from <= :since), :since)"""

BACKFILL_SQL = """
INSERT INTO purchase_follow_up (purchase_id, customer_id, owner_id, unit_path, file_no, purchased_on, paid_total_fen)
SELECT p.id, p.customer_id, f.owner_id, f.unit_path, f.file_no, p.purchased_on, p.paid_total_fen
FROM purchase p JOIN customer_file f ON f.id = p.customer_id
WHERE p.status = 'complete' AND p.paid_total_fen >= :min_fen AND p.purchased_on >= :from_day"""

_COLS = ['purchased_on', 'file_no', 'purchase_id', 'paid_total_fen', 'customer_id']


def lowest_threshold(conn, since) -> int:
    q = sa.text(VERSIONS_SQL).bindparams(sa.bindparam('since', type_=sa.Date()))
    rows = [(day if not isinstance(day, str) else datetime.strptime(day, '%Y-%m-%d').date(), body)
            for day, body in conn.execute(q, {'since': since})]
    fens = [json.loads(body).get('large_purchase_fen', DEFAULT_LARGE_PURCHASE_FEN) for _day, body in rows]
    if not rows or min(day for day, _body in rows) > since:
        fens.append(DEFAULT_LARGE_PURCHASE_FEN)
    return min(fens)


def backfill(conn, today) -> None:
    since = today - timedelta(days=LOOKBACK_DAYS)
    q = sa.text(BACKFILL_SQL).bindparams(sa.bindparam('from_day', type_=sa.Date()))
    conn.execute(q, {'min_fen': lowest_threshold(conn, since), 'from_day': since})


def upgrade() -> None:
    op.create_table('purchase_follow_up',
    sa.Column('purchase_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('file_no', sa.String(length=16), nullable=False),
    sa.Column('purchased_on', sa.Date(), nullable=False),
    sa.Column('paid_total_fen', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchase.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer_file.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('purchase_id')
    )
    backfill(op.get_bind(), datetime.now(SHANGHAI).date())
    op.create_index('ix_purchase_follow_up_owner', 'purchase_follow_up', ['owner_id', *_COLS], unique=False)
    op.create_index('ix_purchase_follow_up_unit', 'purchase_follow_up', ['unit_path', *_COLS], unique=False)
    op.create_index('ix_purchase_follow_up_on', 'purchase_follow_up', _COLS, unique=False)
    op.create_index('ix_purchase_follow_up_customer', 'purchase_follow_up', ['customer_id', 'purchased_on'],
                    unique=False)
    op.drop_index('ix_purchase_visit_due', table_name='purchase')


def downgrade() -> None:
    op.create_index('ix_purchase_visit_due', 'purchase',
                    ['status', 'paid_total_fen', 'purchased_on', 'customer_id'], unique=False)
    op.drop_index('ix_purchase_follow_up_customer', table_name='purchase_follow_up')
    op.drop_index('ix_purchase_follow_up_on', table_name='purchase_follow_up')
    op.drop_index('ix_purchase_follow_up_unit', table_name='purchase_follow_up')
    op.drop_index('ix_purchase_follow_up_owner', table_name='purchase_follow_up')
    op.drop_table('purchase_follow_up')
