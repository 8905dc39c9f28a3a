"""Customer classes A/B/C/D (seed 002) and RFM segments, computed in SQL over each member's
purchases in the class window (``class_window_months`` to the period's last day, or to today while
the period runs: the page then says "as of today"), read from the class window summary
(class_window.py) when it is as of that day.

Class (averages per year over the window; thresholds are programme settings, see settings.py):
A: spend >= X and purchases >= class_a_purchases; B: spend >= X1 (or >= X buying less often);
C: spend >= X2; D: below X2 (or no purchase). The strategy per class is seed 002's.
``member_classes()`` is the hook for the follow-up visit schedule: a select of
(membership id, class) within the same scope.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, or_, select, union
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..customers.models import CustomerFile
from ..membership.models import Membership, Purchase
from ..membership.programme import settings_on
from ..membership.rules import programme_today
from . import class_window, summary_scope
from .class_window import Thresholds, Window, paid_in, scores_sql, window_for  # noqa: F401 (window_for: callers)
from .filters import ReportFilter
from .model import _, Chart, Col, Report, Table, member_filters, suppress
from .models import ClassCount as CC, ClassMember as CMB

CLASSES = ("A", "B", "C", "D")
# Seed 002 (VIP顾客关怀): A phone follow-ups and coupons or gifts; B e-mail/SMS invitations to product
# events with offers; C an offer when they buy, standard service; D (the 河南 example's fourth class).
STRATEGY = {
    "A": _("Key clients: regular phone follow-ups, coupons or gifts; a dedicated service contact; offer made-to-measure products."),
    "B": _("Clients to develop: regular e-mail or SMS invitations to product events and talks, with offers; close follow-up by the staff who know them."),
    "C": _("Standard service: an offer when they buy, to keep them; learn what they expect through the front-line staff."),
    "D": _("Registered clients below X2: standard service and the programme's general offers."),
}
SEGMENTS = (_("Champions"), _("Loyal"), _("New"), _("At risk"), _("Hibernating"), _("Others"))
LIST_LIMIT = 100


def class_end(p, today: date) -> date:
    """The class window ends on the period's last day, or today while the period runs (as of today)."""
    return today if p.start <= today <= p.end else p.end


def _per_member(actor: Actor, f: ReportFilter, w: Window):
    """One row per member in scope: spend and purchases in the window, last purchase day."""
    return (select(Membership.id.label("mid"), Membership.customer_id.label("cid"), Membership.tier.label("tier"),
                   func.coalesce(func.sum(Purchase.paid_total_fen), 0).label("spend"),
                   func.count(Purchase.id).label("n"), func.max(Purchase.purchased_on).label("last"))
            .select_from(Membership).outerjoin(Purchase, paid_in(w))
            .where(*member_filters(actor, f), Membership.status == "active")
            .group_by(Membership.id, Membership.customer_id, Membership.tier).subquery())


def _window(s: Session, f: ReportFilter):
    end = class_end(f.period, programme_today())
    st = settings_on(s, end)
    return st, Thresholds.of_settings(st), window_for(end, st.class_window_months)


def member_classes(s: Session, actor: Actor, f: ReportFilter):
    """(membership id, class) for every active member in scope: for the follow-up schedule."""
    _st, t, w = _window(s, f)
    per = _per_member(actor, f, w)
    return select(per.c.mid, scores_sql(per.c.spend, per.c.n, per.c.last, t, w)[0].label("class"))


def _live(s: Session, actor: Actor, f: ReportFilter, t: Thresholds, w: Window):
    """(class, r, f, members, spend, purchases) rows and the lists, from the members' purchases."""
    per = _per_member(actor, f, w)
    cls, r, fq = scores_sql(per.c.spend, per.c.n, per.c.last, t, w)
    cls = cls.label("cls")
    cube = s.execute(select(cls, r.label("r"), fq.label("f"), func.count(), func.sum(per.c.spend), func.sum(per.c.n))
                     .group_by("cls", "r", "f")).all()
    # The lists: the first LIST_LIMIT of classes A to C by spend, ranked in one pass.
    rank = func.row_number().over(partition_by=cls, order_by=(per.c.spend.desc(), CustomerFile.file_no))
    ranked = (select(per.c.cid, CustomerFile.file_no, cls, rank.label("rn"))
              .join(CustomerFile, CustomerFile.id == per.c.cid).where(cls.in_(CLASSES[:3])).subquery())
    lists: dict[str, list] = {c: [] for c in CLASSES[:3]}
    for fid, no, c, _rn in s.execute(select(ranked).where(ranked.c.rn <= LIST_LIMIT)
                                     .order_by(ranked.c.cls, ranked.c.rn)):
        lists[c].append((str(fid), no))
    return cube, lists


def _summary(s: Session, actor: Actor, f: ReportFilter, t: Thresholds, w: Window):
    """The same from class_count and class_member (class_window.py), or None when they cannot
    answer: another day or other thresholds than the summary's, a category, single-file grants.

    The rows of the generation ``class_state`` names; if the daily job switched to a new one
    meanwhile (the old one's rows are then being deleted), read again."""
    if f.category:
        return None
    for _attempt in range(3):
        gen = class_window.current(s, w.end, t)
        if not gen:
            return None
        got = _summary_of(s, actor, f, gen)
        if got is None or class_window.generation(s) == gen:
            return got
    return None


def _summary_of(s: Session, actor: Actor, f: ReportFilter, gen: int):
    arms = summary_scope.scope_arms(actor, CMB.owner_id, CMB.unit_path)
    if arms is None:
        return None
    count_arms = summary_scope.scope_arms(actor, CC.owner_id, CC.unit_path)
    cube = s.execute(select(CC.cls, CC.r, CC.f, func.sum(CC.members), func.sum(CC.spend_fen), func.sum(CC.purchases))
                     .where(CC.gen == gen, or_(*count_arms), *summary_scope.filters(f, CC.unit_path, CC.tier))
                     .group_by(CC.cls, CC.r, CC.f)).all()
    cube = [(c, r, fq, int(n), int(spend or 0), int(k or 0)) for c, r, fq, n, spend, k in cube]
    extra = summary_scope.filters(f, CMB.unit_path, CMB.tier)
    lists: dict[str, list] = {c: [] for c in CLASSES[:3]}
    for c in CLASSES[:3]:
        # Each arm of the scope walks the class's index by spend (LIST_LIMIT rows at most), then the arms merge.
        parts = [select(CMB.customer_id, CMB.file_no, CMB.spend_fen)
                 .where(CMB.gen == gen, CMB.cls == c, arm, *extra)
                 .order_by(CMB.spend_fen.desc(), CMB.file_no).limit(LIST_LIMIT).subquery() for arm in arms]
        u = parts[0] if len(parts) == 1 else union(*(select(p) for p in parts)).subquery()
        lists[c] = [(str(fid), no) for fid, no, _fen in s.execute(
            select(u).order_by(u.c.spend_fen.desc(), u.c.file_no).limit(LIST_LIMIT))]
    return cube, lists


def _segment(r: int, fq: int) -> str:
    champions, loyal, new, at_risk, hibernating, others = SEGMENTS
    if r == 3 and fq == 3:
        return champions
    if fq == 3:
        return loyal
    if r == 3 and fq == 1:
        return new
    if r == 1 and fq >= 2:
        return at_risk
    if r == 1 and fq == 1:
        return hibernating
    return others


def classes(s: Session, actor: Actor, f: ReportFilter) -> Report:
    """One GROUP BY (class, recency score, frequency score) gives the classes, the RFM segments and
    the grid, and the lists rank each class by spend: from the class window summary when it is as
    of the window's end, else from the members' purchases (two passes)."""
    st, t, w = _window(s, f)
    got_summary = _summary(s, actor, f, t, w)
    cube, lists = got_summary if got_summary is not None else _live(s, actor, f, t, w)
    rows: dict[str, list[int]] = {}
    got: dict[str, list[int]] = {}
    grid: dict[tuple[int, int], int] = {}
    for c, rs, fs, n, spend, cnt in cube:
        acc = rows.setdefault(c, [0, 0, 0])
        acc[0], acc[1], acc[2] = acc[0] + n, acc[1] + (spend or 0), acc[2] + (cnt or 0)
        seg = got.setdefault(_segment(rs, fs), [0, 0])
        seg[0], seg[1] = seg[0] + n, seg[1] + (spend or 0)
        grid[(rs, fs)] = grid.get((rs, fs), 0) + n
    cols = [Col("class", _("Class"), "text"), Col("members", _("Members"), "count"),
            Col("spend", _("Spend in the window"), "fen"), Col("per_member", _("Average annual spend per member"), "fen"),
            Col("purchases", _("Purchases in the window"), "int"), Col("strategy", _("Strategy"), "text")]
    table = []
    for c in CLASSES:
        n, spend, cnt = rows.get(c, (0, 0, 0))
        table.append({"class": c, "members": n, "spend": spend or 0,
                      "per_member": (spend or 0) * 12 // (n * w.months) if n else None,
                      "purchases": cnt or 0, "strategy": STRATEGY[c]})
    suppress(table, cols)
    rep = Report("classes", _("Customer classes and RFM segments"))
    rep.tables.append(Table("classes", _("Classes A, B, C and D"), cols, table, translate=("strategy",)))
    rep.charts.append(Chart("classes", _("Members per class"), "bar", list(CLASSES),
                            [(_("Members"), [r["members"] for r in table])]))
    rep.extra.update(lists=lists, strategy=STRATEGY, window=w, settings=st, from_summary=got_summary is not None)

    cols = [Col("segment", _("Segment"), "text"), Col("members", _("Members"), "count"),
            Col("spend", _("Spend in the window"), "fen")]
    segs = suppress([{"segment": g, "members": got.get(g, (0, 0))[0], "spend": got.get(g, (0, 0))[1] or 0}
                     for g in SEGMENTS], cols)
    rep.tables.append(Table("rfm", _("RFM segments"), cols, segs, translate=("segment",),
                            note=_("Recency: bought within 90 days (3), within a year (2), earlier or never (1). "
                                   "Frequency: at least class A's purchases a year (3), twice a year (2). "
                                   "Monetary: at least X1 a year (3), at least X2 (2).")))
    gcols = [Col("recency", _("Recency score"), "text"), Col("f1", _("Frequency 1"), "count"),
             Col("f2", _("Frequency 2"), "count"), Col("f3", _("Frequency 3"), "count")]
    grid_rows = suppress([{"recency": str(a), **{f"f{k}": grid.get((a, k), 0) for k in (1, 2, 3)}}
                          for a in (3, 2, 1)], gcols, basis="")
    rep.tables.append(Table("rfm_grid", _("Members by recency and frequency score"), gcols, grid_rows))
    rep.charts.append(Chart("rfm", _("RFM segments"), "pie", list(SEGMENTS),
                            [(_("Members"), [x["members"] for x in segs])]))
    return rep
