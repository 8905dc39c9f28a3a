"""What people read: a file's credit and the overdue board (scoped in SQL by the policy). File
numbers only, never personal data. (The liability report: credit/liabilities.py.)"""
from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, func, select, true
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..policy import Action, customer_scope
from ..policy.scoped import Scoped
from .models import CreditApplication, CreditOrder
from .rules import BUCKETS, ageing_bucket, days_overdue


@dataclass(frozen=True)
class OrderRow:
    id: int
    receipt_no: str
    file_no: str
    customer_id: uuid.UUID
    terms: str
    operator: str
    boxes: int
    amount_fen: int
    balance_fen: int
    ordered_on: date
    delivered_on: date | None
    due_on: date | None
    days_overdue: int
    bucket: str
    no_invoice: bool
    settled: bool


def _names(s: Session, ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    return {u.id: u.username for u in s.scalars(select(User).where(User.id.in_(ids)))} if ids else {}


def _rows(s: Session, q, today: date) -> list[OrderRow]:
    pairs = list(s.execute(q))
    names = _names(s, [o.operator_id for o, _ in pairs])
    return [OrderRow(o.id, o.receipt_no, file_no, o.customer_id, o.terms, names.get(o.operator_id, "—"), o.boxes,
                     o.amount_fen, o.balance_fen, o.ordered_on, o.delivered_on, o.due_on,
                     days_overdue(o.due_on, today) if o.settled_at is None else 0,
                     ageing_bucket(o.due_on, today) if o.settled_at is None else "not_due",
                     o.no_invoice, o.settled_at is not None) for o, file_no in pairs]


def orders_of(s: Session, customer_id: uuid.UUID, today: date, limit: int = 100) -> list[OrderRow]:
    q = (select(CreditOrder, CustomerFile.file_no).join(CustomerFile, CustomerFile.id == CreditOrder.customer_id)
         .where(CreditOrder.customer_id == customer_id).order_by(CreditOrder.id.desc()).limit(limit))
    return _rows(s, q, today)


def applications_of(s: Session, customer_id: uuid.UUID) -> list[tuple[CreditApplication, str, str]]:
    apps = list(s.scalars(select(CreditApplication).where(CreditApplication.customer_id == customer_id)
                          .order_by(CreditApplication.id.desc()).limit(50)))
    names = _names(s, [a.requested_by_id for a in apps] + [a.decided_by_id for a in apps])
    return [(a, names.get(a.requested_by_id, "?"), names.get(a.decided_by_id, "")) for a in apps]


@dataclass(frozen=True)
class Board:
    rows: list[OrderRow]
    buckets: dict[str, int]                      # bucket -> balance fen
    per_salesperson: dict[str, dict[str, int]]   # operator -> bucket -> balance fen
    overdue_count: int


def _scope(actor: Actor):
    # The command line (``portal receivables list`` without --as) acts on the operator's authority.
    return true() if actor.role == "system" else customer_scope(actor, Action.RECEIVABLE_BOARD)


def _open_orders(scope, overdue_only: bool):
    """The board's statement for one scope shape: open orders with their file number and their
    operator's name, columns only, the scope's values, today and the limit as bound parameters."""
    q = (select(CreditOrder.id, CreditOrder.receipt_no, CustomerFile.file_no, CreditOrder.customer_id,
                CreditOrder.terms, User.username, CreditOrder.boxes, CreditOrder.amount_fen, CreditOrder.balance_fen,
                CreditOrder.ordered_on, CreditOrder.delivered_on, CreditOrder.due_on, CreditOrder.no_invoice)
         .join(CustomerFile, CustomerFile.id == CreditOrder.customer_id)
         .outerjoin(User, User.id == CreditOrder.operator_id)
         .where(CreditOrder.settled_at.is_(None), scope.any()))
    if overdue_only:
        q = q.where(CreditOrder.due_on < bindparam("today", required=True))
    return (q.order_by(CreditOrder.due_on.is_(None), CreditOrder.due_on, CreditOrder.id)
            .limit(bindparam("limit", required=True)))


# Built once per scope shape (policy.scoped), run on the driver.
_BOARD = Scoped(Action.RECEIVABLE_BOARD, _open_orders)


def _open_rows(s: Session, actor: Actor, today: date, overdue_only: bool, limit: int) -> list[OrderRow]:
    if actor.role == "system":  # the command line without --as: every open order, through the ORM
        q = (select(CreditOrder, CustomerFile.file_no).join(CustomerFile, CustomerFile.id == CreditOrder.customer_id)
             .where(CreditOrder.settled_at.is_(None), _scope(actor))
             .order_by(CreditOrder.due_on.is_(None), CreditOrder.due_on, CreditOrder.id).limit(limit))
        if overdue_only:
            q = q.where(CreditOrder.due_on < today)
        return _rows(s, q, today)
    found = _BOARD.all(s.connection(), actor, {"today": today, "limit": limit}, variant=(overdue_only,))
    return [OrderRow(oid, receipt_no, file_no, customer_id, terms, operator or "—", boxes, amount, balance, ordered_on,
                     delivered_on, due_on, days_overdue(due_on, today), ageing_bucket(due_on, today), no_invoice, False)
            for (oid, receipt_no, file_no, customer_id, terms, operator, boxes, amount, balance, ordered_on,
                 delivered_on, due_on, no_invoice) in found]


def board(s: Session, actor: Actor, today: date, *, overdue_only: bool = False, audit_it: bool = True) -> Board:
    """Open orders of the customers in the actor's scope (own; a leader's units), oldest due first."""
    rows = _open_rows(s, actor, today, overdue_only, 1000)
    buckets = {b: 0 for b in BUCKETS}
    per: dict[str, dict[str, int]] = defaultdict(lambda: {b: 0 for b in BUCKETS})
    for r in rows:
        buckets[r.bucket] += r.balance_fen
        per[r.operator][r.bucket] += r.balance_fen
    overdue = sum(r.days_overdue > 0 for r in rows)
    if audit_it:
        audit.record(s, actor, Action.RECEIVABLE_BOARD.value, object_type="list", object_id="receivables",
                     detail=f"{len(rows)} open, {overdue} overdue")
    return Board(rows, buckets, dict(per), overdue)


_OVERDUE = Scoped(Action.RECEIVABLE_BOARD, lambda scope: (
    select(func.count()).select_from(CreditOrder).join(CustomerFile, CustomerFile.id == CreditOrder.customer_id)
    .where(CreditOrder.settled_at.is_(None), CreditOrder.due_on < bindparam("today", required=True), scope.any())))


def overdue_count(s: Session, actor: Actor, today: date) -> int:
    """For the home pages: how many open orders in scope are past their due date (no personal
    data); prebuilt per scope shape (policy.scoped)."""
    return int(_OVERDUE.scalar(s.connection(), actor, {"today": today}) or 0)
