"""coupons (campaigns, coupons, the append-only coupon ledger) and points as money on purchases

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-27 10:00:00

Seed 001: member coupons issued by campaigns or as a tier's birthday benefit, used once; points
paying part of a purchase. A purchase records the coupon's share of its discount and the points
that paid part of it. ``coupon_entry`` refuses UPDATE and DELETE like the other ledgers, and its
unique (coupon_id, kind) lets a coupon be used only once whatever the concurrency.
"""
from alembic import op
import sqlalchemy as sa


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

# The application's types, spelt out (migrations import nothing from the portal).
TS = sa.DateTime()  # portal.db.UTCDateTime stores naive UTC
PATH = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        'coupon_campaign',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('amount_fen', sa.Integer(), nullable=False),
        sa.Column('rate_per_mille', sa.Integer(), nullable=False),
        sa.Column('min_spend_fen', sa.Integer(), nullable=False),
        sa.Column('valid_from', sa.Date(), nullable=False),
        sa.Column('valid_until', sa.Date(), nullable=False),
        sa.Column('tiers', sa.String(length=64), nullable=False),
        sa.Column('unit_path', PATH, nullable=False),
        sa.Column('issued_count', sa.Integer(), nullable=False),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_coupon_campaign_unitpath', 'coupon_campaign', ['unit_path', 'id'])
    op.create_table(
        'coupon',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=16), nullable=False),
        sa.Column('membership_id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=True),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('benefit_key', sa.String(length=32), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('amount_fen', sa.Integer(), nullable=False),
        sa.Column('rate_per_mille', sa.Integer(), nullable=False),
        sa.Column('min_spend_fen', sa.Integer(), nullable=False),
        sa.Column('valid_from', sa.Date(), nullable=False),
        sa.Column('valid_until', sa.Date(), nullable=False),
        sa.Column('tiers', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
        sa.ForeignKeyConstraint(['membership_id'], ['membership.id']),
        sa.ForeignKeyConstraint(['campaign_id'], ['coupon_campaign.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('code'),
        sa.UniqueConstraint('membership_id', 'benefit_key', name='uq_coupon_benefit'),
    )
    op.create_index('ix_coupon_membership', 'coupon', ['membership_id', 'id'])
    op.create_index('ix_coupon_status_until', 'coupon', ['status', 'valid_until'])
    op.create_index('ix_coupon_campaign', 'coupon', ['campaign_id', 'status'])
    op.create_table(
        'coupon_entry',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('coupon_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('on', sa.Date(), nullable=False),
        sa.Column('purchase_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.ForeignKeyConstraint(['coupon_id'], ['coupon.id']),
        sa.ForeignKeyConstraint(['purchase_id'], ['purchase.id']),
        sa.ForeignKeyConstraint(['actor_id'], ['user_account.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('coupon_id', 'kind', name='uq_coupon_entry_kind'),
    )
    op.create_index('ix_coupon_entry_kind_on', 'coupon_entry', ['kind', 'on'])
    with op.batch_alter_table('purchase', schema=None) as batch_op:
        for name in ('coupon_discount_fen', 'points_paid', 'points_paid_fen'):
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default='0'))
    _append_only()


def _append_only() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER coupon_entry_no_{verb.lower()} BEFORE {verb} ON coupon_entry
                BEGIN SELECT RAISE(ABORT, 'coupon_entry is append-only'); END""")
        return
    op.execute("""CREATE FUNCTION coupon_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$""")
    op.execute("""CREATE TRIGGER coupon_entry_no_change BEFORE UPDATE OR DELETE ON coupon_entry
        FOR EACH ROW EXECUTE FUNCTION coupon_append_only()""")
    op.execute("""CREATE TRIGGER coupon_entry_no_truncate BEFORE TRUNCATE ON coupon_entry
        FOR EACH STATEMENT EXECUTE FUNCTION coupon_append_only()""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS coupon_entry_no_update")
        op.execute("DROP TRIGGER IF EXISTS coupon_entry_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS coupon_entry_no_change ON coupon_entry")
        op.execute("DROP TRIGGER IF EXISTS coupon_entry_no_truncate ON coupon_entry")
        op.execute("DROP FUNCTION IF EXISTS coupon_append_only()")
    with op.batch_alter_table('purchase', schema=None) as batch_op:
        for name in ('points_paid_fen', 'points_paid', 'coupon_discount_fen'):
            batch_op.drop_column(name)
    op.drop_index('ix_coupon_entry_kind_on', table_name='coupon_entry')
    op.drop_table('coupon_entry')
    op.drop_index('ix_coupon_campaign', table_name='coupon')
    op.drop_index('ix_coupon_status_until', table_name='coupon')
    op.drop_index('ix_coupon_membership', table_name='coupon')
    op.drop_table('coupon')
    op.drop_index('ix_coupon_campaign_unitpath', table_name='coupon_campaign')
    op.drop_table('coupon_campaign')
