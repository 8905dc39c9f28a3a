"""The daily job in short steps: daily_job_state (the last day the membership job ran to the end,
and the id marks of the facts it had seen, so the next run visits only the members with something
to do), the indexes that find them by day (card validity end, lapse), and generations in the class
window summary (class_member and class_count rows keyed by a generation, class_state.gen the one
the reports read, class_build the one being built in chunks until it is switched in: one row, always
there, empty while no build runs)

Revision ID: 0036
Revises: 0035
Create Date: 2026-11-28 09:00:00

The class window's rows are copied into generation 1, which class_state names: the reports keep
reading them until the next daily run builds generation 2 and switches to it.
"""
import sqlalchemy as sa
from alembic import op

import portal.db


revision = '0036'
down_revision = '0035'
branch_labels = None
depends_on = None

PATH = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")
MEMBER_COLS = ("membership_id, customer_id, file_no, owner_id, unit_path, tier, spend_fen, purchases, last_on, "
               "cls, r, f")
COUNT_COLS = "owner_id, unit_path, tier, cls, r, f, members, spend_fen, purchases"


def _class_member(name: str, gen: bool) -> None:
    cols = [sa.Column('gen', sa.Integer(), nullable=False)] if gen else []
    op.create_table(name, *cols,
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
    sa.PrimaryKeyConstraint(*(['gen'] if gen else []), 'membership_id', name=f'pk_{name}')
    )


def _class_count(name: str, gen: bool) -> None:
    cols = [sa.Column('gen', sa.Integer(), nullable=False)] if gen else []
    op.create_table(name, *cols,
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', PATH, nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('cls', sa.String(length=1), nullable=False),
    sa.Column('r', sa.Integer(), nullable=False),
    sa.Column('f', sa.Integer(), nullable=False),
    sa.Column('members', sa.Integer(), nullable=False),
    sa.Column('spend_fen', sa.BigInteger(), nullable=False),
    sa.Column('purchases', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint(*(['gen'] if gen else []), 'owner_id', 'unit_path', 'tier', 'cls', 'r', 'f',
                            name=f'pk_{name}')
    )


def _swap_in(old: str, new: str) -> None:
    op.drop_table(old)
    op.rename_table(new, old)


def upgrade() -> None:
    op.create_table('daily_job_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('floor_marks', sa.Text(), nullable=False),
    sa.Column('ceiling_marks', sa.Text(), nullable=False),
    sa.Column('updated_at', portal.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_card_account_expires', 'card_account', ['expires_on'], unique=False)
    op.create_index('ix_membership_lapse', 'membership', ['last_purchase_on', 'joined_on'], unique=False)

    op.add_column('class_state', sa.Column('gen', sa.Integer(), nullable=False, server_default='1'))
    op.create_table('class_build',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gen', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=True),
    sa.Column('window_months', sa.Integer(), nullable=False),
    sa.Column('a_spend_fen', sa.BigInteger(), nullable=False),
    sa.Column('b_spend_fen', sa.BigInteger(), nullable=False),
    sa.Column('c_spend_fen', sa.BigInteger(), nullable=False),
    sa.Column('a_purchases', sa.Integer(), nullable=False),
    sa.Column('done_through', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # Always there (as_of empty: no build running), so the use cases' refresh always has a row to lock.
    op.execute("INSERT INTO class_build (id, gen, as_of, window_months, a_spend_fen, b_spend_fen, c_spend_fen, "
               "a_purchases, done_through) VALUES (1, 1, NULL, 0, 0, 0, 0, 0, 0)")
    op.drop_index('ix_class_member_owner', table_name='class_member')
    op.drop_index('ix_class_member_rank', table_name='class_member')
    op.drop_index('ix_class_count_unit', table_name='class_count')
    _class_member('class_member_gen', True)
    op.execute(f"INSERT INTO class_member_gen (gen, {MEMBER_COLS}) SELECT 1, {MEMBER_COLS} FROM class_member")
    _swap_in('class_member', 'class_member_gen')
    _class_count('class_count_gen', True)
    op.execute(f"INSERT INTO class_count_gen (gen, {COUNT_COLS}) SELECT 1, {COUNT_COLS} FROM class_count")
    _swap_in('class_count', 'class_count_gen')
    op.create_index('ix_class_member_rank', 'class_member', ['gen', 'cls', sa.text('spend_fen DESC'), 'file_no'],
                    unique=False)
    op.create_index('ix_class_member_owner', 'class_member',
                    ['gen', 'owner_id', 'cls', sa.text('spend_fen DESC'), 'file_no'], unique=False)
    op.create_index('ix_class_count_unit', 'class_count', ['gen', 'unit_path'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_class_count_unit', table_name='class_count')
    op.drop_index('ix_class_member_owner', table_name='class_member')
    op.drop_index('ix_class_member_rank', table_name='class_member')
    current = "(SELECT gen FROM class_state WHERE id = 1)"
    _class_member('class_member_one', False)
    op.execute(f"INSERT INTO class_member_one ({MEMBER_COLS}) SELECT {MEMBER_COLS} FROM class_member "
               f"WHERE gen = {current}")
    _swap_in('class_member', 'class_member_one')
    _class_count('class_count_one', False)
    op.execute(f"INSERT INTO class_count_one ({COUNT_COLS}) SELECT {COUNT_COLS} FROM class_count "
               f"WHERE gen = {current}")
    _swap_in('class_count', 'class_count_one')
    op.create_index('ix_class_member_rank', 'class_member', ['cls', sa.text('spend_fen DESC'), 'file_no'], unique=False)
    op.create_index('ix_class_member_owner', 'class_member', ['owner_id', 'cls', sa.text('spend_fen DESC'), 'file_no'],
                    unique=False)
    op.create_index('ix_class_count_unit', 'class_count', ['unit_path'], unique=False)
    op.drop_table('class_build')
    with op.batch_alter_table('class_state') as batch_op:
        batch_op.drop_column('gen')
    op.drop_index('ix_membership_lapse', table_name='membership')
    op.drop_index('ix_card_account_expires', table_name='card_account')
    op.drop_table('daily_job_state')
