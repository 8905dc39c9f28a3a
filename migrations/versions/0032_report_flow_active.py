"""report_flow: the active members by joining day (kind "act", a = the day of the month), for the
service report's visit coverage (active members joined by a day, per tier, within the scope)

Revision ID: 0032
Revises: 0031
Create Date: 2026-11-27 09:40:00

Filled from the memberships (one INSERT ... SELECT; see portal.reports.summaries.rebuild_sql).
"""
import sqlalchemy as sa
from alembic import op


revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


def backfill_sql(dialect: str) -> str:
    if dialect == "postgresql":
        month, day = "to_char(joined_on, 'YYYY-MM')", "to_char(joined_on, 'DD')"
    else:
        month, day = "strftime('%Y-%m', joined_on)", "strftime('%d', joined_on)"
    return f"""
INSERT INTO report_flow (month, owner_id, unit_path, tier, kind, a, b, n)
SELECT month, owner_id, unit_path, tier, 'act', day, '', count(*)
FROM (SELECT {month} AS month, {day} AS day, owner_id, unit_path, tier FROM membership
      WHERE status = 'active') m
GROUP BY month, owner_id, unit_path, tier, day"""


def upgrade() -> None:
    bind = op.get_bind()
    op.execute(sa.text("DELETE FROM report_flow WHERE kind = 'act'"))
    op.execute(sa.text(backfill_sql(bind.dialect.name)))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM report_flow WHERE kind = 'act'"))
