"""The monthly unit report (seed 002: each counter's member spend, reported to headquarters every
month): spend, new members and cards, tier moves, points and top products of a unit and month;
a leader sends it upward, which freezes the figures with the sender and their SHA-256."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from sqlalchemy import and_, distinct, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..audit import service as audit
from ..membership.models import (CardAccount, MemberCard, MemberEvent, Membership, PointsEntryRow, Purchase,
                                 PurchaseLineRow)
from ..membership.rules import programme_today
from ..org.models import OrgUnit
from ..policy import Action, PermissionDenied, can
from ..policy.scope import subtree_range
from .filters import Period, ReportFilter, UnitChoice, month_period
from .model import _, Chart, Col, Report, Table, member_filters, members_driving, suppress
from . import rollup, summaries
from .models import ReportFlow as RF, ReportMember as RMB, ReportMonth as RM, ReportProduct as RP, SentMonthlyReport
from .rollup import total
from .overview import tier_rank

TOP_PRODUCTS = 10


class ReportError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def monthly(s: Session, actor: Actor, f: ReportFilter) -> Report:
    """The unit's (or, without one, the whole scope's) figures for the filter's period."""
    p = f.period
    where = member_filters(actor, f)
    drive = members_driving(actor, f)  # for the queries that join facts to the members
    lo, hi = p.utc_bounds()
    bought = and_(Purchase.membership_id == Membership.id, Purchase.status == "complete",
                  Purchase.purchased_on >= p.start, Purchase.purchased_on <= p.end)
    # Whole months within the owner and unit arms of the scope: from report_month (rollup.py).
    rolled = rollup.summary_where(actor, f)
    if rolled is not None:
        spend, purchases, buyers, earned, redeemed = (int(v) for v in s.execute(
            select(total(RM.spend_fen), total(RM.purchases), total(rollup.buyers_of(p)), total(RM.points_earned),
                   total(RM.points_redeemed)).where(*rolled)).one())
    else:
        spend, purchases, buyers = s.execute(
            select(func.coalesce(func.sum(Purchase.paid_total_fen), 0), func.count(Purchase.id),
                   func.count(distinct(Purchase.membership_id))).select_from(Membership).join(Purchase, bought)
            .where(*drive)).one()
    # Members as they stand now (report_member), joinings and tier moves (report_flow): summaries.py.
    held = summaries.member_where(actor, f)
    if held is not None:
        members = int(s.scalar(select(total(RMB.members)).where(*held, RMB.status == "active")))
    else:
        members = s.scalar(select(func.count()).select_from(Membership).where(*where, Membership.status == "active"))
    flows = summaries.flow_where(actor, f, "join")
    if flows is not None:
        joined = int(s.scalar(select(total(RF.n)).where(*flows)))
    else:
        joined = s.scalar(select(func.count()).select_from(Membership).where(
            *where, Membership.joined_on >= p.start, Membership.joined_on <= p.end))
    flows = summaries.flow_where(actor, f, "card")
    if flows is not None:
        cards = {a == "new": int(n) for a, n in s.execute(select(RF.a, total(RF.n)).where(*flows).group_by(RF.a))}
    else:
        cards = dict(s.execute(
            select(MemberCard.replaces_id.is_(None), func.count())
            .join(CardAccount, CardAccount.id == MemberCard.account_id)
            .join(Membership, Membership.id == CardAccount.membership_id)
            .where(*where, MemberCard.issued_on >= p.start, MemberCard.issued_on <= p.end)  # from the month's cards
            .group_by(MemberCard.replaces_id.is_(None))).all())
    flows = summaries.flow_where(actor, f, "move")
    if flows is not None:
        moves = {a == "up": int(n) for a, n in s.execute(select(RF.a, total(RF.n)).where(*flows).group_by(RF.a))}
    else:
        up = (tier_rank(MemberEvent.to_value) > tier_rank(MemberEvent.from_value)).label("up")
        moves = dict(s.execute(
            select(up, func.count()).join(Membership, Membership.id == MemberEvent.membership_id)
            .where(*drive, MemberEvent.kind == "tier", MemberEvent.at >= lo, MemberEvent.at < hi)
            .group_by("up")).all())
    if rolled is None:
        pts = dict(s.execute(
            select(PointsEntryRow.kind, func.sum(PointsEntryRow.points))
            .join(CardAccount, CardAccount.id == PointsEntryRow.account_id)
            .join(Membership, Membership.id == CardAccount.membership_id)
            .where(*drive, PointsEntryRow.on >= p.start, PointsEntryRow.on <= p.end)
            .group_by(PointsEntryRow.kind)).all())
        earned, redeemed = sum(pts.get(k, 0) for k in ("earn", "referral", "event")), -pts.get("redeem", 0)
    summary = [
        {"figure": _("Active members"), "value": members},
        {"figure": _("New members"), "value": joined},
        {"figure": _("New cards"), "value": cards.get(True, 0)},
        {"figure": _("Replacement cards"), "value": cards.get(False, 0)},
        {"figure": _("Upgrades"), "value": moves.get(True, 0)},
        {"figure": _("Downgrades"), "value": moves.get(False, 0)},
        {"figure": _("Purchases"), "value": purchases},
        {"figure": _("Buying members"), "value": buyers},
        {"figure": _("Spend"), "value": spend, "_kind": "fen"},
        {"figure": _("Points earned"), "value": earned},
        {"figure": _("Points redeemed"), "value": redeemed},
    ]
    if 0 < buyers < 3:  # the spend of one or two members
        for row in summary:
            if row["figure"] in ("Spend", "Purchases", "Points earned", "Points redeemed"):
                row["value"] = None
    rep = Report("monthly", _("Monthly unit report"))
    rep.tables.append(Table("summary", _("The month's figures"), [Col("figure", _("Figure"), "text"),
                                                                 Col("value", _("Value"), "int")],
                            summary, translate=("figure",)))

    # Per unit: where the spend came from.
    if rolled is not None:
        rows = [(c, n, int(b), int(k), int(v)) for c, n, b, k, v in s.execute(
            select(OrgUnit.code, OrgUnit.name, total(rollup.buyers_of(p)), total(RM.purchases), total(RM.spend_fen))
            .join(OrgUnit, OrgUnit.path == RM.unit_path).where(*rolled)
            .group_by(OrgUnit.code, OrgUnit.name).order_by(OrgUnit.code)).all() if b]
    else:
        rows = s.execute(
            select(OrgUnit.code, OrgUnit.name, func.count(distinct(Purchase.membership_id)), func.count(Purchase.id),
                   func.coalesce(func.sum(Purchase.paid_total_fen), 0))
            .select_from(Membership).join(Purchase, bought).join(OrgUnit, OrgUnit.path == Membership.unit_path)
            .where(*drive).group_by(OrgUnit.code, OrgUnit.name).order_by(OrgUnit.code)).all()
    cols = [Col("unit", _("Unit"), "text"), Col("name", _("Name"), "text"), Col("members", _("Buying members"), "count"),
            Col("purchases", _("Purchases"), "int"), Col("spend", _("Spend"), "fen")]
    units = suppress([{"unit": c, "name": n, "members": b, "purchases": k, "spend": v} for c, n, b, k, v in rows], cols)
    rep.tables.append(Table("units", _("Spend per unit"), cols, units))

    # Top products by money paid.
    if rolled is not None:  # report_product (products.py), within the same scope and months as report_month
        conds = summaries.keyed_where(actor, f, RP.owner_id, RP.unit_path, RP.tier)
        months = p.months()
        paid = total(RP.paid_fen)
        rows = [(n, int(b), int(q), int(v)) for n, b, q, v in s.execute(
            select(RP.product, total(_product_buyers(p)), total(RP.quantity), paid)
            .where(*conds, RP.month >= months[0], RP.month <= months[-1]).group_by(RP.product)
            .order_by(paid.desc(), RP.product).limit(TOP_PRODUCTS)).all()]
    else:
        paid = func.sum(PurchaseLineRow.paid_fen)
        rows = s.execute(
            select(PurchaseLineRow.product, func.count(distinct(Purchase.membership_id)),
                   func.sum(PurchaseLineRow.quantity), paid)
            .select_from(Membership).join(Purchase, bought)
            .join(PurchaseLineRow, PurchaseLineRow.purchase_id == Purchase.id)
            .where(*drive).group_by(PurchaseLineRow.product).order_by(paid.desc(), PurchaseLineRow.product)
            .limit(TOP_PRODUCTS)).all()
    cols = [Col("product", _("Product"), "text"), Col("members", _("Buying members"), "count"),
            Col("quantity", _("Quantity"), "int"), Col("paid", _("Paid"), "fen")]
    top = suppress([{"product": n, "members": b, "quantity": q, "paid": v} for n, b, q, v in rows], cols)
    rep.tables.append(Table("products", _("Top products"), cols, top))
    rep.charts = charts_of(rep)
    return rep


def _product_buyers(period):
    return {"month": RP.buyers, "quarter": RP.first_of_quarter, "year": RP.first_of_year}[period.kind]


def charts_of(rep: Report) -> list[Chart]:
    """The charts, from the tables (so a sent report, frozen as tables, draws the same ones)."""
    units, top = rep.table("units").rows, rep.table("products").rows
    return [Chart("units", _("Spend per unit"), "bar", [r["unit"] for r in units],
                  [(_("Spend"), [r["spend"] for r in units])], money=True),
            Chart("products", _("Top products"), "bar", [r["product"] for r in top],
                  [(_("Paid"), [r["paid"] for r in top])], money=True)]


# ---------------------------------------------------------------- freezing and sending

def body_of(rep: Report, unit: UnitChoice, month: str, sender: str, sent_at: str) -> str:
    """The canonical JSON of the frozen figures (what the hash covers)."""
    return json.dumps({"unit": unit.code, "unit_name": unit.name, "month": month, "sent_by": sender,
                       "sent_at": sent_at, "tables": [asdict(t) for t in rep.tables]},
                      ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def report_from_body(body: str) -> tuple[Report, dict]:
    raw = json.loads(body)
    rep = Report("monthly", _("Monthly unit report"))
    for t in raw["tables"]:
        rep.tables.append(Table(t["key"], t["title"], [Col(**c) for c in t["cols"]], t["rows"], t.get("note", ""),
                                tuple(t.get("translate", ()))))
    rep.charts = charts_of(rep)
    return rep, raw


def valid_month(month: str) -> bool:
    y, _, m = month.partition("-")
    return len(month) == 7 and y.isdigit() and m.isdigit() and 2000 <= int(y) <= 2100 and 1 <= int(m) <= 12


def send(s: Session, actor: Actor, unit: UnitChoice, month: str) -> SentMonthlyReport:
    """Freeze the unit's figures for a month that is over and send them upward (once per unit and month)."""
    if not can(actor, Action.REPORT_SEND, owner_id=-1, unit_path=unit.path):
        raise PermissionDenied(Action.REPORT_SEND, unit.code)
    y, m = (int(x) for x in month.split("-"))
    period: Period = month_period(y, m)
    if period.end >= programme_today():
        raise ReportError("month", _("Only a month that is over can be sent."))
    if s.scalar(select(SentMonthlyReport.id).where(SentMonthlyReport.unit_id == _unit_id(s, unit),
                                                   SentMonthlyReport.month == month)):
        raise ReportError("month", _("This unit's report for that month has already been sent."))
    rep = monthly(s, actor, ReportFilter(period, unit))
    now = clock.now()
    body = body_of(rep, unit, month, actor.username, now.isoformat(timespec="seconds"))
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    row = SentMonthlyReport(unit_id=_unit_id(s, unit), unit_path=unit.path, month=month, body=body, sha256=digest,
                            sent_by_id=actor.user_id, sent_by_username=actor.username, sent_at=now)
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError:  # sent by another leader a moment ago
        raise ReportError("month", _("This unit's report for that month has already been sent.")) from None
    audit.record(s, actor, "report.send", object_type="report", object_id=f"monthly:{unit.code}:{month}",
                 detail=f"sha256={digest}")
    return row


def _unit_id(s: Session, unit: UnitChoice) -> int:
    return s.scalar(select(OrgUnit.id).where(OrgUnit.code == unit.code))


def sent_reports(s: Session, actor: Actor, limit: int = 100) -> list[SentMonthlyReport]:
    """The sent reports a leader may read: those of their unit and the units below it."""
    if actor.role != "leader" or not actor.unit_path:
        return []
    lo, hi = subtree_range(actor.unit_path)
    return list(s.scalars(select(SentMonthlyReport).where(SentMonthlyReport.unit_path >= lo,
                                                          SentMonthlyReport.unit_path < hi)
                          .order_by(SentMonthlyReport.month.desc(), SentMonthlyReport.unit_path).limit(limit)))


def sent_report(s: Session, actor: Actor, report_id: int) -> SentMonthlyReport:
    row = s.get(SentMonthlyReport, report_id)
    if row is None or actor.role != "leader" or not actor.unit_path or not row.unit_path.startswith(actor.unit_path):
        raise PermissionDenied(Action.REPORT_VIEW, f"monthly:{report_id}")
    return row


def verify(row: SentMonthlyReport) -> bool:
    return hashlib.sha256(row.body.encode("utf-8")).hexdigest() == row.sha256
