"""The large purchases that may make a follow-up visit due, kept in ``purchase_follow_up``.

The visits due list (due.py) walks this small table per scope arm in purchase-day order instead
of finding every large purchase of the company and checking each against the reader's scope.
It holds one row per complete purchase of a file, made within the last LOOKBACK_DAYS, at or above
the LOWEST large-purchase threshold in force on any day of that window (versions that take effect
later included): the list compares each row's paid total with the threshold in force on the day
it is read, so raising the threshold needs nothing here and lowering it adds the purchases it makes
large when the version is saved (``add_missing``, from settings.save_version).

Written in the purchase's transaction: the listeners on ``Purchase`` (membership/models.py) call
``purchase_written`` when a purchase is inserted or its file, status, paid total or day changes
(a claim, a return); a reassignment moves the rows with the membership (customers/service.py);
deleting a purchase or a file deletes its rows (ON DELETE CASCADE); an erasure keeps them (they
hold no personal data, and the erased file stays on the list under its number, as before).
Rows older than the window are never read (the day follows the scope key in every index);
``portal jobs daily`` deletes them in short steps (``purge_old``). Bulk loads that bypass the ORM
call ``rebuild``.
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import bindparam, delete, exists, insert, select
from sqlalchemy.orm import Session

from ..customers.models import CustomerFile
from ..membership.models import Purchase, PurchaseFollowUp
from ..membership.rules import programme_today
from .settings import lowest_large_purchase_fen

LOOKBACK_DAYS = 90  # large purchases older than this no longer make a visit due

_F = PurchaseFollowUp
_T = PurchaseFollowUp.__table__  # Core statements (not the ORM's bulk insert with parameters)
_COLS = ("purchase_id", "customer_id", "owner_id", "unit_path", "file_no", "purchased_on", "paid_total_fen")


def _rows(*where):
    """The follow-up rows of the purchases that qualify (at or above ``min_fen``, from ``from_day``),
    as INSERT ... SELECT (the migration's backfill is the same SQL)."""
    q = (select(Purchase.id, Purchase.customer_id, CustomerFile.owner_id, CustomerFile.unit_path,
                CustomerFile.file_no, Purchase.purchased_on, Purchase.paid_total_fen)
         .join(CustomerFile, CustomerFile.id == Purchase.customer_id)
         .where(Purchase.status == "complete", Purchase.paid_total_fen >= bindparam("min_fen"),
                Purchase.purchased_on >= bindparam("from_day"), *where))
    return insert(_T).from_select(list(_COLS), q)


_ONE = _rows(Purchase.id == bindparam("purchase"))
_MISSING = _rows(~exists().where(_F.purchase_id == Purchase.id))
_DROP_ONE = delete(_T).where(_T.c.purchase_id == bindparam("purchase"))


def _window(today: date) -> date:
    return today - timedelta(days=LOOKBACK_DAYS)


def lowest_in_window(conn, today: date) -> int:
    """The threshold a purchase of the window is kept at (the lowest in force from its first day on)."""
    return lowest_large_purchase_fen(conn, _window(today))


def purchase_written(conn, purchase_id: int, *, fresh: bool = False) -> None:
    """The purchase's row as it is now (none if it no longer qualifies); ``fresh``: just inserted."""
    today = programme_today()
    if not fresh:
        conn.execute(_DROP_ONE, {"purchase": purchase_id})
    conn.execute(_ONE, {"purchase": purchase_id, "min_fen": lowest_in_window(conn, today),
                        "from_day": _window(today)})


def add_missing(s: Session, today: date) -> None:
    """The window's purchases that qualify and have no row yet (a lower threshold was saved): one
    INSERT ... SELECT."""
    s.execute(_MISSING, {"min_fen": lowest_in_window(s, today), "from_day": _window(today)})


PURGE_CHUNK = 2000
_OLD = delete(_T).where(_T.c.purchase_id.in_(
    select(_T.c.purchase_id).where(_T.c.purchased_on < bindparam("before")).limit(bindparam("chunk"))
    .scalar_subquery()))


def purge_old(db, today: date | None = None) -> int:
    """Delete the rows older than the window, PURGE_CHUNK at a time, each chunk its own short
    transaction (the daily job); how many were deleted."""
    before = _window(today or programme_today())
    gone = 0
    while True:
        with db.connect_write() as conn:
            n = conn.execute(_OLD, {"before": before, "chunk": PURGE_CHUNK}).rowcount
        gone += n
        if n < PURGE_CHUNK:
            return gone


def rebuild(s: Session, today: date | None = None) -> None:
    """Every row from the purchases (after a bulk load that bypassed the ORM)."""
    today = today or programme_today()
    s.execute(delete(_T))
    add_missing(s, today)
