"""The file page's membership reads: statements built once and run on the driver's cursor
(driver_sql.Prebuilt) in the page's read transaction, each row a named tuple of the columns the
page shows, named as the model's attributes (no ORM objects: an ORM query costs about 1 ms of CPU
a page, most of it building objects the page only reads).

- the membership (None for a file that has none: most);
- its card accounts, each with its cards (one statement, a join);
- its 30 latest coupons;
- the file's 30 latest purchases with their lines (one statement: the purchases a subquery, their
  lines joined, in the order the page shows them).

tests/test_file_page_reads.py compares each with what the ORM reads.
"""
from __future__ import annotations

from collections import namedtuple

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from ..driver_sql import Prebuilt
from .models import CardAccount, Coupon, MemberCard, Membership, Purchase, PurchaseLineRow


def _shape(name: str, columns) -> tuple[type, tuple]:
    """A named tuple type whose fields are the columns' attribute names, and the columns."""
    columns = tuple(columns)
    return namedtuple(name, [c.key for c in columns]), columns


_M = Membership.__table__.c
MembershipRow, _M_COLS = _shape("MembershipRow", (
    _M.id, _M.customer_id, _M.tier, _M.tier_floor, _M.tier_ceiling, _M.status, _M.joined_on, _M.join_cause,
    _M.last_purchase_on, _M.spend_counted_from))
_MEMBERSHIP = Prebuilt(select(*_M_COLS).where(_M.customer_id == bindparam("cid")))

_A, _C = CardAccount.__table__.c, MemberCard.__table__.c
AccountRow, _A_COLS = _shape("AccountRow", (
    _A.id, _A.membership_id, _A.card_type, _A.named, _A.status, _A.issued_on, _A.expires_on, _A.points_balance,
    _A.stored_value_fen))
CardRow, _C_COLS = _shape("CardRow", (_C.id, _C.number, _C.status, _C.issued_on))
_CARDS = Prebuilt(select(*_A_COLS, *_C_COLS)
                  .outerjoin(MemberCard.__table__, _C.account_id == _A.id)
                  .where(_A.membership_id == bindparam("mid"))
                  .order_by(_A.id, _C.id.desc()))

_K = Coupon.__table__.c
CouponRow, _K_COLS = _shape("CouponRow", (
    _K.id, _K.code, _K.source, _K.kind, _K.amount_fen, _K.rate_per_mille, _K.min_spend_fen, _K.valid_from,
    _K.valid_until, _K.tiers, _K.status))
_COUPONS = Prebuilt(select(*_K_COLS).where(_K.membership_id == bindparam("mid")).order_by(_K.id.desc())
                    .limit(bindparam("limit")))

_P, _L = Purchase.__table__.c, PurchaseLineRow.__table__.c
_LATEST = (select(_P.id, _P.receipt_no, _P.card_number, _P.purchased_on, _P.payment_method, _P.list_total_fen,
                  _P.discount_total_fen, _P.paid_total_fen, _P.discount_reason, _P.points_earned,
                  _P.coupon_discount_fen, _P.points_paid, _P.points_paid_fen, _P.status)
           .where(_P.customer_id == bindparam("cid"))
           .order_by(_P.purchased_on.desc(), _P.id.desc()).limit(bindparam("limit")).subquery("latest"))
PurchaseRow = namedtuple("PurchaseRow", [c.key for c in _LATEST.c])
LineRow, _L_COLS = _shape("LineRow", (_L.line_no, _L.product, _L.quantity, _L.unit_price_fen, _L.special_price,
                                      _L.group_buy, _L.list_fen, _L.paid_fen))
_PURCHASES = Prebuilt(select(*_LATEST.c, *_L_COLS)
                      .outerjoin(PurchaseLineRow.__table__, _L.purchase_id == _LATEST.c.id)
                      .order_by(_LATEST.c.purchased_on.desc(), _LATEST.c.id.desc(), _L.line_no))


def membership_row(conn: Connection, customer_id) -> MembershipRow | None:
    rows = _MEMBERSHIP.all(conn, {"cid": customer_id})
    return MembershipRow(*rows[0]) if rows else None


def accounts_with_cards(conn: Connection, membership_id: int) -> list[tuple[AccountRow, list[CardRow]]]:
    """Each card account of the membership (by id) with its cards (newest first), as
    cards.cards_of() gives them."""
    out: list[tuple[AccountRow, list[CardRow]]] = []
    n = len(_A_COLS)
    for row in _CARDS.all(conn, {"mid": membership_id}):
        if not out or out[-1][0].id != row[0]:
            out.append((AccountRow(*row[:n]), []))
        if row[n] is not None:
            out[-1][1].append(CardRow(*row[n:]))
    return out


def coupons(conn: Connection, membership_id: int, limit: int = 30) -> list[CouponRow]:
    """The membership's latest coupons, newest first (coupons.coupons_of())."""
    return [CouponRow(*row) for row in _COUPONS.all(conn, {"mid": membership_id, "limit": limit})]


def purchases(conn: Connection, customer_id, limit: int = 30) -> list[dict]:
    """The file's ``limit`` latest purchases (latest day first, then latest recorded), each
    {"purchase": PurchaseRow, "lines": [LineRow, ...]} with its lines in order."""
    out: list[dict] = []
    n = len(PurchaseRow._fields)
    last = None
    for row in _PURCHASES.all(conn, {"cid": customer_id, "limit": limit}):
        if row[0] != last:
            last = row[0]
            lines: list = []
            out.append({"purchase": PurchaseRow(*row[:n]), "lines": lines})
        if row[n] is not None:
            lines.append(LineRow(*row[n:]))
    return out
