"""audit_file_day: the distinct files each user viewed each Shanghai day (audit_view_day's rows
per user and day), added up over nine weeks by the audit analytics' "many more files than usual"
check instead of counting distinct files over audit_view_day; audit_view_day's second index,
which that count used, dropped

Revision ID: 0033
Revises: 0032
Create Date: 2026-11-27 11:30:00

Filled from audit_view_day (one INSERT ... SELECT; see portal.reports.audit_days.catch_up).
"""
import sqlalchemy as sa
from alembic import op


revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None

BACKFILL_SQL = ("INSERT INTO audit_file_day (actor_username, day, files) "
                "SELECT actor_username, day, count(*) FROM audit_view_day GROUP BY actor_username, day")


def upgrade() -> None:
    op.create_table('audit_file_day',
    sa.Column('actor_username', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('files', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('actor_username', 'day')
    )
    op.execute(sa.text(BACKFILL_SQL))
    op.drop_index('ix_audit_view_day_file', table_name='audit_view_day')


def downgrade() -> None:
    op.create_index('ix_audit_view_day_file', 'audit_view_day', ['object_id', 'actor_username', 'day'], unique=False)
    op.drop_table('audit_file_day')
