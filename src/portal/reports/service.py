"""Service (issue 13): the complaint analysis of service/analysis.py over the report's period and
filters, and visit coverage per tier (members due a scheduled visit in the period against those
visited). Counts only, within the policy's scope; groups of fewer than 3 are suppressed."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, case, exists, false, func, or_, select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..membership.models import Membership
from ..membership.settings import Tier
from ..policy import Action
from ..service.analysis import Group, complaint_analysis
from ..service.models import Complaint, MemberVisit
from ..service.settings import settings_on
from .filters import ReportFilter
from . import summaries
from .model import _, Chart, Col, Report, Table, file_filters, member_filters, per_mille, suppress
from .models import ReportFlow as RF

# The same names as templates/service/_labels.html.
KIND_LABELS = {"product": _("Product"), "service": _("Service"), "delivery": _("Delivery"), "price": _("Price"),
               "points": _("Points"), "other": _("Other")}
CAUSE_LABELS = {"product_defect": _("Product defect"), "staff_conduct": _("Staff conduct"), "process": _("Process"),
                "logistics": _("Logistics"), "pricing_error": _("Pricing error"), "system": _("System"),
                "misunderstanding": _("Misunderstanding"), "other": _("Other"), "": _("Not investigated yet")}
CHANNEL_LABELS = {"hotline": _("Hotline"), "online": _("Online"), "email": _("E-mail"), "in_store": _("In store"),
                  "salesperson": _("Through the salesperson")}


def _groups(key: str, title: str, label: str, groups: list[Group], labels: dict | None = None) -> Table:
    rows = [{key: (labels or {}).get(g.key, g.key), "count": g.count} for g in groups]
    return Table(key, title, [Col(key, label, "text"), Col("count", _("Complaints"), "count")], rows,
                 translate=(key,) if labels else ())


def service(s: Session, actor: Actor, f: ReportFilter) -> Report:
    rep = Report("service", _("Service"))
    p = f.period
    lo, hi = p.utc_bounds()
    files = tuple(file_filters(actor, f)[1:])  # the scope itself comes with the analysis's action
    a = complaint_analysis(s, actor, action=Action.REPORT_VIEW, audit_it=False,
                           complaints_where=(*files, Complaint.recorded_at >= lo, Complaint.recorded_at < hi),
                           visits_where=(*files, MemberVisit.visited_on >= p.start, MemberVisit.visited_on <= p.end))
    x100 = (lambda v: None if v is None else round(v * 100))
    figures = [{"figure": _("Complaints"), "value": a.total}, {"figure": _("Closed"), "value": a.closed},
               {"figure": _("Days to resolve on average"), "value": x100(a.avg_days_to_close), "_kind": "x100"},
               {"figure": _("Satisfaction rate"), "value": None if a.satisfaction_rate is None
                else round(a.satisfaction_rate * 10), "_kind": "pct"},
               {"figure": _("Reopen rate"), "value": None if a.reopen_rate is None else round(a.reopen_rate * 10),
                "_kind": "pct"},
               {"figure": _("Follow-up visits"), "value": a.visits},
               {"figure": _("Average visit satisfaction (1–5)"), "value": x100(a.visit_satisfaction), "_kind": "x100"}]
    rep.tables.append(Table("complaints", _("Complaints in the period"),
                            [Col("figure", _("Figure"), "text"), Col("value", _("Value"), "int")], figures,
                            translate=("figure",)))
    rep.tables.append(_groups("kind", _("Complaints by type"), _("Type"), a.by_kind, KIND_LABELS))
    rep.tables.append(_groups("cause", _("Complaints by cause"), _("Cause"), a.by_cause, CAUSE_LABELS))
    rep.tables.append(_groups("channel", _("Complaints by channel"), _("Channel"), a.by_channel, CHANNEL_LABELS))
    rep.tables.append(_groups("unit", _("Complaints by unit"), _("Unit"), a.by_unit))
    per_month = {g.key: g.count for g in a.by_month}
    months = [{"month": m, "count": per_month.get(m, 0)} for m in p.months()]
    rep.tables.append(Table("months", _("Complaints per month"), [Col("month", _("Month"), "month"),
                                                                 Col("count", _("Complaints"), "count")], months))
    rep.tables.append(Table("survey", _("Satisfaction survey"), [
        Col("question", _("Question"), "text"), Col("answers", _("Answers"), "count"),
        Col("mean", _("Average (1–5)"), "x100")], [{"question": q, "answers": n, "mean": x100(m)} for q, n, m in a.survey]))
    rep.charts.append(Chart("months", _("Complaints per month"), "line", p.months(),
                            [(_("Complaints"), [r["count"] for r in months])]))
    if a.by_kind:
        rep.charts.append(Chart("kinds", _("Complaints by type"), "pie", [KIND_LABELS.get(g.key, g.key) for g in a.by_kind],
                                [(_("Complaints"), [g.count for g in a.by_kind])]))
    _coverage(s, actor, f, rep)
    return rep


def _active_joined(s: Session, actor: Actor, f: ReportFilter, due_by: list) -> dict[str, list[int]] | None:
    """Per tier from report_flow's active members by joining day (summaries.py): [active members
    joined by the period's end, those of them joined by the tier's due day, 0, 0]; None when the
    summary cannot answer the reader's scope (grants to single files, a category)."""
    where = summaries.keyed_where(actor, f, RF.owner_id, RF.unit_path, RF.tier)
    if where is None:
        return None

    def by(day):  # rows of active members joined on or before `day`
        month = f"{day.year:04d}-{day.month:02d}"
        return or_(RF.month < month, and_(RF.month == month, RF.a <= f"{day.day:02d}"))

    cols = [func.coalesce(func.sum(case((by(f.period.end), RF.n), else_=0)), 0)]
    cols += [func.coalesce(func.sum(case((and_(RF.tier == t, by(on)), RF.n), else_=0)), 0) for t, on in due_by]
    got = {}
    for tier, n, *due in s.execute(select(RF.tier, *cols).where(RF.kind == "act", *where).group_by(RF.tier)):
        got[tier] = [int(n), sum(int(d) for d in due), 0, 0]
    return got


def _coverage(s: Session, actor: Actor, f: ReportFilter, rep: Report) -> None:
    """Per tier: active members (joined by the period's end), those due a scheduled visit within
    the period (the tier's interval since their last visit before the period, or since joining,
    ends by the period's end: the schedule in force at its end), those visited in the period, and
    the due ones visited."""
    p = f.period
    st = settings_on(s, p.end)
    last = (select(func.max(MemberVisit.visited_on))
            .where(MemberVisit.customer_id == Membership.customer_id, MemberVisit.visited_on < p.start)
            .correlate(Membership).scalar_subquery())
    base = func.coalesce(last, Membership.joined_on)
    due_by = [(t, p.end - timedelta(days=d)) for t, d in st.visit_every_days.items() if d > 0]
    due = or_(*(and_(Membership.tier == t, base <= on) for t, on in due_by)) if due_by else false()
    unvisited_due = or_(*(and_(Membership.tier == t, Membership.joined_on <= on) for t, on in due_by)) if due_by else false()
    visited = exists().where(MemberVisit.customer_id == Membership.customer_id, MemberVisit.visited_on >= p.start,
                             MemberVisit.visited_on <= p.end)
    one = (lambda cond: func.coalesce(func.sum(case((cond, 1), else_=0)), 0))
    members = (*member_filters(actor, f), Membership.status == "active", Membership.joined_on <= p.end)
    # Every member counted as if never visited (no per-member lookup: one pass over the members in
    # scope), then the few members with a visit by the period's end counted exactly, and the
    # difference corrected: the same figures as counting each member exactly.
    got = _active_joined(s, actor, f, due_by)
    if got is None:  # the live count: one pass over the members in scope
        got = {t: [n, int(d), 0, 0] for t, n, d in s.execute(
            select(Membership.tier, func.count(), one(unvisited_due)).where(*members).group_by(Membership.tier))}
    ever = select(MemberVisit.customer_id).where(MemberVisit.visited_on <= p.end)
    # From the visited members (customer_id's index), not a scan of the members in scope: status || ''.
    visited_members = (*member_filters(actor, f), (Membership.status + "") == "active", Membership.joined_on <= p.end,
                       Membership.customer_id.in_(ever))
    for t, naive, d, v, c in s.execute(
            select(Membership.tier, one(unvisited_due), one(due), one(visited), one(and_(due, visited)))
            .where(*visited_members).group_by(Membership.tier)):
        row = got.setdefault(t, [0, 0, 0, 0])
        row[1] += int(d) - int(naive)
        row[2], row[3] = int(v), int(c)
    cols = [Col("tier", _("Tier"), "text"), Col("every", _("Visit every (days)"), "text"),
            Col("members", _("Members"), "count"), Col("due", _("Due a visit"), "count"),
            Col("visited", _("Visited"), "count"), Col("covered", _("Due and visited"), "count"),
            Col("coverage", _("Coverage"), "pct")]
    rows = []
    for t in Tier:
        n, d, v, c = got.get(t.value, (0, 0, 0, 0))
        every = st.visit_every_days.get(t.value, 0)
        rows.append({"tier": t.value, "every": str(every) if every else "—", "members": n, "due": d, "visited": v,
                     "covered": c, "coverage": per_mille(c, d) if d >= 3 else None})
    rows = suppress(rows, cols, "members")
    rep.tables.append(Table("coverage", _("Visit coverage per tier"), cols, rows, translate=("tier",),
                            note=_("Scheduled visits only; visits after complaints and large purchases count as visits.")))
    rep.charts.append(Chart("coverage", _("Visit coverage per tier"), "bar", [t.value for t in Tier],
                            [(_("Due a visit"), [r["due"] for r in rows]), (_("Due and visited"), [r["covered"] for r in rows])]))
