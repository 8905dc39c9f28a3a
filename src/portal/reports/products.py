"""report_product: each product's complete purchase lines per month and (owner, unit path, tier) of
the members as they stand now, for the monthly report's top products; kept by ``rollup`` in the
transaction of each purchase counted or taken back and moved with the member, like
``report_month``. Distinct buyers add up the same way: a member counts once in ``buyers`` for each
month they bought the product, and once in ``first_of_quarter`` / ``first_of_year`` in the first
such month of the quarter / year.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ..membership.models import Purchase, PurchaseLineRow as L
from .models import ReportProduct as RP
from ..upsert import add_up

FIGURES = ("buyers", "first_of_quarter", "first_of_year", "quantity", "paid_fen")
Key = tuple[int, str, str]
Figures = dict[tuple[str, str], dict[str, int]]   # (month, product) -> figures


def _figures(lines: list[tuple[date, str, int, int]]) -> Figures:
    out: Figures = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
    for on, product, qty, paid in lines:
        figs = out[(f"{on.year:04d}-{on.month:02d}", product)]
        figs["buyers"] = 1
        figs["quantity"] += qty
        figs["paid_fen"] += paid
    first_q: dict[tuple, tuple[str, str]] = {}
    first_y: dict[tuple, tuple[str, str]] = {}
    for mo, product in sorted(out):
        y, m = int(mo[:4]), int(mo[5:])
        first_q.setdefault((product, y, (m - 1) // 3), (mo, product))
        first_y.setdefault((product, y), (mo, product))
    for k in first_q.values():
        out[k]["first_of_quarter"] = 1
    for k in first_y.values():
        out[k]["first_of_year"] = 1
    return out


def _add(s: Session, key: Key, figures: Figures, sign: int = 1) -> None:
    add_up(s, RP, ("month", "owner_id", "unit_path", "tier", "product"), FIGURES,
            [{"month": mo, "product": product, "owner_id": key[0], "unit_path": key[1], "tier": key[2],
              **{f: sign * figs.get(f, 0) for f in FIGURES}} for (mo, product), figs in figures.items()])


def purchase_change(s: Session, p: Purchase, key: Key, sign: int) -> None:
    """The member's lines of ``p``'s products in its year, with and without ``p`` (flushed, the
    member locked by the caller): the difference is added (sign 1) or taken (-1)."""
    mine = s.execute(select(L.product, L.quantity, L.paid_fen).where(L.purchase_id == p.id)).all()
    if not mine:
        return
    y = p.purchased_on.year
    without = [tuple(r) for r in s.execute(
        select(Purchase.purchased_on, L.product, L.quantity, L.paid_fen).join(Purchase, Purchase.id == L.purchase_id)
        .where(Purchase.membership_id == p.membership_id, Purchase.status == "complete", Purchase.id != p.id,
               Purchase.purchased_on >= date(y, 1, 1), Purchase.purchased_on <= date(y, 12, 31),
               L.product.in_({r[0] for r in mine})))]
    with_p, before = _figures(without + [(p.purchased_on, *r) for r in mine]), _figures(without)
    delta = {k: {f: with_p.get(k, {}).get(f, 0) - before.get(k, {}).get(f, 0) for f in FIGURES}
             for k in {*with_p, *before}}
    _add(s, key, delta, sign)


def member_moved(s: Session, membership_id: int, old: Key, new: Key) -> None:
    """The member's key changed: all their product months go from the old key to the new."""
    history = _figures([tuple(r) for r in s.execute(
        select(Purchase.purchased_on, L.product, L.quantity, L.paid_fen).join(Purchase, Purchase.id == L.purchase_id)
        .where(Purchase.membership_id == membership_id, Purchase.status == "complete"))])
    _add(s, old, history, -1)
    _add(s, new, history)


def rebuild_sql(dialect: str) -> str:
    pm = "to_char(p.purchased_on, 'YYYY-MM')" if dialect == "postgresql" else "strftime('%Y-%m', p.purchased_on)"
    return f"""
WITH pl AS (
  SELECT p.membership_id AS mid, {pm} AS month, l.product AS product, sum(l.quantity) AS q, sum(l.paid_fen) AS fen
  FROM purchase p JOIN purchase_line l ON l.purchase_id = p.id
  WHERE p.status = 'complete' AND p.membership_id IS NOT NULL
  GROUP BY p.membership_id, {pm}, l.product
), pf AS (
  SELECT mid, month, product, q, fen,
    CASE WHEN month = min(month) OVER (PARTITION BY mid, product, substr(month, 1, 4),
                                       (CAST(substr(month, 6, 2) AS INTEGER) + 2) / 3) THEN 1 ELSE 0 END AS fq,
    CASE WHEN month = min(month) OVER (PARTITION BY mid, product, substr(month, 1, 4)) THEN 1 ELSE 0 END AS fy
  FROM pl
)
INSERT INTO report_product (month, owner_id, unit_path, tier, product, buyers, first_of_quarter, first_of_year,
                            quantity, paid_fen)
SELECT pf.month, m.owner_id, m.unit_path, m.tier, pf.product, count(*), sum(fq), sum(fy), sum(q), sum(fen)
FROM pf JOIN membership m ON m.id = pf.mid
GROUP BY pf.month, m.owner_id, m.unit_path, m.tier, pf.product"""


def rebuild(conn) -> None:
    dialect = conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name
    conn.execute(RP.__table__.delete())
    conn.execute(text(rebuild_sql(dialect)))
