"""the member's tier over time: tier_change (append-only), backfilled from the member's history

Revision ID: 0026
Revises: 0024
Create Date: 2026-11-27 10:00:00

One row each time a membership changes state (joined, a tier change, ended), on the Shanghai
day it did: the reports count members by the tier each held at a date, not by today's tier.
The rows of existing memberships are rebuilt from member_event ("joined", "tier", "ended", in
order); a membership whose history does not reach its current state (rows written before the
history was complete) gets a joining row on its joined_on and, where needed, a closing row on
the day it was last updated, so every membership's last row is its state now.
"""
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op


revision = '0026'
down_revision = '0024'
branch_labels = None
depends_on = None

ENDED = "ended"
SHANGHAI = timedelta(hours=8)
BATCH = 10_000

membership = sa.table("membership", sa.column("id", sa.Integer), sa.column("tier", sa.String),
                      sa.column("status", sa.String), sa.column("joined_on", sa.Date),
                      sa.column("join_cause", sa.String), sa.column("updated_at", sa.DateTime))
member_event = sa.table("member_event", sa.column("id", sa.Integer), sa.column("membership_id", sa.Integer),
                        sa.column("kind", sa.String), sa.column("from_value", sa.String),
                        sa.column("to_value", sa.String), sa.column("cause", sa.String),
                        sa.column("at", sa.DateTime))


def upgrade() -> None:
    op.create_table('tier_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('changed_on', sa.Date(), nullable=False),
    sa.Column('from_tier', sa.String(length=16), nullable=False),
    sa.Column('to_tier', sa.String(length=16), nullable=False),
    sa.Column('cause', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['membership_id'], ['membership.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    tier_change = sa.table("tier_change", *(sa.column(c) for c in (
        "membership_id", "changed_on", "from_tier", "to_tier", "cause", "at")))
    bind = op.get_bind()
    pending: list[dict] = []
    for row in _history(bind):
        pending.append(row)
        if len(pending) >= BATCH:
            bind.execute(tier_change.insert(), pending)
            pending = []
    if pending:
        bind.execute(tier_change.insert(), pending)
    # After the backfill: one index build instead of a million inserts into it.
    op.create_index('ix_tier_change_membership', 'tier_change',
                    ['membership_id', 'changed_on', 'from_tier', 'to_tier'], unique=False)
    _append_only(bind)


def _day(value) -> date:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return (value + SHANGHAI).date()


def _history(bind):
    """The rows of every membership, in membership order: a merge of two ordered reads, streamed
    (a large programme's history does not have to fit in memory)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    stream = {"stream_results": True, "yield_per": BATCH}  # these two statements only
    events = iter(bind.execute(
        sa.select(member_event.c.membership_id, member_event.c.kind, member_event.c.from_value,
                  member_event.c.to_value, member_event.c.cause, member_event.c.at)
        .where(member_event.c.kind.in_(("joined", "tier", "ended")))
        .order_by(member_event.c.membership_id, member_event.c.at, member_event.c.id)
        .execution_options(**stream)))
    ev = next(events, None)
    for m in bind.execute(sa.select(membership).order_by(membership.c.id).execution_options(**stream)):
        while ev is not None and ev.membership_id < m.id:
            ev = next(events, None)
        mine = []
        while ev is not None and ev.membership_id == m.id:
            mine.append(ev)
            ev = next(events, None)
        yield from _rows_of(m, mine, now)


def _rows_of(m, events, now: datetime) -> list[dict]:
    joined_on = m.joined_on if isinstance(m.joined_on, date) else date.fromisoformat(str(m.joined_on)[:10])
    out: list[dict] = []
    state = ""

    def add(day: date, frm: str, to: str, cause: str) -> None:
        out.append({"membership_id": m.id, "changed_on": day, "from_tier": frm, "to_tier": to,
                    "cause": (cause or "")[:32], "at": now})

    for ev in events:
        day = _day(ev.at)
        if ev.kind == "joined":
            add(day, state, ev.to_value or "regular", ev.cause)
            state = ev.to_value or "regular"
            continue
        before = ev.from_value or state
        if state == "" and before:  # a history that starts after joining
            add(min(joined_on, day), "", before, m.join_cause)
        to = ev.to_value if ev.kind == "tier" else ENDED
        add(day, before, to, ev.cause)
        state = to
    now_state = ENDED if m.status == ENDED else m.tier
    if state == "":
        first = m.tier if m.status != ENDED or not out else out[-1]["to_tier"]
        add(joined_on, "", first, m.join_cause)
        state = first
    if state != now_state:
        add(max(_day(m.updated_at), out[-1]["changed_on"]), state, now_state, "backfill")
    return out


def _append_only(bind) -> None:
    # Like member_event, the history it is rebuilt from: the database refuses UPDATE and DELETE.
    if bind.dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER tier_change_no_{verb.lower()} BEFORE {verb} ON tier_change
                BEGIN SELECT RAISE(ABORT, 'tier_change is append-only'); END""")
        return
    op.execute("""CREATE FUNCTION tier_change_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$""")
    op.execute("""CREATE TRIGGER tier_change_no_change BEFORE UPDATE OR DELETE ON tier_change
        FOR EACH ROW EXECUTE FUNCTION tier_change_append_only()""")
    op.execute("""CREATE TRIGGER tier_change_no_truncate BEFORE TRUNCATE ON tier_change
        FOR EACH STATEMENT EXECUTE FUNCTION tier_change_append_only()""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS tier_change_no_update")
        op.execute("DROP TRIGGER IF EXISTS tier_change_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS tier_change_no_change ON tier_change")
        op.execute("DROP TRIGGER IF EXISTS tier_change_no_truncate ON tier_change")
        op.execute("DROP FUNCTION IF EXISTS tier_change_append_only()")
    op.drop_index('ix_tier_change_membership', table_name='tier_change')
    op.drop_table('tier_change')
