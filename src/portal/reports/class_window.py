"""The class window summary behind classes A-D and RFM (reports/classes.py): one ``class_member``
row per active member as of a day (spend, purchases and last purchase in the class window, class,
recency and frequency scores, and the member's owner, unit path and tier as they stand now) and
``class_count``, their members, spend and purchases per (owner, unit path, tier, class, r, f).

The window slides with the day, so the daily job rebuilds both as of its day (``rebuild``, one
INSERT ... SELECT each, recording the day and thresholds in ``class_state``); in between, every
use case that changes a member's window or keys calls ``refresh`` in its own transaction (a sale,
a return, a claim, a joining, an ending, a tier change, a reassignment), which recomputes that
member's row from the facts and moves the counts (upserts with increments). The classes page reads
the summary when its window ends on the summary's day with the same thresholds, else the facts.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from ..customers.models import CustomerFile
from ..membership.models import Membership, Purchase
from .models import ClassCount as CC, ClassMember as CMB, ClassState
from .upsert import add_up

COUNTS = ("members", "spend_fen", "purchases")


@dataclass(frozen=True)
class Window:
    start: date
    end: date
    months: int


def window_for(end: date, months: int) -> Window:
    y, m = end.year, end.month - months
    while m < 1:
        y, m = y - 1, m + 12
    start = date(y, m, min(end.day, calendar.monthrange(y, m)[1])) + timedelta(days=1)
    return Window(start, end, months)


@dataclass(frozen=True)
class Thresholds:
    a_spend_fen: int
    b_spend_fen: int
    c_spend_fen: int
    a_purchases: int
    window_months: int

    @classmethod
    def of_settings(cls, st) -> "Thresholds":
        return cls(st.class_a_spend_fen, st.class_b_spend_fen, st.class_c_spend_fen, st.class_a_purchases,
                   st.class_window_months)

    @classmethod
    def of_state(cls, st: ClassState) -> "Thresholds":
        return cls(int(st.a_spend_fen), int(st.b_spend_fen), int(st.c_spend_fen), st.a_purchases, st.window_months)


def scores_sql(spend, n, last, t: Thresholds, w: Window):
    """(class, recency score, frequency score) as SQL expressions (the Python twin: ``scores``)."""
    W = w.months
    cls = case((and_(spend * 12 >= t.a_spend_fen * W, n * 12 >= t.a_purchases * W), "A"),
               (spend * 12 >= t.b_spend_fen * W, "B"), (spend * 12 >= t.c_spend_fen * W, "C"), else_="D")
    r = case((last >= w.end - timedelta(days=90), 3), (last >= w.end - timedelta(days=365), 2), else_=1)
    f = case((n * 12 >= t.a_purchases * W, 3), (n * 12 >= 2 * W, 2), else_=1)
    return cls, r, f


def scores(spend: int, n: int, last: date | None, t: Thresholds, w: Window) -> tuple[str, int, int]:
    W = w.months
    cls = ("A" if spend * 12 >= t.a_spend_fen * W and n * 12 >= t.a_purchases * W else
           "B" if spend * 12 >= t.b_spend_fen * W else "C" if spend * 12 >= t.c_spend_fen * W else "D")
    r = 1 if last is None else 3 if last >= w.end - timedelta(days=90) else 2 if last >= w.end - timedelta(days=365) else 1
    f = 3 if n * 12 >= t.a_purchases * W else 2 if n * 12 >= 2 * W else 1
    return cls, r, f


def paid_in(w: Window):
    return and_(Purchase.membership_id == Membership.id, Purchase.status == "complete",
                Purchase.purchased_on >= w.start, Purchase.purchased_on <= w.end)


def state(s: Session) -> ClassState | None:
    return s.get(ClassState, 1)


def current(s: Session, end: date, t: Thresholds) -> bool:
    """Whether the summary answers a window ending on ``end`` with thresholds ``t``."""
    st = state(s)
    return st is not None and st.as_of == end and Thresholds.of_state(st) == t


def _upsert_counts(s: Session, rows: list[dict]) -> None:
    add_up(s, CC, ("owner_id", "unit_path", "tier", "cls", "r", "f"), COUNTS, rows)


def refresh(s: Session, membership_id: int | None) -> None:
    """Recompute one member's row from the facts and move the counts, in the caller's transaction."""
    if membership_id is None:
        return
    st = s.scalar(select(ClassState).where(ClassState.id == 1).with_for_update(read=True))
    if st is None:
        return  # no summary yet: the page reads the facts until the daily job builds it
    s.flush()
    t = Thresholds.of_state(st)
    w = window_for(st.as_of, t.window_months)
    m = s.execute(select(Membership.status, Membership.customer_id, Membership.owner_id, Membership.unit_path,
                         Membership.tier).where(Membership.id == membership_id).with_for_update()).one_or_none()
    c = CMB.__table__.c
    old = s.execute(select(CMB.__table__).where(c.membership_id == membership_id)).mappings().one_or_none()
    new = None
    if m is not None and m.status == "active":
        spend, n, last = s.execute(select(func.coalesce(func.sum(Purchase.paid_total_fen), 0), func.count(Purchase.id),
                                          func.max(Purchase.purchased_on))
                                   .where(Purchase.membership_id == membership_id, Purchase.status == "complete",
                                          Purchase.purchased_on >= w.start, Purchase.purchased_on <= w.end)).one()
        cls, r, f = scores(int(spend), int(n), last, t, w)
        file_no = old["file_no"] if old else s.scalar(select(CustomerFile.file_no).where(CustomerFile.id == m.customer_id))
        new = {"membership_id": membership_id, "customer_id": m.customer_id, "file_no": file_no,
               "owner_id": m.owner_id, "unit_path": m.unit_path, "tier": m.tier, "spend_fen": int(spend),
               "purchases": int(n), "last_on": last, "cls": cls, "r": r, "f": f}
    if old is not None and new is not None and all(old[k] == new[k] for k in new):
        return
    counts = []
    for row, sign in ((old, -1), (new, 1)):
        if row is not None:
            counts.append({"owner_id": row["owner_id"], "unit_path": row["unit_path"], "tier": row["tier"],
                           "cls": row["cls"], "r": row["r"], "f": row["f"], "members": sign,
                           "spend_fen": sign * row["spend_fen"], "purchases": sign * row["purchases"]})
    for row in counts:
        _upsert_counts(s, [row])
    if old is not None:
        s.execute(CMB.__table__.delete().where(c.membership_id == membership_id))
    if new is not None:
        s.execute(CMB.__table__.insert(), [new])


def rebuild(s: Session, as_of: date) -> None:
    """Both tables from the facts as of ``as_of`` with the thresholds in force that day."""
    from ..membership.programme import settings_on
    t = Thresholds.of_settings(settings_on(s, as_of))
    w = window_for(as_of, t.window_months)
    st = s.scalar(select(ClassState).where(ClassState.id == 1).with_for_update())  # refreshes wait
    if st is None:
        s.execute(ClassState.__table__.insert().values(
            id=1, as_of=as_of, window_months=t.window_months, a_spend_fen=t.a_spend_fen, b_spend_fen=t.b_spend_fen,
            c_spend_fen=t.c_spend_fen, a_purchases=t.a_purchases))
    else:
        s.execute(ClassState.__table__.update().where(ClassState.id == 1).values(
            as_of=as_of, window_months=t.window_months, a_spend_fen=t.a_spend_fen, b_spend_fen=t.b_spend_fen,
            c_spend_fen=t.c_spend_fen, a_purchases=t.a_purchases))
        s.expire(st)
    s.execute(CMB.__table__.delete())
    s.execute(CC.__table__.delete())
    per = (select(Membership.id.label("mid"), Membership.customer_id.label("cid"), Membership.owner_id.label("owner"),
                  Membership.unit_path.label("path"), Membership.tier.label("tier"),
                  func.coalesce(func.sum(Purchase.paid_total_fen), 0).label("spend"),
                  func.count(Purchase.id).label("n"), func.max(Purchase.purchased_on).label("last"))
           .select_from(Membership).outerjoin(Purchase, paid_in(w)).where(Membership.status == "active")
           .group_by(Membership.id, Membership.customer_id, Membership.owner_id, Membership.unit_path,
                     Membership.tier).subquery())
    cls, r, f = scores_sql(per.c.spend, per.c.n, per.c.last, t, w)
    q = (select(per.c.mid, per.c.cid, CustomerFile.file_no, per.c.owner, per.c.path, per.c.tier, per.c.spend,
                per.c.n, per.c.last, cls, r, f).join(CustomerFile, CustomerFile.id == per.c.cid))
    s.execute(CMB.__table__.insert().from_select(
        ["membership_id", "customer_id", "file_no", "owner_id", "unit_path", "tier", "spend_fen", "purchases",
         "last_on", "cls", "r", "f"], q))
    c = CMB.__table__.c
    s.execute(CC.__table__.insert().from_select(
        ["owner_id", "unit_path", "tier", "cls", "r", "f", "members", "spend_fen", "purchases"],
        select(c.owner_id, c.unit_path, c.tier, c.cls, c.r, c.f, func.count(), func.sum(c.spend_fen),
               func.sum(c.purchases)).group_by(c.owner_id, c.unit_path, c.tier, c.cls, c.r, c.f)))
