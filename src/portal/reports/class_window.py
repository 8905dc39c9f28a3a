"""The class window summary behind classes A-D and RFM (reports/classes.py): one ``class_member``
row per active member as of a day (spend, purchases and last purchase in the class window, class,
recency and frequency scores, and the member's owner, unit path and tier as they stand now) and
``class_count``, their members, spend and purchases per (owner, unit path, tier, class, r, f).

The rows carry a generation: ``class_state`` names the one the reports read (its day and
thresholds). The window slides with the day, so the daily job builds a new generation as of its
day in short chunks and switches ``class_state`` to it in one short transaction, then deletes the
old one in chunks (reports/class_build.py); readers see the old figures or the new, never a mix.
In between, every use case that changes a member's window or keys calls ``refresh`` in its own
transaction (a sale, a return, a claim, a joining, an ending, a tier change, a reassignment),
which recomputes that member's row from the facts and moves the counts (upserts with increments)
in the generation the reports read and, for a member its chunk has already built, in the one
being built. The classes page reads the summary when its window ends on the summary's day with
the same thresholds, else the facts.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from ..customers.models import CustomerFile
from ..membership.models import Membership, Purchase
from .models import ClassBuild, ClassCount as CC, ClassMember as CMB, ClassState
from ..upsert import add_up

COUNTS = ("members", "spend_fen", "purchases")
COUNT_KEYS = ("gen", "owner_id", "unit_path", "tier", "cls", "r", "f")


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
    def of_state(cls, st) -> "Thresholds":
        """From a ``class_state`` or ``class_build`` row."""
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


_STATE = ClassState.__table__
_BUILD = ClassBuild.__table__


def locked_state(s: Session, *, share: bool):
    """The ``class_state`` row (a Core row, never a stale ORM object), locked for share or update."""
    return s.execute(select(_STATE).where(_STATE.c.id == 1).with_for_update(read=share)).one_or_none()


def locked_build(s: Session, *, share: bool):
    return s.execute(select(_BUILD).where(_BUILD.c.id == 1).with_for_update(read=share)).one_or_none()


def current(s: Session, end: date, t: Thresholds) -> int | None:
    """The generation that answers a window ending on ``end`` with thresholds ``t``, else None."""
    st = s.execute(select(_STATE).where(_STATE.c.id == 1)).one_or_none()
    return st.gen if st is not None and st.as_of == end and Thresholds.of_state(st) == t else None


def generation(s: Session) -> int | None:
    """The generation the reports read now: a reader that finds it changed after reading a
    generation's rows reads again (the old generation may have been deleted meanwhile)."""
    return s.scalar(select(_STATE.c.gen).where(_STATE.c.id == 1))


def _upsert_counts(s: Session, rows: list[dict]) -> None:
    add_up(s, CC, COUNT_KEYS, COUNTS, rows)


def refresh(s: Session, membership_id: int | None) -> None:
    """Recompute one member's row from the facts and move the counts, in the caller's transaction:
    in the generation the reports read and, once its chunk is built, in the one being built."""
    if membership_id is None:
        return
    # Lock order everywhere: class_state, then class_build (a chunk waits for this transaction).
    st = locked_state(s, share=True)
    b = locked_build(s, share=True)
    targets = [] if st is None else [(st.gen, st)]
    if b is not None and b.as_of is not None and membership_id <= b.done_through:
        targets.append((b.gen, b))
    if not targets:
        return  # no summary yet: the page reads the facts until the daily job builds it
    s.flush()
    m = s.execute(select(Membership.status, Membership.customer_id, Membership.owner_id, Membership.unit_path,
                         Membership.tier).where(Membership.id == membership_id).with_for_update()).one_or_none()
    for gen, row in targets:
        _refresh_in(s, gen, Thresholds.of_state(row), row.as_of, membership_id, m)


def _refresh_in(s: Session, gen: int, t: Thresholds, as_of: date, membership_id: int, m) -> None:
    w = window_for(as_of, t.window_months)
    c = CMB.__table__.c
    old = s.execute(select(CMB.__table__).where(c.gen == gen, c.membership_id == membership_id)
                    ).mappings().one_or_none()
    new = None
    if m is not None and m.status == "active":
        spend, n, last = s.execute(select(func.coalesce(func.sum(Purchase.paid_total_fen), 0), func.count(Purchase.id),
                                          func.max(Purchase.purchased_on))
                                   .where(Purchase.membership_id == membership_id, Purchase.status == "complete",
                                          Purchase.purchased_on >= w.start, Purchase.purchased_on <= w.end)).one()
        cls, r, f = scores(int(spend), int(n), last, t, w)
        file_no = old["file_no"] if old else s.scalar(select(CustomerFile.file_no).where(CustomerFile.id == m.customer_id))
        new = {"gen": gen, "membership_id": membership_id, "customer_id": m.customer_id, "file_no": file_no,
               "owner_id": m.owner_id, "unit_path": m.unit_path, "tier": m.tier, "spend_fen": int(spend),
               "purchases": int(n), "last_on": last, "cls": cls, "r": r, "f": f}
    if old is not None and new is not None and all(old[k] == new[k] for k in new):
        return
    for row, sign in ((old, -1), (new, 1)):
        if row is not None:
            _upsert_counts(s, [{"gen": gen, "owner_id": row["owner_id"], "unit_path": row["unit_path"],
                                "tier": row["tier"], "cls": row["cls"], "r": row["r"], "f": row["f"],
                                "members": sign, "spend_fen": sign * row["spend_fen"],
                                "purchases": sign * row["purchases"]}])
    if old is not None:
        s.execute(CMB.__table__.delete().where(c.gen == gen, c.membership_id == membership_id))
    if new is not None:
        s.execute(CMB.__table__.insert(), [new])


def rebuild(s: Session, as_of: date) -> None:
    """A new generation from the facts as of ``as_of`` with the thresholds in force that day,
    switched in and the old one deleted, all in the caller's one transaction (bulk loads, the
    demo; the daily job builds in chunks: ``class_build.build_in_steps``)."""
    from . import class_build
    class_build.rebuild(s, as_of)
