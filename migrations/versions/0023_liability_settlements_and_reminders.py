"""liability settlements (append-only) with the settled sum cached on the liability; reminder runs

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-27 10:00:00

A liability (seed 000: the operator's full amount, the line leader's 10 % fine) is paid back by
settlements, partial or whole, recorded by a leader above the person. Each is a row of
``liability_settlement``, which the database refuses to UPDATE or DELETE; the liability caches
their sum in ``settled_fen`` (CHECK: never above the amount). ``reminder_run`` holds one row per
daily reminder job and day, written with that day's notices, so that a second run (or a second
process at the same moment) posts nothing.
"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

APPEND_ONLY = ("liability_settlement",)


def upgrade() -> None:
    # First, while nothing refers to it yet (SQLite rebuilds the table for the CHECK).
    with op.batch_alter_table('liability', schema=None) as batch_op:
        batch_op.add_column(sa.Column('settled_fen', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_check_constraint('ck_liability_settled', 'settled_fen >= 0 AND settled_fen <= amount_fen')
    op.create_table(
        'liability_settlement',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('liability_id', sa.Integer(), nullable=False),
        sa.Column('amount_fen', sa.Integer(), nullable=False),
        sa.Column('paid_on', sa.Date(), nullable=False),
        sa.Column('method', sa.String(length=16), nullable=False),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.Column('recorded_by_id', sa.Integer(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint('amount_fen > 0', name='ck_liability_settlement_amount'),
        sa.ForeignKeyConstraint(['liability_id'], ['liability.id'], ),
        sa.ForeignKeyConstraint(['recorded_by_id'], ['user_account.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_liability_settlement_liability', 'liability_settlement', ['liability_id', 'id'],
                    unique=False)
    op.create_table(
        'reminder_run',
        sa.Column('job', sa.String(length=40), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=False),
        sa.Column('notices', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('job', 'day'),
    )
    # A liability marked settled before settlements existed counts as paid in full.
    op.execute("UPDATE liability SET settled_fen = amount_fen WHERE settled_at IS NOT NULL")
    _append_only()


def downgrade() -> None:
    _drop_append_only()
    op.drop_table('reminder_run')
    op.drop_index('ix_liability_settlement_liability', table_name='liability_settlement')
    op.drop_table('liability_settlement')
    with op.batch_alter_table('liability', schema=None) as batch_op:
        batch_op.drop_constraint('ck_liability_settled', type_='check')
        batch_op.drop_column('settled_fen')


# PostgreSQL's ledger_append_only() function comes from migration 0003.
def _append_only() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
                    BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""")
        return
    for table in APPEND_ONLY:
        op.execute(f"""CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION ledger_append_only()""")
        op.execute(f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()""")


def _drop_append_only() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        return
    for table in APPEND_ONLY:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
