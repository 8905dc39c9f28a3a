"""The follow-up visits due (seed 001 六.1), read by walking indexes in due order.

A member is due a scheduled visit when their tier's interval (a leader's versioned setting, read
at the time of the request) has passed since ``membership.visit_base_on`` (their last visit, or
their joining day while there is none; kept where visits are recorded and memberships start or
restart). A setting or a tier change therefore moves who is due at once, with nothing to
recompute. A closed complaint with no visit yet, and a large purchase (within the last
LOOKBACK_DAYS) with no visit yet, are due ``follow_up_days`` after.

The scheduled visits are one index walk per (scope arm, tier): the owner's members, or one led
unit's (``ix_membership_visit_owner`` / ``ix_membership_visit_unit``: status, tier, the base
day, the file id), each in base-day order, limited and read from the index alone; an outer query
orders their union by due day and file number before its limit, joining each walked member's
file by its key. So the list is earliest first over every member in scope, not only over the
rows fetched, and costs what its rows cost, not the number of members in scope.
(Every walk returns its ``limit`` earliest rows, so no member left out is due before one
shown.) The large purchases are walked the same way, per scope arm, in (day, file number) order
from ``purchase_follow_up`` (follow_ups.py: the few purchases that may be large, with copies of
their file's owner, unit and number), each checked against its purchase and the threshold in force
that day, never by finding every large purchase of the company first. The complaints that make a
visit due are read earliest first before their limit too. The home page's figure is bounded the
same way: counted up to COUNT_CAP.

Each statement is built once per shape of the scope and schedule, with bound values, and run on
the driver's cursor (driver_sql.Prebuilt): a page pays for its rows, not for building SQL.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import (Date, Integer, bindparam, exists, false, func, literal_column, or_, select, true, union,
                        union_all)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..driver_sql import Prebuilt
from ..sql_hints import no_index as _no_index
from ..membership.models import Membership, Purchase, PurchaseFollowUp
from ..membership.rules import PROGRAMME_TZ, programme_today
from ..org.models import OrgUnit
from ..policy import Action
from ..policy.actions import Relation
from ..policy.scope import SCOPE_HI, SCOPE_LO, arm_clause, arm_values, scope_shape
from .follow_ups import LOOKBACK_DAYS
from .models import Complaint, MemberVisit
from .settings import settings_on

COUNT_CAP = 100  # the home page counts this many at most (and shows "99+")
_M = Membership
_P = PurchaseFollowUp


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


# ---------------------------------------------------------------- SQL pieces

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


def _bind(name: str, type_=None):
    return bindparam(name, type_=type_, required=True)


_LIM = "lim"
_UNITS = Prebuilt(select(OrgUnit.path).where(OrgUnit.path >= _bind("lo"), OrgUnit.path < _bind("hi")))


@dataclass(frozen=True)
class _Shape:
    what: str  # scheduled | scheduled_count | member | complaints | purchases (+ _count, _member)
    rels: tuple | None  # the scope's relations (LED as ("led", number of units) for the walks); None: all
    grant_scopes: tuple[str, ...]
    every: tuple[tuple[str, int], ...] = ()  # (tier, days) of the tiers with a schedule


_STATEMENTS: dict[_Shape, Prebuilt] = {}


def _statement(shape: _Shape) -> Prebuilt:
    stmt = _STATEMENTS.get(shape)
    if stmt is None:
        if len(_STATEMENTS) > 256:
            _STATEMENTS.clear()
        kind = shape.what.split("_")[0]
        build = {"scheduled": _scheduled_sql, "member": _member_sql, "complaints": _complaints_sql,
                 "purchases": _purchases_sql}[kind]
        stmt = _STATEMENTS[shape] = Prebuilt(build(shape))
    return stmt


def _scope(shape: _Shape, *, owner, unit_path, file_id, per_unit: bool = False) -> list:
    """The scope's disjuncts over the given columns, values bound (policy.scope.arm_values); a led
    subtree as one range, or (``per_unit``, for the walks) one equality per unit."""
    if shape.rels is None:
        return [true()]
    arms = []
    for rel in shape.rels:
        if isinstance(rel, tuple) and per_unit:
            arms += [unit_path == _bind(f"unit{i}") for i in range(rel[1])]
        else:
            rel = Relation.LED if isinstance(rel, tuple) else rel
            arms.append(arm_clause(rel, shape.grant_scopes, owner=owner, unit_path=unit_path, file_id=file_id))
    return arms


# ---------------------------------------------------------------- the statements

def _walks(shape: _Shape):
    """The union of the walks: per (arm, tier) the ``lim`` members due earliest by the day asked
    (``cut_<tier>``: that day less the tier's interval), each with its due day, read from the
    index alone (ix_membership_visit_owner / _unit)."""
    arms = _scope(shape, owner=_M.owner_id, unit_path=_M.unit_path, file_id=_M.customer_id, per_unit=True) or [false()]
    walks = [select(_M.customer_id, _M.tier, _M.visit_base_on, _plus(_M.visit_base_on, days).label("due"))
             .where(arm, _M.status == "active", _M.tier == tier, _M.visit_base_on <= _bind(f"cut_{tier}", Date))
             .order_by(_M.visit_base_on, _M.customer_id).limit(_bind(_LIM, Integer)).subquery()
             for arm in arms for tier, days in shape.every]
    return union_all(*(select(*w.c) for w in walks))


def _scheduled_sql(shape: _Shape):
    if shape.what == "scheduled_count":
        walks = _walks(shape).subquery()
        return select(func.count(func.distinct(walks.c.customer_id)))
    u = _walks(shape).cte("walks")
    # The lim-th earliest due day among the walks (none: fewer rows than lim): the members due
    # by then, ordered by due day and file number, are the list; only that day's ties are extra.
    # (The walks' rows drive the join: each file read by its key, never a scan of the members.)
    cutoff = select(u.c.due).order_by(u.c.due).offset(_bind(_LIM, Integer) - 1).limit(1).scalar_subquery()
    return (select(u.c.customer_id, CustomerFile.file_no, u.c.tier, u.c.due).distinct()
            .join_from(u, CustomerFile, CustomerFile.id == u.c.customer_id)
            .where(u.c.due <= func.coalesce(cutoff, u.c.due))
            .order_by(u.c.due, CustomerFile.file_no).limit(_bind(_LIM, Integer)))


def _member_sql(shape: _Shape):
    """One member's membership (their own page), within the scope."""
    arms = _scope(shape, owner=_M.owner_id, unit_path=_M.unit_path, file_id=_M.customer_id)
    return (select(_M.customer_id, CustomerFile.file_no, _M.tier, _M.visit_base_on)
            .join(CustomerFile, CustomerFile.id == _M.customer_id)
            .where(_M.customer_id == _bind("customer", _M.__table__.c.customer_id.type), _M.status == "active",
                   or_(*arms) if arms else false()))


def _follow_up(shape: _Shape, q, order, customer_col):
    if shape.what.endswith("_member"):
        q = q.where(customer_col == _bind("customer", customer_col.type))
    if shape.what.endswith("_count"):
        return select(func.count()).select_from(q.limit(_bind(_LIM, Integer)).subquery())
    return q.order_by(*order).limit(_bind(_LIM, Integer))  # earliest first before the limit


def _complaints_sql(shape: _Shape):
    """Closed complaints without a visit yet, closed before ``closed_before``."""
    arms = _scope(shape, owner=CustomerFile.owner_id, unit_path=CustomerFile.unit_path, file_id=CustomerFile.id)
    q = (select(Complaint.customer_id, CustomerFile.file_no, _M.tier, Complaint.id, Complaint.closed_at)
         .join(CustomerFile, CustomerFile.id == Complaint.customer_id)
         .outerjoin(_M, _M.customer_id == Complaint.customer_id)
         .where(or_(*arms) if arms else false(), Complaint.status == "closed",
                Complaint.closed_at < _bind("closed_before", Complaint.__table__.c.closed_at.type),
                ~exists().where(MemberVisit.complaint_id == Complaint.id)))
    return _follow_up(shape, q, (Complaint.closed_at, CustomerFile.file_no), Complaint.customer_id)


def _purchases_sql(shape: _Shape):
    """Large purchases (``min_fen`` or more) from ``from_day`` to ``to_day`` without a visit yet, from
    purchase_follow_up (follow_ups.py): per scope arm (the owner's, one led unit's, a grant's files,
    everyone's) the ``lim`` earliest by (day, file number), an index walk that stops there, each
    purchase read by its key to check it is still complete and large; their union (a purchase in two
    arms once) in that order before its limit. One member's: their rows within the scope."""
    one = shape.what.endswith("_member")
    arms = _scope(shape, owner=_P.owner_id, unit_path=_P.unit_path, file_id=_P.customer_id, per_unit=not one)
    if one and arms:
        arms = [or_(*arms)]
    order = (_P.purchased_on, _P.file_no, _P.purchase_id)
    min_fen = _bind("min_fen", Integer)

    def walk(arm):
        q = (select(_P.customer_id, _P.file_no, _P.purchase_id, _P.purchased_on)
             .join(Purchase, Purchase.id == _P.purchase_id)
             .where(arm, _P.purchased_on >= _bind("from_day", Date), _P.purchased_on <= _bind("to_day", Date),
                    _P.paid_total_fen >= min_fen,
                    _no_index(Purchase.status) == "complete", _no_index(Purchase.paid_total_fen) >= min_fen,
                    ~exists().where(MemberVisit.purchase_id == _P.purchase_id)))
        if one:
            q = q.where(_P.customer_id == _bind("customer", _P.__table__.c.customer_id.type))
        return q.order_by(*order).limit(_bind(_LIM, Integer)).subquery()

    walks = [walk(arm) for arm in arms or [false()]]
    u = (walks[0] if len(walks) == 1 else union(*(select(*w.c) for w in walks)).subquery())
    if shape.what.endswith("_count"):
        return select(func.count()).select_from(select(u.c.purchase_id).limit(_bind(_LIM, Integer)).subquery())
    return (select(u.c.customer_id, u.c.file_no, _M.tier, u.c.purchase_id, u.c.purchased_on)
            .outerjoin_from(u, _M, _M.customer_id == u.c.customer_id)
            .order_by(u.c.purchased_on, u.c.file_no, u.c.purchase_id).limit(_bind(_LIM, Integer)))


# ---------------------------------------------------------------- reading them

class _Reader:
    """The actor's scope (its shape and values, read once) and the settings in force on the day."""

    def __init__(self, s: Session, actor: Actor, today: date):
        self.conn = s.connection()
        self.st = settings_on(s, today)  # the settings in force that day
        self.every = tuple((t, d) for t, d in sorted(self.st.visit_every_days.items()) if d > 0 and t.isalnum())
        shape = scope_shape(actor, Action.VISIT_VIEW)
        self.rels, self.grant_scopes, self.params = None, (), {}
        if shape is not None:
            self.rels, self.grant_scopes = shape
            self.params = arm_values(actor)
        self.empty = self.rels is not None and not self.rels
        self.paths: list[str] | None = None  # the led units' paths, read once

    def run(self, what: str, params: dict, *, per_unit: bool = False) -> list[tuple]:
        rels = self.rels
        params = {**self.params, **params}
        if per_unit and rels is not None and Relation.LED in rels:
            if self.paths is None:
                self.paths = [p for (p,) in _UNITS.all(self.conn, {"lo": params[SCOPE_LO], "hi": params[SCOPE_HI]})]
            paths = self.paths
            params.update({f"unit{i}": p for i, p in enumerate(paths)})
            rels = tuple(("led", len(paths)) if rel is Relation.LED else rel for rel in rels)
        every = self.every if what.startswith(("scheduled", "member")) else ()
        return _statement(_Shape(what, rels, self.grant_scopes, every)).all(self.conn, params)

    def scheduled(self, until: date, lim: int, what: str = "scheduled") -> list[tuple]:
        if self.empty or not self.every:
            return []
        cuts = {f"cut_{t}": until - timedelta(days=d) for t, d in self.every}
        return self.run(what, {_LIM: lim, **cuts}, per_unit=True)

    def follow_ups(self, what: str, today: date, until: date, lim: int, extra: dict) -> tuple[list, list]:
        if self.empty:
            return [], []
        st = self.st
        complaints = self.run(f"complaints{what}", {
            _LIM: lim, "closed_before": _midnight_utc(until - timedelta(days=st.follow_up_days - 1)), **extra})
        purchases = self.run(f"purchases{what}", {
            _LIM: lim, "min_fen": st.large_purchase_fen, "from_day": today - timedelta(days=LOOKBACK_DAYS),
            "to_day": until - timedelta(days=st.follow_up_days), **extra}, per_unit=not extra)
        return complaints, purchases


def due_visits(s: Session, actor: Actor, *, today: date | None = None, ahead_days: int = 14,
               customer_id: uuid.UUID | None = None, limit: int = 300) -> list[DueVisit]:
    """Visits due by ``today + ahead_days`` in the actor's scope, earliest first (by due day, then
    file number), at most ``limit``. Audited (the whole list; one member's is part of their page)."""
    today = today or programme_today()
    until = today + timedelta(days=ahead_days)
    r = _Reader(s, actor, today)
    every, follow = dict(r.every), timedelta(days=r.st.follow_up_days)
    if customer_id is None:
        members = r.scheduled(until, limit)
        # A full list ends on the day its last scheduled visit is due: a follow-up due after it
        # would not be shown, so none is read.
        last = members[-1][3] if len(members) >= limit else until
        complaints, purchases = r.follow_ups("", today, min(until, last), limit, {})
    else:
        one = {"customer": customer_id}
        members = [] if r.empty or not every else r.run("member", one)
        members = [(cid, file_no, tier, base + timedelta(days=every[tier])) for cid, file_no, tier, base in members
                   if tier in every and base is not None and base + timedelta(days=every[tier]) <= until]
        complaints, purchases = r.follow_ups("_member", today, until, limit, one)
    out = [DueVisit(cid, file_no, tier, "schedule", None, due_on) for cid, file_no, tier, due_on in members]
    out += [DueVisit(cid, file_no, tier or "", "complaint", ref, closed_at.astimezone(PROGRAMME_TZ).date() + follow)
            for cid, file_no, tier, ref, closed_at in complaints]
    out += [DueVisit(cid, file_no, tier or "", "purchase", ref, on + follow)
            for cid, file_no, tier, ref, on in purchases]
    out.sort(key=lambda v: (v.due_on, v.file_no))
    out = out[:limit]
    if customer_id is None:
        audit.record(s, actor, Action.VISIT_VIEW.value, object_type="list", object_id="due_visits",
                     detail=f"{len(out)} rows")
    return out


def due_count(s: Session, actor: Actor, today: date, cap: int = COUNT_CAP) -> int:
    """How many visits are due today or earlier (the home page's figure), counted up to ``cap``:
    each part a walk that stops there."""
    r = _Reader(s, actor, today)
    [(n,)] = r.scheduled(today, cap, "scheduled_count") or [(0,)]
    if n < cap:
        complaints, purchases = r.follow_ups("_count", today, today, cap, {})
        n += complaints[0][0] + purchases[0][0] if complaints else 0
    return min(n, cap)
