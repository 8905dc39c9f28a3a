"""The VIP card tracking table and card issue list (seed 002: 《VIP卡跟踪表》, 《发卡明细表》): cards
issued, replaced, reported lost, frozen, expired and renewed per month and unit, and who issued each.
For a month, quarter or year the counts come from the card_month summary (card_rollup.py); a
custom period, a category or a scope with single-file grants counts the facts."""
from __future__ import annotations

from sqlalchemy import and_, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from ..accounts.actor import Actor
from ..accounts.models import User
from ..membership.models import CardAccount, MemberCard, MemberEvent, Membership
from ..org.models import OrgUnit
from . import card_rollup, summary_scope
from .filters import ReportFilter
from .model import _, Chart, Col, Report, Table, member_filters, members_driving
from .models import CardIssue as CI, CardMonth as CM
from .sqlfn import SHANGHAI_HOURS, month_of

# member_event kinds -> the tracking table's columns ("expired" comes from the cards' validity).
EVENT_KINDS = {"card_issued": "issued", "replace": "replaced", "loss": "lost", "freeze": "frozen",
               "renew": "renewed", "cancel": "cancelled"}
KINDS = ("issued", "replaced", "lost", "frozen", "expired", "renewed", "cancelled")
KIND_LABELS = {"issued": _("Issued"), "replaced": _("Replaced"), "lost": _("Reported lost"), "frozen": _("Frozen"),
               "expired": _("Expired"), "renewed": _("Renewed"), "cancelled": _("Cancelled")}
ISSUE_LIST_LIMIT = 500


def _facts(actor: Actor, f: ReportFilter):
    """(month, unit path, kind) of every card step in the period, within scope: one UNION ALL."""
    p = f.period
    lo, hi = p.utc_bounds()
    where = members_driving(actor, f)  # start from the members in scope, then their card steps
    events = (select(month_of(MemberEvent.at, SHANGHAI_HOURS).label("month"), Membership.unit_path.label("path"),
                     MemberEvent.kind.label("kind"))
              .join(Membership, Membership.id == MemberEvent.membership_id)
              .where(*where, MemberEvent.kind.in_(list(EVENT_KINDS)), MemberEvent.at >= lo, MemberEvent.at < hi))
    expired = (select(month_of(CardAccount.expires_on).label("month"), Membership.unit_path.label("path"),
                      literal("expired").label("kind"))
               .join(Membership, Membership.id == CardAccount.membership_id)
               .where(*where, CardAccount.expires_on >= p.start, CardAccount.expires_on <= p.end))
    return union_all(events, expired).subquery()


SUMMARY_PERIODS = ("month", "quarter", "year")


def _summary_where(actor: Actor, f: ReportFilter) -> list | None:
    """WHERE clauses over card_month for the filter, or None when the summary cannot answer (a
    custom period, a category, single-file grants): whole months within the owner and unit arms."""
    p = f.period
    if p.kind not in SUMMARY_PERIODS or f.category:
        return None
    arms = summary_scope.scope_arms(actor, CM.owner_id, CM.unit_path)
    if arms is None:
        return None
    months = p.months()
    return [CM.month >= months[0], CM.month <= months[-1], or_(*arms),
            *summary_scope.filters(f, CM.unit_path, CM.tier)]


def cards(s: Session, actor: Actor, f: ReportFilter) -> Report:
    where = _summary_where(actor, f)
    if where is not None:  # from card_month (card_rollup.py)
        cube = [(m, path, k, int(n)) for m, path, k, n in s.execute(
            select(CM.month, CM.unit_path, CM.kind, func.sum(CM.n))
            .where(*where, CM.kind != card_rollup.CARD).group_by(CM.month, CM.unit_path, CM.kind))]
        cube = [row for row in cube if row[3]]
        total = int(s.scalar(select(func.coalesce(func.sum(CM.n), 0)).where(*where, CM.kind == card_rollup.CARD)))
    else:
        facts = _facts(actor, f)
        # One pass over the facts: per (month, unit path, kind); the month and unit tables sum it.
        cube = s.execute(select(facts.c.month, facts.c.path, facts.c.kind, func.count())
                         .group_by(facts.c.month, facts.c.path, facts.c.kind)).all()
        total = None
    grid: dict[tuple[str, str], int] = {}
    by_path: dict[tuple[str, str], int] = {}
    for m, path, k, n in cube:
        grid[(m, EVENT_KINDS.get(k, k))] = grid.get((m, EVENT_KINDS.get(k, k)), 0) + n
        by_path[(path, k)] = by_path.get((path, k), 0) + n
    months = f.period.months()
    cols = [Col("month", _("Month"), "month"), *(Col(k, KIND_LABELS[k], "int") for k in KINDS)]
    per_month = [{"month": m, **{k: grid.get((m, k), 0) for k in KINDS}} for m in months]
    rep = Report("cards", _("Card tracking"))
    rep.tables.append(Table("months", _("Card tracking table per month"), cols, per_month))
    rep.charts.append(Chart("months", _("Card steps per month"), "stack", months,
                            [(KIND_LABELS[k], [r[k] for r in per_month]) for k in KINDS]))

    paths = sorted({path for path, _k in by_path})
    units = {u.path: u for u in s.scalars(select(OrgUnit).where(OrgUnit.path.in_(paths)))} if paths else {}
    rows = sorted((units[path].code, units[path].name, kind, n) for (path, kind), n in by_path.items() if path in units)
    per_unit: dict[str, dict] = {}
    for code, name, kind, n in rows:
        row = per_unit.setdefault(code, {"unit": code, "name": name, **{k: 0 for k in KINDS}})
        row[EVENT_KINDS.get(kind, kind)] += n
    rep.tables.append(Table("units", _("Card tracking table per unit"),
                            [Col("unit", _("Unit"), "text"), Col("name", _("Name"), "text"), *cols[1:]],
                            list(per_unit.values())))

    # The issue list: each card issued or replaced in the period, the unit, and who issued it.
    p = f.period
    issuer = aliased(User)
    old = aliased(MemberCard)
    step = and_(MemberEvent.membership_id == Membership.id, MemberEvent.to_value == MemberCard.number,
                or_(MemberEvent.kind == "card_issued", MemberEvent.kind == "replace"))
    listed = (select(MemberCard.issued_on, MemberCard.number, CardAccount.card_type, OrgUnit.code,
                     func.coalesce(issuer.username, "system"), old.number)
              .join(CardAccount, CardAccount.id == MemberCard.account_id)
              .join(Membership, Membership.id == CardAccount.membership_id)
              .join(OrgUnit, OrgUnit.path == Membership.unit_path)
              .outerjoin(MemberEvent, step).outerjoin(issuer, issuer.id == MemberEvent.actor_id)
              .outerjoin(old, old.id == MemberCard.replaces_id)
              .order_by(MemberCard.issued_on, MemberCard.number))
    arms = None if f.category else summary_scope.scope_arms(actor, CI.owner_id, CI.unit_path)
    if arms is not None:
        # The first cards by (day, number) from card_issue's covering index, the scope tested on
        # the index alone; then the details of those cards only (by id: PostgreSQL would otherwise
        # join every card of the table before keeping these).
        first = list(s.scalars(select(CI.card_id)
                               .where(or_(*arms), *summary_scope.filters(f, CI.unit_path, CI.tier),
                                      CI.issued_on >= p.start, CI.issued_on <= p.end)
                               .order_by(CI.issued_on, CI.number).limit(ISSUE_LIST_LIMIT)))
        q = listed.where(MemberCard.id.in_(first))
    else:
        q = listed.where(*member_filters(actor, f), MemberCard.issued_on >= p.start, MemberCard.issued_on <= p.end)
    if total is None:
        total = s.scalar(select(func.count()).select_from(MemberCard)  # the same cards, without the list's joins
                         .join(CardAccount, CardAccount.id == MemberCard.account_id)
                         .join(Membership, Membership.id == CardAccount.membership_id)
                         .where(*members_driving(actor, f), MemberCard.issued_on >= p.start,
                                MemberCard.issued_on <= p.end))
    issued = [{"issued_on": d, "card": no, "card_type": t, "unit": u, "issued_by": by, "replaces": r or ""}
              for d, no, t, u, by, r in s.execute(q.limit(ISSUE_LIST_LIMIT))]
    rep.tables.append(Table("issued", _("Card issue list"), [
        Col("issued_on", _("Issued on"), "date"), Col("card", _("Card number"), "text"), Col("card_type", _("Card type"), "text"),
        Col("unit", _("Unit"), "text"), Col("issued_by", _("Issued by"), "text"), Col("replaces", _("Replaces card"), "text")],
        issued, note=_("At most 500 cards are listed; the export holds the same.") if total > ISSUE_LIST_LIMIT else ""))
    rep.extra["issued_total"] = total
    return rep
