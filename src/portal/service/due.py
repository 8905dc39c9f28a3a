"""The follow-up visits due (seed 001 六.1), read by walking indexes in due order.

A member is due a scheduled visit when their tier's interval (a leader's versioned setting, read
at the time of the request) has passed since ``membership.visit_base_on`` (their last visit, or
their joining day while there is none; kept where visits are recorded and memberships start or
restart). A setting or a tier change therefore moves who is due at once, with nothing to
recompute. A closed complaint with no visit yet, and a large purchase (within the last
LOOKBACK_DAYS) with no visit yet, are due ``follow_up_days`` after.

The scheduled visits are one index walk per (scope arm, tier): the owner's members, or one led
unit's (``ix_membership_visit_owner`` / ``ix_membership_visit_unit``: status, tier, then the
base day), each in base-day order and limited; an outer query orders their union by due day and
file number before its limit. So the list is earliest first over every member in scope, not
only over the rows fetched, and costs what its rows cost, not the number of members in scope.
(Every walk returns its ``limit`` earliest rows, so no member left out is due before one
shown.) The home page's figure is bounded the same way: counted up to COUNT_CAP.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import Date, Integer, bindparam, case, exists, func, literal_column, select, true, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..driver_sql import Prebuilt
from ..membership.models import Membership, Purchase
from ..membership.rules import PROGRAMME_TZ, programme_today
from ..org.models import OrgUnit
from ..policy import Action, customer_scope
from ..policy.actions import Relation
from ..policy.scope import SCOPE_HI, SCOPE_LO, SCOPE_USER, arm_clause, arm_values, member_scope, scope_shape
from .models import Complaint, MemberVisit
from .settings import ServiceSettings, settings_on

LOOKBACK_DAYS = 90  # large purchases older than this no longer make a visit due
COUNT_CAP = 100  # the home page counts this many at most (and shows "99+")
_M = Membership


@dataclass(frozen=True)
class DueVisit:
    customer_id: uuid.UUID
    file_no: str
    tier: str
    reason: str
    ref: int | None  # the complaint's or the purchase's id
    due_on: date


def _midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time(), PROGRAMME_TZ).astimezone(timezone.utc)


class _plus_days(FunctionElement):
    """A date plus a whole number of days (a constant), in each database's words."""

    type = Date()
    name = "plus_days"
    inherit_cache = True


@compiles(_plus_days)
def _plus_days_default(element, compiler, **kw):
    col, days = list(element.clauses)
    return f"({compiler.process(col, **kw)} + {compiler.process(days, **kw)})"  # date + integer


@compiles(_plus_days, "sqlite")
def _plus_days_sqlite(element, compiler, **kw):
    col, days = list(element.clauses)
    return f"date({compiler.process(col, **kw)}, '+{compiler.process(days, **kw)} days')"


def _plus(col, days: int):
    return _plus_days(col, literal_column(str(int(days)), Integer))


@dataclass(frozen=True)
class _Shape:
    arms: tuple | None  # OWN, ("led", number of units), GRANTED; None: every member
    grant_scopes: tuple[str, ...]
    every: tuple[tuple[str, int], ...]  # (tier, days) with a schedule


_STATEMENTS: dict[tuple[_Shape, str], Prebuilt] = {}
_UNITS = Prebuilt(select(OrgUnit.path).where(OrgUnit.path >= bindparam("lo", required=True),
                                             OrgUnit.path < bindparam("hi", required=True)))


def _arms(shape: _Shape) -> list:
    """The scope over memberships as walkable disjuncts: the actor's own members, and each unit
    of a led subtree as an equality (a range of units cannot be walked in base-day order)."""
    if shape.arms is None:
        return [true()]
    arms = []
    for rel in shape.arms:
        if rel is Relation.OWN:
            arms.append(_M.owner_id == bindparam(SCOPE_USER, required=True))
        elif isinstance(rel, tuple):
            arms += [_M.unit_path == bindparam(f"unit{i}", required=True) for i in range(rel[1])]
        else:  # grants: a handful of files, found by id
            arms.append(arm_clause(rel, shape.grant_scopes, owner=_M.owner_id, unit_path=_M.unit_path,
                                   file_id=_M.customer_id))
    return arms


def _walks(shape: _Shape):
    """The union of the walks: per (arm, tier) the ``lim`` members due earliest by the day asked
    (``cut_<tier>``: that day less the tier's interval), each with its due day."""
    walks = [select(_M.id, _plus(_M.visit_base_on, days).label("due"))
             .where(arm, _M.status == "active", _M.tier == tier,
                    _M.visit_base_on <= bindparam(f"cut_{tier}", type_=Date, required=True))
             .order_by(_M.visit_base_on, _M.id).limit(bindparam("lim", type_=Integer, required=True)).subquery()
             for arm in _arms(shape) for tier, days in shape.every]
    return union_all(*(select(w.c.id, w.c.due) for w in walks))


def _list_statement(shape: _Shape):
    u = _walks(shape).cte("walks")
    # The lim-th earliest due day among the walks (none: fewer rows than lim): the members due
    # by then, ordered by due day and file number, are the list; only that day's ties are extra.
    lim = bindparam("lim", type_=Integer, required=True)
    cutoff = select(u.c.due).order_by(u.c.due).offset(lim - 1).limit(1).scalar_subquery()
    ids = select(u.c.id).where(u.c.due <= func.coalesce(cutoff, u.c.due))
    due = case({t: _plus(_M.visit_base_on, d) for t, d in shape.every}, value=_M.tier)
    return (select(_M.customer_id, CustomerFile.file_no, _M.tier, _M.visit_base_on)
            .join(CustomerFile, CustomerFile.id == _M.customer_id)
            .where(_M.id.in_(ids))
            .order_by(due, CustomerFile.file_no).limit(lim))


def _count_statement(shape: _Shape):
    walks = _walks(shape).subquery()
    return select(func.count(func.distinct(walks.c.id)))


def _prepared(s: Session, actor: Actor, st: ServiceSettings, until: date, lim: int, kind: str):
    """The prebuilt statement for the actor's scope and the schedule, and its values; None when
    nobody can be due (no tier has a schedule, or the scope is empty)."""
    every = tuple((t, d) for t, d in sorted(st.visit_every_days.items()) if d > 0 and t.isalnum())
    scope = scope_shape(actor, Action.VISIT_VIEW)
    if not every or scope is not None and not scope[0]:
        return None
    params: dict[str, object] = {"lim": lim} | {f"cut_{t}": until - timedelta(days=d) for t, d in every}
    arms, grant_scopes = None, ()
    if scope is not None:
        rels, grant_scopes = scope
        params.update(arm_values(actor))
        arms = []
        for rel in rels:
            if rel is Relation.LED:
                paths = [p for (p,) in _UNITS.all(s.connection(), {"lo": params[SCOPE_LO], "hi": params[SCOPE_HI]})]
                params.update({f"unit{i}": p for i, p in enumerate(paths)})
                arms.append(("led", len(paths)))
            else:
                arms.append(rel)
        arms = tuple(arms)
    shape = _Shape(arms, grant_scopes, every)
    stmt = _STATEMENTS.get((shape, kind))
    if stmt is None:
        if len(_STATEMENTS) > 256:
            _STATEMENTS.clear()
        build = _list_statement if kind == "list" else _count_statement
        stmt = _STATEMENTS[(shape, kind)] = Prebuilt(build(shape))
    return stmt, params, dict(every)


def _scheduled(s: Session, actor: Actor, st: ServiceSettings, until: date, lim: int) -> list[DueVisit]:
    prepared = _prepared(s, actor, st, until, lim, "list")
    if prepared is None:
        return []
    stmt, params, every = prepared
    return [DueVisit(cid, file_no, tier, "schedule", None, base + timedelta(days=every[tier]))
            for cid, file_no, tier, base in stmt.all(s.connection(), params)]


def _after_complaints(actor: Actor, st: ServiceSettings, until: date):
    return (select(Complaint.customer_id, CustomerFile.file_no, _M.tier, Complaint.id, Complaint.closed_at)
            .join(CustomerFile, CustomerFile.id == Complaint.customer_id)
            .outerjoin(_M, _M.customer_id == Complaint.customer_id)
            .where(customer_scope(actor, Action.VISIT_VIEW), Complaint.status == "closed",
                   Complaint.closed_at < _midnight_utc(until - timedelta(days=st.follow_up_days - 1)),
                   ~exists().where(MemberVisit.complaint_id == Complaint.id)))


class _no_index(ColumnElement):
    """A column no index may serve (SQLite's unary +; elsewhere the column itself): the large
    purchases are found by amount (ix_purchase_visit_due: the few at or above the threshold, not
    every purchase of the last 90 days), and each joined to its file for the scope, rather than
    every file of a salesperson's searched for purchases."""

    inherit_cache = True

    def __init__(self, column):
        self.column = column
        self.type = column.type


@compiles(_no_index)
def _no_index_default(element, compiler, **kw):
    return compiler.process(element.column, **kw)


@compiles(_no_index, "sqlite")
def _no_index_sqlite(element, compiler, **kw):
    return "+" + compiler.process(element.column, **kw)


def _after_purchases(actor: Actor, st: ServiceSettings, today: date, until: date):
    return (select(Purchase.customer_id, CustomerFile.file_no, _M.tier, Purchase.id, Purchase.purchased_on)
            .join(CustomerFile, CustomerFile.id == Purchase.customer_id)
            .outerjoin(_M, _M.customer_id == Purchase.customer_id)
            .where(customer_scope(actor, Action.VISIT_VIEW, owner=_no_index(CustomerFile.owner_id),
                                  unit_path=_no_index(CustomerFile.unit_path)), Purchase.status == "complete",
                   Purchase.paid_total_fen >= st.large_purchase_fen,
                   _no_index(Purchase.purchased_on) >= today - timedelta(days=LOOKBACK_DAYS),
                   _no_index(Purchase.purchased_on) <= until - timedelta(days=st.follow_up_days),
                   ~exists().where(MemberVisit.purchase_id == Purchase.id)))


def _of_member(s: Session, actor: Actor, st: ServiceSettings, customer_id: uuid.UUID, until: date) -> list[DueVisit]:
    every = {t: d for t, d in st.visit_every_days.items() if d > 0}
    row = s.execute(select(_M.customer_id, CustomerFile.file_no, _M.tier, _M.visit_base_on)
                    .join(CustomerFile, CustomerFile.id == _M.customer_id)
                    .where(_M.customer_id == customer_id, _M.status == "active",
                           member_scope(actor, Action.VISIT_VIEW))).first()
    if row is None or row.tier not in every or row.visit_base_on is None:
        return []
    due_on = row.visit_base_on + timedelta(days=every[row.tier])
    return [DueVisit(row.customer_id, row.file_no, row.tier, "schedule", None, due_on)] if due_on <= until else []


def due_visits(s: Session, actor: Actor, *, today: date | None = None, ahead_days: int = 14,
               customer_id: uuid.UUID | None = None, limit: int = 300) -> list[DueVisit]:
    """Visits due by ``today + ahead_days`` in the actor's scope, earliest first (by due day, then
    file number), at most ``limit``. Audited (the whole list; one member's is part of their page)."""
    today = today or programme_today()
    st = settings_on(s, today)  # the settings in force that day
    until = today + timedelta(days=ahead_days)
    qc, qp = _after_complaints(actor, st, until), _after_purchases(actor, st, today, until)
    if customer_id is None:
        out = _scheduled(s, actor, st, until, limit)
    else:
        out = _of_member(s, actor, st, customer_id, until)
        qc, qp = qc.where(Complaint.customer_id == customer_id), qp.where(Purchase.customer_id == customer_id)
    # Each part earliest first before its limit, like the scheduled walks.
    qc = qc.order_by(Complaint.closed_at, CustomerFile.file_no)
    qp = qp.order_by(_no_index(Purchase.purchased_on), CustomerFile.file_no)  # not a scan of every day's
    for cid, file_no, tier, ref, closed_at in s.execute(qc.limit(limit)):
        closed_on = closed_at.astimezone(PROGRAMME_TZ).date()
        out.append(DueVisit(cid, file_no, tier or "", "complaint", ref, closed_on + timedelta(days=st.follow_up_days)))
    for cid, file_no, tier, ref, on in s.execute(qp.limit(limit)):
        out.append(DueVisit(cid, file_no, tier or "", "purchase", ref, on + timedelta(days=st.follow_up_days)))
    out.sort(key=lambda v: (v.due_on, v.file_no))
    out = out[:limit]
    if customer_id is None:
        audit.record(s, actor, Action.VISIT_VIEW.value, object_type="list", object_id="due_visits",
                     detail=f"{len(out)} rows")
    return out


def due_count(s: Session, actor: Actor, today: date, cap: int = COUNT_CAP) -> int:
    """How many visits are due today or earlier (the home page's figure), counted up to ``cap``:
    each part a walk that stops there."""
    st = settings_on(s, today)  # the settings in force that day
    prepared = _prepared(s, actor, st, today, cap, "count")
    n = 0
    if prepared is not None:
        stmt, params, _ = prepared
        [(n,)] = stmt.all(s.connection(), params)
    for q in (_after_complaints(actor, st, today), _after_purchases(actor, st, today, today)):
        if n >= cap:
            break
        n += s.scalar(select(func.count()).select_from(q.limit(cap - n).subquery())) or 0
    return min(n, cap)
