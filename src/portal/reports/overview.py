"""Programme overview: members by tier and status, joins and tier moves per month (with causes),
spend and frequency per tier, the points ledger and its liability, stored value, referrals."""
from __future__ import annotations

from sqlalchemy import and_, case, distinct, func, select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..membership.models import CardAccount, MemberEvent, Membership, PointsEntryRow, Purchase
from ..membership.programme import settings_on
from ..membership.rules import programme_today
from ..membership.settings import Tier
from .filters import ReportFilter
from . import rollup, summaries
from .model import _, Chart, Col, Report, Table, member_filters, members_driving, per_mille, suppress
from .models import ReportFlow as RF, ReportMember as RMB, ReportMonth as RM
from .rollup import total
from .sqlfn import SHANGHAI_HOURS, month_of
from .tiers import tier_over_time

TIERS = [t.value for t in Tier]
_RANK = {t.value: t.rank for t in Tier}


def tier_rank(col):
    return case(*((col == name, rank) for name, rank in _RANK.items()), else_=-1)


def points_value_fen_per_1000(settings) -> int:
    """What 1,000 points are worth at the redemption rate: the catalogue's best value per point
    (the programme's liability is what the points could be taken for)."""
    return max((round(1000 * i.value_fen / i.points) for i in settings.catalogue), default=0)


def overview(s: Session, actor: Actor, f: ReportFilter) -> Report:
    where = member_filters(actor, f)
    drive = members_driving(actor, f)  # for the queries that join facts to the members
    p = f.period
    rep = Report("overview", _("Programme overview"))

    # Members by tier and status (as they stand now; the filter's tier is today's tier).
    held = summaries.member_where(actor, f)  # report_member answers unless the scope or filter needs the files
    if held is not None:
        rows = [(t, st, int(n)) for t, st, n in s.execute(
            select(RMB.tier, RMB.status, total(RMB.members)).where(*held).group_by(RMB.tier, RMB.status)).all()]
    else:
        rows = s.execute(select(Membership.tier, Membership.status, func.count())
                         .where(*where).group_by(Membership.tier, Membership.status)).all()
    by_tier = {t: {"tier": t, "active": 0, "ended": 0} for t in TIERS}
    for tier, status, n in rows:
        by_tier.setdefault(tier, {"tier": tier, "active": 0, "ended": 0})[status if status in ("active", "ended") else "active"] += n
    cols = [Col("tier", _("Tier"), "text"), Col("active", _("Active"), "count"), Col("ended", _("Ended"), "count")]
    members = suppress(list(by_tier.values()), cols, basis="")
    rep.tables.append(Table("members", _("Members by tier and status"), cols, members, translate=("tier",)))
    rep.charts.append(Chart("members", _("Members by tier"), "pie", [r["tier"] for r in members],
                            [(_("Active"), [r["active"] for r in members])]))

    # Members by tier and status at each month's end (the tier each held then).
    table, chart = tier_over_time(s, actor, f, programme_today())
    rep.tables.append(table)
    rep.charts.append(chart)

    # New members per month, by cause of joining.
    flows = summaries.flow_where(actor, f, "join")  # report_flow, for whole months
    if flows is not None:
        rows = [(m, c, int(n)) for m, c, n in s.execute(
            select(RF.month, RF.a, total(RF.n)).where(*flows).group_by(RF.month, RF.a)).all() if n]
    else:
        month = month_of(Membership.joined_on)
        rows = s.execute(select(month, Membership.join_cause, func.count())
                         .where(*where, Membership.joined_on >= p.start, Membership.joined_on <= p.end)
                         .group_by(month, Membership.join_cause).order_by(month)).all()
    causes = sorted({c for _m, c, _n in rows})
    months = p.months()
    grid = {(m, c): n for m, c, n in rows}
    cols = [Col("month", _("Month"), "month"), *(Col(c, c, "int") for c in causes), Col("total", _("Total"), "int")]
    joined = [{"month": m, **{c: grid.get((m, c), 0) for c in causes},
               "total": sum(grid.get((m, c), 0) for c in causes)} for m in months]
    rep.tables.append(Table("joined", _("New members per month, by cause"), cols, joined))

    # Upgrades and downgrades per month, with their causes.
    lo, hi = p.utc_bounds()
    ev_month = month_of(MemberEvent.at, SHANGHAI_HOURS)
    up = tier_rank(MemberEvent.to_value) > tier_rank(MemberEvent.from_value)
    direction = case((up, _("Upgrade")), else_=_("Downgrade")).label("direction")
    ev_month = ev_month.label("month")
    # Grouped by the output names: a CASE with bound values repeated in GROUP BY is a different
    # expression to PostgreSQL.
    flows = summaries.flow_where(actor, f, "move")
    if flows is not None:
        rows = [(m, _("Upgrade") if a == "up" else _("Downgrade"), c, int(n)) for m, a, c, n in s.execute(
            select(RF.month, RF.a, RF.b, total(RF.n)).where(*flows).group_by(RF.month, RF.a, RF.b)
            .order_by(RF.month, RF.a, RF.b)).all() if n]
    else:
        rows = s.execute(select(ev_month, direction, MemberEvent.cause, func.count())
                         .join(Membership, Membership.id == MemberEvent.membership_id)
                         .where(*drive, MemberEvent.kind == "tier", MemberEvent.at >= lo, MemberEvent.at < hi)
                         .group_by("month", "direction", MemberEvent.cause)
                         .order_by("month", "direction", MemberEvent.cause)).all()
    moves = [{"month": m, "direction": d, "cause": c or "-", "count": n} for m, d, c, n in rows]
    rep.tables.append(Table("moves", _("Upgrades and downgrades per month"), [
        Col("month", _("Month"), "month"), Col("direction", _("Direction"), "text"), Col("cause", _("Cause"), "text"),
        Col("count", _("Members"), "int")], moves, translate=("direction", "cause")))
    up_m = {m: 0 for m in months}
    down_m = {m: 0 for m in months}
    for r in moves:
        bucket = up_m if r["direction"] == "Upgrade" else down_m
        bucket[r["month"]] = bucket.get(r["month"], 0) + r["count"]
    rep.charts.append(Chart("joined", _("New members and tier moves per month"), "bar", months, [
        (_("New members"), [r["total"] for r in joined]), (_("Upgrades"), [up_m.get(m, 0) for m in months]),
        (_("Downgrades"), [down_m.get(m, 0) for m in months])]))

    # Spend and purchase frequency per tier (complete purchases in the period).
    # Whole months within the owner and unit arms of the scope: from report_month (rollup.py).
    rolled = rollup.summary_where(actor, f)
    bought = and_(Purchase.status == "complete", Purchase.purchased_on >= p.start, Purchase.purchased_on <= p.end)
    n_members = func.count(distinct(Purchase.membership_id))
    if rolled is not None:
        n, k, fen = total(rollup.buyers_of(p)), total(RM.purchases), total(RM.spend_fen)
        rows = [(t, int(n), int(k), int(fen), per, freq) for t, n, k, fen, per, freq in s.execute(
            select(RM.tier, n, k, fen, fen / func.nullif(n, 0), k * 100 / func.nullif(n, 0))
            .where(*rolled).group_by(RM.tier)).all() if n]
    else:
        rows = s.execute(select(Membership.tier, n_members, func.count(Purchase.id),
                                func.coalesce(func.sum(Purchase.paid_total_fen), 0),
                                func.coalesce(func.sum(Purchase.paid_total_fen), 0) / func.nullif(n_members, 0),
                                func.count(Purchase.id) * 100 / func.nullif(n_members, 0))
                         .join(Purchase, Purchase.membership_id == Membership.id)
                         .where(*drive, bought).group_by(Membership.tier)).all()
    got = {r[0]: r for r in rows}
    cols = [Col("tier", _("Tier"), "text"), Col("members", _("Buying members"), "count"),
            Col("purchases", _("Purchases"), "int"), Col("spend", _("Spend"), "fen"),
            Col("per_member", _("Spend per member"), "fen"), Col("frequency", _("Purchases per member"), "x100")]
    spend = [{"tier": t, "members": got[t][1], "purchases": got[t][2], "spend": got[t][3],
              "per_member": got[t][4], "frequency": got[t][5]}
             if t in got else {"tier": t, "members": 0, "purchases": 0, "spend": 0, "per_member": 0,
                               "frequency": 0} for t in TIERS]
    suppress(spend, cols)
    rep.tables.append(Table("spend", _("Spend and purchase frequency per tier"), cols, spend, translate=("tier",)))

    # Spend per month (a line): all tiers together.
    p_month = month_of(Purchase.purchased_on)
    if rolled is not None:
        rows = [(m, int(n), int(fen)) for m, n, fen in s.execute(
            select(RM.month, total(RM.buyers), total(RM.spend_fen)).where(*rolled).group_by(RM.month)).all() if n]
    else:
        rows = s.execute(select(p_month, n_members, func.sum(Purchase.paid_total_fen))
                         .join(Membership, Membership.id == Purchase.membership_id)
                         .where(*drive, bought).group_by(p_month)).all()
    per_month = {m: (n, fen) for m, n, fen in rows}
    monthly = suppress([{"month": m, "members": per_month.get(m, (0, 0))[0], "spend": per_month.get(m, (0, 0))[1]}
                        for m in months], [Col("members", "", "count"), Col("spend", "", "fen")])
    rep.tables.append(Table("spend_month", _("Spend per month"), [
        Col("month", _("Month"), "month"), Col("members", _("Buying members"), "count"), Col("spend", _("Spend"), "fen")],
        monthly))
    rep.charts.append(Chart("spend_month", _("Spend per month"), "line", months,
                            [(_("Spend"), [r["spend"] for r in monthly])], money=True))

    # The points ledger in the period, and what is outstanding now.
    acct_in_scope = select(CardAccount.id).join(Membership, Membership.id == CardAccount.membership_id).where(*drive)
    if rolled is not None:
        earned, redeemed, expired = (int(v) for v in s.execute(
            select(total(RM.points_earned), total(RM.points_redeemed), total(RM.points_expired)).where(*rolled)).one())
    else:
        rows = s.execute(select(PointsEntryRow.kind, func.sum(PointsEntryRow.points))
                         .where(PointsEntryRow.account_id.in_(acct_in_scope), PointsEntryRow.on >= p.start,
                                PointsEntryRow.on <= p.end).group_by(PointsEntryRow.kind)).all()
        kinds = dict(rows)
        earned = sum(kinds.get(k, 0) for k in ("earn", "referral", "event"))
        redeemed = -kinds.get("redeem", 0)
        expired = -kinds.get("expire", 0)
    if held is not None:
        outstanding, stored, holders = (int(v) for v in s.execute(
            select(total(RMB.points_balance), total(RMB.stored_value_fen), total(RMB.holders)).where(*held)).one())
    else:
        outstanding, stored, holders = s.execute(
            select(func.coalesce(func.sum(CardAccount.points_balance), 0),
                   func.coalesce(func.sum(CardAccount.stored_value_fen), 0), func.count(distinct(Membership.id)))
            .join(Membership, Membership.id == CardAccount.membership_id).where(*drive)).one()
    per_k = points_value_fen_per_1000(settings_on(s, p.end))
    flows = summaries.flow_where(actor, f, "ref")
    if flows is not None:
        referrals = int(s.scalar(select(total(RF.n)).where(*flows)))
    else:
        referrals = s.scalar(select(func.count()).select_from(Membership).where(
            *where, Membership.referrer_id.is_not(None), Membership.joined_on >= p.start,
            Membership.joined_on <= p.end)) or 0
    cols = [Col("figure", _("Figure"), "text"), Col("value", _("Value"), "int")]
    points = [{"figure": _("Points earned"), "value": earned}, {"figure": _("Points redeemed"), "value": redeemed},
              {"figure": _("Points expired"), "value": expired},
              {"figure": _("Points outstanding (now)"), "value": outstanding},
              {"figure": _("Redemption rate"), "value": per_mille(redeemed, earned), "_kind": "pct"},
              {"figure": _("Referred members who joined"), "value": referrals}]
    money = [{"figure": _("Points liability at the redemption rate (now)"), "value": outstanding * per_k // 1000},
             {"figure": _("Stored value outstanding (now)"), "value": stored}]
    if 0 < holders < 3:  # the balances of one or two members
        for r in (points[3], *money):
            r["value"] = None
    rep.tables.append(Table("points", _("Points and referrals"), cols, points, translate=("figure",)))
    rep.tables.append(Table("liability", _("Liabilities"), [Col("figure", _("Figure"), "text"),
                                                        Col("value", _("Amount"), "fen")], money,
                            translate=("figure",)))
    rep.charts.append(Chart("points", _("Points in the period"), "bar",
                            [_("Points earned"), _("Points redeemed"), _("Points expired")],
                            [(_("Points"), [earned, redeemed, expired])]))
    rep.extra["value_per_1000_points_fen"] = per_k
    return rep
