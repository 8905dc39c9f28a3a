"""The report_month summary: the one module that knows its shape. The domain's use cases call it in
their own transaction (a purchase counted or taken back, points written, a member moved to another
owner, unit or tier); the reports read it for whole months; bulk loads rebuild it from the facts.

Keys are the member's owner, unit path and tier as they stand now (what the live reports scope and
group by), so every month of a member sits under one key and moves with them. Distinct buyers add
up: a member counts once in ``buyers`` for each month with a purchase, and once in
``first_of_quarter`` / ``first_of_year`` in the first such month of the quarter / year.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..membership.models import CardAccount, Membership, PointsEntryRow, Purchase
from ..policy import Action
from . import products, summaries
from .models import ReportMonth as RM
from ..upsert import add_up

FIGURES = ("purchases", "spend_fen", "buyers", "first_of_quarter", "first_of_year",
           "points_earned", "points_redeemed", "points_expired")
EARNED = ("earn", "referral", "event")
Key = tuple[int, str, str]  # owner_id, unit_path, tier
Months = dict[str, dict[str, int]]


def key_of(m: Membership) -> Key:
    return (m.owner_id, m.unit_path, m.tier)


def _month(on: date) -> str:
    return f"{on.year:04d}-{on.month:02d}"


def _add(s: Session, key: Key, months: Months, sign: int = 1) -> None:
    """Add (or, sign -1, take away) figures per month under a key: an upsert per month."""
    rows = [{"month": mo, "owner_id": key[0], "unit_path": key[1], "tier": key[2],
             **{f: sign * figs.get(f, 0) for f in FIGURES}}
            for mo, figs in months.items()]
    add_up(s, RM, ("month", "owner_id", "unit_path", "tier"), FIGURES, rows)


def _purchase_figures(days: list[tuple[date, int]]) -> Months:
    """Purchases, spend and buyer flags per month of one member's complete purchases."""
    out: Months = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
    for on, fen in days:
        figs = out[_month(on)]
        figs["purchases"] += 1
        figs["spend_fen"] += fen
        figs["buyers"] = 1
    first_q: dict[tuple[int, int], str] = {}
    first_y: dict[int, str] = {}
    for mo in sorted(out):
        y, m = int(mo[:4]), int(mo[5:])
        first_q.setdefault((y, (m - 1) // 3), mo)
        first_y.setdefault(y, mo)
    for mo in first_q.values():
        out[mo]["first_of_quarter"] = 1
    for mo in first_y.values():
        out[mo]["first_of_year"] = 1
    return out


def _minus(a: Months, b: Months) -> Months:
    return {mo: {f: a.get(mo, {}).get(f, 0) - b.get(mo, {}).get(f, 0) for f in FIGURES} for mo in {*a, *b}}


def _lock_member(s: Session, membership_id: int) -> Membership:
    # One member's buyer flags are decided one transaction at a time (PostgreSQL; SQLite has one writer).
    s.execute(select(Membership.id).where(Membership.id == membership_id).with_for_update())
    return s.get(Membership, membership_id)


def _purchase_change(s: Session, p: Purchase, sign: int) -> None:
    """The member's year with and without ``p``; the difference is added (sign 1) or taken (-1)."""
    if p.membership_id is None:
        return
    s.flush()
    m = _lock_member(s, p.membership_id)
    y = p.purchased_on.year
    rows = s.execute(select(Purchase.id, Purchase.purchased_on, Purchase.paid_total_fen, Purchase.status)
                     .where(Purchase.membership_id == p.membership_id,
                            Purchase.purchased_on >= date(y, 1, 1), Purchase.purchased_on <= date(y, 12, 31))).all()
    without = [(on, fen) for pid, on, fen, st in rows if st == "complete" and pid != p.id]
    with_p = without + [(p.purchased_on, p.paid_total_fen)]
    delta = _minus(_purchase_figures(with_p), _purchase_figures(without))
    _add(s, key_of(m), delta, sign)
    products.purchase_change(s, p, key_of(m), sign)


def purchase_counted(s: Session, p: Purchase) -> None:
    """A complete purchase now belongs to its member (recorded, or attached by a claim). Call it
    before anything that may move the member (a tier change), so the summary holds the facts."""
    _purchase_change(s, p, 1)


def purchase_uncounted(s: Session, p: Purchase) -> None:
    """A purchase of a member no longer counts (returned)."""
    _purchase_change(s, p, -1)


def points_written(s: Session, account: CardAccount, rows: list[PointsEntryRow]) -> None:
    """Points entries appended to an account's ledger."""
    months: Months = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
    for r in rows:
        figs = months[_month(r.on)]
        if r.kind in EARNED:
            figs["points_earned"] += r.points
        elif r.kind == "redeem":
            figs["points_redeemed"] -= r.points
        elif r.kind == "expire":
            figs["points_expired"] -= r.points
    now = summaries.locked_key(s, account.membership_id)  # as committed, locked (summaries.py)
    if now is not None:
        _add(s, now[0], months)


def member_history(s: Session, membership_id: int) -> Months:
    """All of one member's figures per month, from the facts."""
    s.flush()
    days = s.execute(select(Purchase.purchased_on, Purchase.paid_total_fen).where(
        Purchase.membership_id == membership_id, Purchase.status == "complete")).all()
    out = _purchase_figures([(on, fen) for on, fen in days])
    e = PointsEntryRow
    for on, kind, points in s.execute(
            select(e.on, e.kind, e.points).join(CardAccount, CardAccount.id == e.account_id)
            .where(CardAccount.membership_id == membership_id, e.kind.in_((*EARNED, "redeem", "expire")))):
        figs = out[_month(on)]
        if kind in EARNED:
            figs["points_earned"] += points
        elif kind == "redeem":
            figs["points_redeemed"] -= points
        else:
            figs["points_expired"] -= points
    return out


def member_moved(s: Session, membership_id: int, old: Key, new: Key, *, old_status: str | None = None) -> None:
    """The member's owner, unit or tier (or, ``old_status`` given, status) changed: their months,
    and their rows of the member summaries (summaries.py), go from the old key to the new."""
    m = s.get(Membership, membership_id)
    summaries.member_restated(s, membership_id, old, m.status if old_status is None else old_status, new, m.status)
    if old == new:
        return
    _lock_member(s, membership_id)
    history = member_history(s, membership_id)
    _add(s, old, history, -1)
    _add(s, new, history, 1)
    summaries.flows_moved(s, membership_id, old, new)
    products.member_moved(s, membership_id, old, new)


# ---------------------------------------------------------------- bulk: rebuilt from the facts

def _rebuild_sql(dialect: str, where_members: str = "") -> str:
    pm = "to_char(p.purchased_on, 'YYYY-MM')" if dialect == "postgresql" else "strftime('%Y-%m', p.purchased_on)"
    em = """to_char(e."on", 'YYYY-MM')""" if dialect == "postgresql" else """strftime('%Y-%m', e."on")"""
    return f"""
WITH pm AS (
  SELECT p.membership_id AS mid, {pm} AS month, count(*) AS n, sum(p.paid_total_fen) AS fen
  FROM purchase p WHERE p.status = 'complete' AND p.membership_id IS NOT NULL {where_members.replace('{mid}', 'p.membership_id')}
  GROUP BY p.membership_id, {pm}
), pf AS (
  SELECT mid, month, n, fen,
    CASE WHEN month = min(month) OVER (PARTITION BY mid, substr(month, 1, 4),
                                       (CAST(substr(month, 6, 2) AS INTEGER) + 2) / 3) THEN 1 ELSE 0 END AS fq,
    CASE WHEN month = min(month) OVER (PARTITION BY mid, substr(month, 1, 4)) THEN 1 ELSE 0 END AS fy
  FROM pm
), pts AS (
  SELECT a.membership_id AS mid, {em} AS month,
    sum(CASE WHEN e.kind IN ('earn', 'referral', 'event') THEN e.points ELSE 0 END) AS earned,
    sum(CASE WHEN e.kind = 'redeem' THEN -e.points ELSE 0 END) AS redeemed,
    sum(CASE WHEN e.kind = 'expire' THEN -e.points ELSE 0 END) AS expired
  FROM points_entry e JOIN card_account a ON a.id = e.account_id
  WHERE e.kind IN ('earn', 'referral', 'event', 'redeem', 'expire') {where_members.replace('{mid}', 'a.membership_id')}
  GROUP BY a.membership_id, {em}
), facts AS (
  SELECT mid, month, n, fen, 1 AS bm, fq, fy, 0 AS earned, 0 AS redeemed, 0 AS expired FROM pf
  UNION ALL
  SELECT mid, month, 0, 0, 0, 0, 0, earned, redeemed, expired FROM pts
)
INSERT INTO report_month (month, owner_id, unit_path, tier, purchases, spend_fen, buyers, first_of_quarter,
                          first_of_year, points_earned, points_redeemed, points_expired)
SELECT facts.month, m.owner_id, m.unit_path, m.tier, sum(n), sum(fen), sum(bm), sum(fq), sum(fy),
       sum(earned), sum(redeemed), sum(expired)
FROM facts JOIN membership m ON m.id = facts.mid
GROUP BY facts.month, m.owner_id, m.unit_path, m.tier"""


def rebuild(conn) -> None:
    """Recompute the whole summary, and report_product, report_member and report_flow, from the
    facts (a bulk load, the demo, a test's fixture), in the database: INSERT ... SELECT, no rows
    through Python. ``conn``: a Session or Connection."""
    conn.execute(RM.__table__.delete())
    conn.execute(text(_rebuild_sql(conn.get_bind().dialect.name if isinstance(conn, Session)
                                   else conn.dialect.name)))
    products.rebuild(conn)
    summaries.rebuild(conn)


# ---------------------------------------------------------------- reading

SUMMARY_PERIODS = ("month", "quarter", "year")


def summary_where(actor: Actor, f, *, action: Action = Action.REPORT_VIEW) -> list | None:
    """WHERE clauses over ReportMonth for the report filter ``f`` (policy scope by its owner and
    unit arms, unit, tier, whole months), or None when the summary cannot answer: a custom
    period, a category, or a scope with grants to single files (the live query answers those)."""
    p = f.period
    if p.kind not in SUMMARY_PERIODS:
        return None
    conds = summaries.keyed_where(actor, f, RM.owner_id, RM.unit_path, RM.tier, action=action)
    if conds is None:
        return None
    months = p.months()
    return [RM.month >= months[0], RM.month <= months[-1], *conds]


def buyers_of(period) -> object:
    """The column whose sum over the period's months is its distinct buying members."""
    return {"month": RM.buyers, "quarter": RM.first_of_quarter, "year": RM.first_of_year}[period.kind]


def total(col):
    """sum() as an integer on both databases (PostgreSQL sums a BIGINT as NUMERIC)."""
    return func.coalesce(func.sum(col), 0)
