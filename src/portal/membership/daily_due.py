"""Which members the daily job (jobs.py) must visit on a day: those with something to do, found in SQL.

A member needs the daily job on day T only when something happened to them since the last run
that went to the end (day L, kept in ``daily_job_state``) or a date of theirs falls in (L, T]:

* a points lot expires in (L, T] (``points_entry.expires_on``, the lot's first unusable day);
* the lapse day (last purchase, else joining, plus ``lapse_after_months``) falls in (L, T];
* a card account's validity ends in (L, T] (``card_account.expires_on``): the validity review;
* a purchase dated in (L, T], or any fact written since the last runs: a purchase, a points
  entry, a member event (joining, a tier change, a leader's floor or ceiling, a card cancelled,
  restored or renewed...), a new membership or card account. Found by id above the marks the
  runs recorded (``floor``: the ids seen by the start of the run before the last one, so a
  transaction still open when the last run started is seen again).

Why that is enough for the tiers: between validity reviews a tier only rises (the points or spend
threshold met) or is clamped into a leader's floor and ceiling, and without a new fact the
figures can only fall as the rolling window slides (accumulated points count from a fixed day),
while floor and ceiling do not move; so a member settled at L stays settled at T. A new
programme settings version (in force at T but not at L, or saved since the last runs) can move
any threshold: that day every active member is visited (the full pass), as on the first run and
on a run for a day before the last one (``--date`` in the past).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Column, Text, func, select, union
from sqlmodel import Field, SQLModel

from .. import clock
from ..db import UTCDateTime
from .ledger import PointsKind
from .models import CardAccount, MemberEvent, Membership, PointsEntryRow, ProgrammeVersion, Purchase
from .rules import add_months


class DailyJobState(SQLModel, table=True):
    """The membership daily job's last day run to the end (no member failed) and the id marks of
    the facts its runs had seen (JSON: table -> id); one row (id 1)."""

    __tablename__ = "daily_job_state"

    id: int = Field(default=1, primary_key=True)
    last_day: date
    floor_marks: str = Field(sa_column=Column(Text, nullable=False))
    ceiling_marks: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


# The facts whose new rows make their member due, by the table's id.
MARKED = {"member_event": MemberEvent, "points_entry": PointsEntryRow, "purchase": Purchase,
          "membership": Membership, "card_account": CardAccount, "programme_version": ProgrammeVersion}


@dataclass
class Plan:
    day: date
    full: str | None                 # why every active member is visited, or None (narrowed)
    ids: list[int]
    since: date | None = None        # the last day run to the end (None: no run yet)
    marks: dict[str, int] = field(default_factory=dict)       # this run's marks (read first)
    seen: tuple | None = None        # the state as read: (last_day, ceiling marks JSON)


def marks_now(s) -> dict[str, int]:
    return {name: int(s.scalar(select(func.max(model.id))) or 0) for name, model in MARKED.items()}


def _lapse_base_upto(day: date, months: int) -> date:
    """The latest base day (last purchase or joining) lapsed on ``day``: ``add_months`` is monotone
    but clamps month ends, so step from its inverse."""
    b = add_months(day, -months) + timedelta(days=4)
    while add_months(b, months) > day:
        b -= timedelta(days=1)
    return b


def _settings_version(s, day: date) -> int | None:
    return s.scalar(select(ProgrammeVersion.id).where(ProgrammeVersion.effective_from <= day)
                    .order_by(ProgrammeVersion.effective_from.desc()).limit(1))


def active_ids(s) -> list[int]:
    return list(s.scalars(select(Membership.id).where(Membership.status == "active").order_by(Membership.id)))


def due_ids(s, since: date, today: date, floor: dict[str, int], lapse_months: int) -> list[int]:
    """The active members with something to do on ``today`` after a run to the end on ``since``."""
    M, A, P, E, U = Membership, CardAccount, PointsEntryRow, MemberEvent, Purchase
    f = {name: int(floor.get(name, 0)) for name in MARKED}
    by_account = select(A.membership_id).where(A.id.in_(
        select(P.account_id).where(P.kind.in_([k.value for k in PointsKind]), P.points > 0,
                                   P.expires_on > since, P.expires_on <= today)))
    lo, hi = _lapse_base_upto(since, lapse_months), _lapse_base_upto(today, lapse_months)
    parts = [
        by_account,                                                                    # a lot expires
        select(M.id).where(M.last_purchase_on > lo, M.last_purchase_on <= hi),        # lapse day
        select(M.id).where(M.last_purchase_on.is_(None), M.joined_on > lo, M.joined_on <= hi),
        select(A.membership_id).where(A.expires_on > since, A.expires_on <= today),   # validity end
        select(U.membership_id).where(U.purchased_on > since, U.purchased_on <= today,
                                      U.membership_id.is_not(None)),
        # facts written since the marks
        select(E.membership_id).where(E.id > f["member_event"]),
        select(A.membership_id).where(A.id.in_(select(P.account_id).where(P.id > f["points_entry"]))),
        select(U.membership_id).where(U.id > f["purchase"], U.membership_id.is_not(None)),
        select(M.id).where(M.customer_id.in_(select(U.customer_id).where(U.id > f["purchase"],
                                                                        U.customer_id.is_not(None)))),
        select(M.id).where(M.id > f["membership"]),
        select(A.membership_id).where(A.id > f["card_account"]),
    ]
    due = union(*parts).subquery()
    return list(s.scalars(select(M.id).where(M.id.in_(select(due.c[0])), M.status == "active").order_by(M.id)))


def plan(s, today: date, *, full: bool = False) -> Plan:
    """The state, then the marks, then the members to visit (in this order: on PostgreSQL each
    statement sees what is committed when it starts, so the members found include every fact
    below the marks, and a run that finished after the state was read makes ``finish`` a no-op)."""
    st = s.get(DailyJobState, 1)
    marks = marks_now(s)
    p = Plan(day=today, full=None, ids=[], marks=marks)
    if st is not None:
        p.since, p.seen = st.last_day, (st.last_day, st.ceiling_marks)
    floor = json.loads(st.floor_marks) if st is not None else {}
    if full:
        p.full = "asked for"
    elif st is None:
        p.full = "first run"
    elif today < st.last_day:
        p.full = f"a day before the last run ({st.last_day.isoformat()})"
    elif (_settings_version(s, st.last_day) != _settings_version(s, today)
          or marks["programme_version"] > int(floor.get("programme_version", 0))):
        p.full = "new programme settings"
    if p.full:
        p.ids = active_ids(s)
        return p
    from .programme import settings_on
    p.ids = due_ids(s, st.last_day, today, floor, settings_on(s, today).lapse_after_months)
    return p


def finish(s, p: Plan) -> bool:
    """Record a run to the end on ``p.day`` unless another run moved the state meanwhile (a run
    that lost that race leaves a state that makes the next run visit more, never less). The new
    floor is the ceiling of the run before: the marks seen at the start of the last run."""
    st = s.get(DailyJobState, 1, with_for_update=True, populate_existing=True)
    now = clock.now()
    ceiling = json.dumps(p.marks, sort_keys=True)
    if st is None:
        if p.seen is not None:
            return False
        from ..upsert import insert_for  # two first runs at once: the second inserts nothing
        done = s.execute(insert_for(s)(DailyJobState.__table__).values(
            id=1, last_day=p.day, floor_marks=ceiling, ceiling_marks=ceiling, updated_at=now)
            .on_conflict_do_nothing(index_elements=["id"]))
        return bool(done.rowcount)
    if p.seen != (st.last_day, st.ceiling_marks) or p.day < st.last_day:
        return False
    st.last_day, st.floor_marks, st.ceiling_marks, st.updated_at = p.day, st.ceiling_marks, ceiling, now
    return True
