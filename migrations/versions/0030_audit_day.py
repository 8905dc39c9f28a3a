"""audit_day: the audit analytics' counts per (Shanghai day, actor) up to a sequence number, and
audit_view_day: who viewed which file on which day, both caught up from the log by the reports
(never by the append); an index for a period's sales on terms

Revision ID: 0030
Revises: 0028
Create Date: 2026-11-27 09:00:00

The summary is filled from the existing log in the database (one INSERT ... SELECT) and its head
set to the log's head (see portal.reports.audit_days).
"""
import sqlalchemy as sa
from alembic import op


revision = '0030'
down_revision = '0028'
branch_labels = None
depends_on = None

HOURS = [f"vh{h:02d}" for h in range(24)]
FIGURES = ["entries", "views", "exports", "denials", "grants", *HOURS]


def _backfill_sql(dialect: str) -> str:
    if dialect == "postgresql":
        shifted = "(e.at + interval '8 hours')"
        day, hour = f"to_char({shifted}, 'YYYY-MM-DD')", f"CAST(EXTRACT(HOUR FROM {shifted}) AS INTEGER)"
    else:
        day, hour = "strftime('%Y-%m-%d', e.at, '+8 hours')", "CAST(strftime('%H', e.at, '+8 hours') AS INTEGER)"
    view = "e.action = 'customer.view'"
    hours = ",\n  ".join(f"sum(CASE WHEN h.hour = {i} THEN h.vany ELSE 0 END)" for i in range(24))
    return f"""
INSERT INTO audit_day (day, actor_id, actor_username, actor_role, {", ".join(FIGURES)})
SELECT h.day, h.actor_id, h.actor_username, h.actor_role, sum(h.entries), sum(h.views), sum(h.exports),
  sum(h.denials), sum(h.grants),
  {hours}
FROM (
  SELECT {day} AS day, {hour} AS hour, coalesce(e.actor_id, 0) AS actor_id, e.actor_username, e.actor_role,
    count(*) AS entries,
    sum(CASE WHEN {view} AND e.outcome = 'allowed' THEN 1 ELSE 0 END) AS views,
    sum(CASE WHEN e.action IN ('customer.export', 'audit.export', 'report.export') AND e.outcome = 'allowed'
             THEN 1 ELSE 0 END) AS exports,
    sum(CASE WHEN e.outcome = 'denied' THEN 1 ELSE 0 END) AS denials,
    sum(CASE WHEN e.action = 'access.approve' AND e.outcome = 'allowed' THEN 1 ELSE 0 END) AS grants,
    sum(CASE WHEN {view} THEN 1 ELSE 0 END) AS vany
  FROM audit_event e WHERE e.seq <= (SELECT seq FROM audit_day_head WHERE id = 1)
  GROUP BY 1, 2, 3, e.actor_username, e.actor_role
) h
GROUP BY h.day, h.actor_id, h.actor_username, h.actor_role"""


def _view_days_sql(dialect: str) -> str:
    day = ("to_char(e.at + interval '8 hours', 'YYYY-MM-DD')" if dialect == "postgresql"
           else "strftime('%Y-%m-%d', e.at, '+8 hours')")
    return (f"INSERT INTO audit_view_day (actor_username, day, object_id) "
            f"SELECT DISTINCT e.actor_username, {day}, e.object_id FROM audit_event e "
            f"WHERE e.action = 'customer.view' AND e.outcome = 'allowed' "
            f"AND e.seq <= (SELECT seq FROM audit_day_head WHERE id = 1)")


def upgrade() -> None:
    op.create_table('audit_day',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=False),
    sa.Column('actor_username', sa.String(length=64), nullable=False),
    sa.Column('actor_role', sa.String(length=32), nullable=False),
    *(sa.Column(name, sa.Integer(), nullable=False) for name in FIGURES),
    sa.PrimaryKeyConstraint('day', 'actor_id', 'actor_username', 'actor_role')
    )
    op.create_table('audit_day_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('audit_view_day',
    sa.Column('actor_username', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('object_id', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('actor_username', 'day', 'object_id')
    )
    op.create_index('ix_audit_view_day_file', 'audit_view_day', ['object_id', 'actor_username', 'day'], unique=False)
    op.create_index('ix_credit_order_ordered_on', 'credit_order', ['ordered_on'], unique=False)
    bind = op.get_bind()
    bind.execute(sa.text("INSERT INTO audit_day_head (id, seq) "
                         "SELECT 1, coalesce((SELECT seq FROM audit_head WHERE id = 1), 0)"))
    bind.execute(sa.text(_backfill_sql(bind.dialect.name)))
    bind.execute(sa.text(_view_days_sql(bind.dialect.name)))


def downgrade() -> None:
    op.drop_index('ix_credit_order_ordered_on', table_name='credit_order')
    op.drop_table('audit_view_day')
    op.drop_table('audit_day_head')
    op.drop_table('audit_day')
