"""A report as pages and exports see it: tables of figures, charts of the same figures, and the
small-group rule (a count below 3, and any sum over fewer than 3 members, is suppressed)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import ColumnElement, false, select, union_all

from ..accounts.actor import Actor
from ..customers.models import CustomerFile
from ..membership.models import Membership
from ..policy import Action
from ..policy.scope import member_scope, scope_arms, subtree_range
from .filters import ReportFilter



def _(message: str) -> str:
    """Marks a msgid for extraction; the page and the export translate it when shown."""
    return message


SMALL_GROUP = 3  # groups of fewer members than this could single a person out
# Column kinds: text (a label), count (people: suppressed below 3), int (events, points), fen (money),
# pct (per mille, shown as a percentage), x100 (hundredths, shown as a decimal), date, month.
NUMERIC = ("count", "int", "fen", "pct", "x100")


@dataclass
class Col:
    key: str
    label: str          # a msgid, translated when shown
    kind: str = "int"


@dataclass
class Table:
    key: str
    title: str          # a msgid
    cols: list[Col]
    rows: list[dict[str, Any]]
    note: str = ""      # a msgid
    translate: tuple[str, ...] = ()   # text columns whose values are msgids (tiers, causes, kinds)


@dataclass
class Chart:
    key: str
    title: str          # a msgid
    kind: str           # bar | line | pie | stack
    categories: list[str]
    series: list[tuple[str, list[Any]]]   # (name msgid, values; None = suppressed)
    money: bool = False  # values are fen (shown as yuan)


@dataclass
class Report:
    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)


def suppress(rows: list[dict], cols: list[Col], basis: str = "members") -> list[dict]:
    """Rows whose ``basis`` (distinct members) is 1 or 2 lose every figure (None, shown "<3"); a
    count column below 3 is suppressed on its own too. Zero stays zero: nobody is singled out."""
    for row in rows:
        n = row.get(basis)
        small = n is not None and 0 < n < SMALL_GROUP
        for c in cols:
            if c.kind not in NUMERIC or row.get(c.key) is None:
                continue
            if small or (c.kind == "count" and 0 < row[c.key] < SMALL_GROUP):
                row[c.key] = None
        if small:
            row["_suppressed"] = True
    return rows


def member_filters(actor: Actor, f: ReportFilter, *, action: Action = Action.REPORT_VIEW) -> list[ColumnElement]:
    """WHERE clauses over ``Membership``: the policy's scope, then the unit, tier and category."""
    conds: list[ColumnElement] = [member_scope(actor, action)]
    if f.unit is not None:
        lo, hi = subtree_range(f.unit.path)
        conds += [Membership.unit_path >= lo, Membership.unit_path < hi]
    if f.tier:
        conds.append(Membership.tier == f.tier)
    if f.category:
        conds.append(Membership.customer_id.in_(
            select(CustomerFile.id).where(CustomerFile.category == f.category)))
    return conds


def members_driving(actor: Actor, f: ReportFilter, *, action: Action = Action.REPORT_VIEW,
                    tier: bool = True) -> list[ColumnElement]:
    """``member_filters`` as ``Membership.id IN (one indexed SELECT per arm of the policy's scope,
    UNION ALL)``, for the queries that join a large table of facts (purchases, points, events) to
    the members: the database then starts from the members in scope (the owner's index, the
    unit path's range) and looks up each one's facts, so a leader's report costs in proportion
    to their members, not to the whole company's facts in the period. Same rows as
    ``member_filters``; ``tier=False`` leaves out the tier filter (tiers over time)."""
    extra = member_filters(actor, f if tier else replace(f, tier=""), action=action)[1:]
    arms = scope_arms(actor, action, owner=Membership.owner_id, unit_path=Membership.unit_path,
                      file_id=Membership.customer_id)
    if arms is None:
        return [Membership.id.in_(select(Membership.id).where(*extra))] if extra else []
    if not arms:
        return [false()]
    ids = [select(Membership.id).where(arm, *extra) for _rel, arm in arms]
    return [Membership.id.in_(ids[0] if len(ids) == 1 else union_all(*ids))]


def scoped_members(actor: Actor, f: ReportFilter):
    """A subquery of the ids of the memberships in the report's scope."""
    return select(Membership.id).where(*member_filters(actor, f)).scalar_subquery()


def per_mille(part: int | None, whole: int | None) -> int | None:
    if not whole:
        return None
    return round(1000 * (part or 0) / whole)


def file_filters(actor: Actor, f: ReportFilter, *, action: Action = Action.REPORT_VIEW) -> list[ColumnElement]:
    """WHERE clauses over ``CustomerFile`` (for facts kept per file, not per membership: sales on
    credit, complaints, visits): the policy's scope, then the unit, tier and category."""
    from ..policy import customer_scope
    conds: list[ColumnElement] = [customer_scope(actor, action)]
    if f.unit is not None:
        lo, hi = subtree_range(f.unit.path)
        conds += [CustomerFile.unit_path >= lo, CustomerFile.unit_path < hi]
    if f.tier:
        conds.append(CustomerFile.id.in_(select(Membership.customer_id).where(Membership.tier == f.tier)))
    if f.category:
        conds.append(CustomerFile.category == f.category)
    return conds
