"""Payments in bulk from a bank statement (CSV): all or nothing, errors by line.

Header (any order): ``order,file_no,date,amount,method,reference``. Each line names an order by
its receipt number, or a customer by file number (the payment then settles that customer's
delivered orders oldest due first). ``amount`` is yuan (``1,280.50``), ``method`` one of
cash, cash_cheque, transfer, wire, other; ``date`` YYYY-MM-DD, not in the future.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..customers.models import CustomerFile
from ..customers.service import InvalidInput, NotFound
from ..membership.pos_csv import parse_yuan
from ..policy import PermissionDenied
from . import receivables
from .models import CreditOrder

HEADER = ("order", "file_no", "date", "amount", "method", "reference")


class _Excess(Exception):
    """A line pays more than the orders it names owe (the whole line is rolled back)."""


@dataclass(frozen=True)
class LineError:
    line: int
    message: str


def _orders_for(s: Session, order: str, file_no: str) -> list[CreditOrder]:
    if order:
        o = s.scalar(select(CreditOrder).where(CreditOrder.receipt_no == order))
        return [o] if o is not None else []
    f = s.scalar(select(CustomerFile).where(CustomerFile.file_no == file_no))
    if f is None:
        return []
    return list(s.scalars(select(CreditOrder).where(
        CreditOrder.customer_id == f.id, CreditOrder.settled_at.is_(None), CreditOrder.delivered_on.is_not(None))
        .order_by(CreditOrder.due_on, CreditOrder.id)))


def import_statement(s: Session, actor: Actor, data: bytes, today: date) -> tuple[int, int, list[LineError]]:
    """Record every line's payment in the caller's transaction: (payments, fen, errors). The caller
    rolls back when there are errors (or for a dry run)."""
    text = data.decode("utf-8-sig", errors="strict")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not set(HEADER) <= {c.strip().lower() for c in rows[0]}:
        return 0, 0, [LineError(1, "the header must name " + ",".join(HEADER))]
    cols = {c.strip().lower(): i for i, c in enumerate(rows[0])}
    errors: list[LineError] = []
    count = total = 0
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        get = lambda k: row[cols[k]].strip() if cols[k] < len(row) else ""  # noqa: E731
        try:
            amount = parse_yuan(get("amount"))
            on = date.fromisoformat(get("date"))
        except ValueError as exc:
            errors.append(LineError(n, str(exc) or "bad date"))
            continue
        if on > today:
            errors.append(LineError(n, "the date is in the future"))
            continue
        orders = _orders_for(s, get("order"), get("file_no"))
        if not orders:
            errors.append(LineError(n, "no such order, or no delivered open order for that file"))
            continue
        left = amount
        try:
            with s.begin_nested():
                for o in orders:
                    if left <= 0:
                        break
                    s.refresh(o)
                    part = min(left, o.balance_fen)
                    if part <= 0:
                        continue
                    receivables.record_payment(s, actor, o.id, amount_fen=part, method=get("method"), on=on,
                                               reference=get("reference"))
                    left -= part
                if left > 0:
                    raise _Excess
        except _Excess:
            errors.append(LineError(n, "the amount is more than is owed"))
            continue
        except InvalidInput as exc:
            errors.append(LineError(n, "; ".join(f"{k}: {v}" for k, v in exc.errors.items())))
            continue
        except (PermissionDenied, NotFound):
            errors.append(LineError(n, f"{actor.username} may not record payments for this order"))
            continue
        count += 1
        total += amount
    return count, total, errors
