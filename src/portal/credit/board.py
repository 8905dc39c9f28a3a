"""What people read: a file's credit, the overdue board (scoped in SQL by the policy), the
liability report and its CSV/XLSX export. File numbers only, never personal data."""
from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers.export import neutralise_cell
from ..customers.models import CustomerFile
from ..policy import Action, customer_scope
from .models import CreditApplication, CreditOrder, Liability
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


def board(s: Session, actor: Actor, today: date, *, overdue_only: bool = False, audit_it: bool = True) -> Board:
    """Open orders of the customers in the actor's scope (own; a leader's units), oldest due first."""
    q = (select(CreditOrder, CustomerFile.file_no).join(CustomerFile, CustomerFile.id == CreditOrder.customer_id)
         .where(CreditOrder.settled_at.is_(None), _scope(actor))
         .order_by(CreditOrder.due_on.is_(None), CreditOrder.due_on, CreditOrder.id).limit(1000))
    if overdue_only:
        q = q.where(CreditOrder.due_on < today)
    rows = _rows(s, q, today)
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


def overdue_count(s: Session, actor: Actor, today: date) -> int:
    """For the home pages: how many open orders in scope are past their due date (no personal data)."""
    from sqlalchemy import func
    return int(s.scalar(select(func.count()).select_from(CreditOrder)
                        .join(CustomerFile, CustomerFile.id == CreditOrder.customer_id)
                        .where(CreditOrder.settled_at.is_(None), CreditOrder.due_on < today,
                               customer_scope(actor, Action.RECEIVABLE_BOARD))) or 0)


# ---------------------------------------------------------------- liability

@dataclass(frozen=True)
class LiabilityRow:
    id: int
    person: str
    role: str
    amount_fen: int
    order_id: int
    receipt_no: str
    reason: str
    decided_by: str
    created_at: datetime
    settled: bool


def liabilities(s: Session, actor: Actor, action: Action, *, start: date | None = None,
                end: date | None = None) -> list[LiabilityRow]:
    q = (select(Liability, CreditOrder.receipt_no).join(CreditOrder, CreditOrder.id == Liability.order_id)
         .where(customer_scope(actor, action, owner=Liability.person_id, unit_path=Liability.person_unit_path,
                               file_id=Liability.id)).order_by(Liability.id.desc()).limit(5000))
    pairs = [(li, r) for li, r in s.execute(q)
             if (start is None or li.created_at.date() >= start) and (end is None or li.created_at.date() <= end)]
    names = _names(s, [li.person_id for li, _ in pairs] + [li.decided_by_id for li, _ in pairs])
    return [LiabilityRow(li.id, names.get(li.person_id, "?"), li.role, li.amount_fen, li.order_id, receipt,
                         li.reason, names.get(li.decided_by_id, "?"), li.created_at, li.settled_at is not None)
            for li, receipt in pairs]


def totals_per_person(rows: list[LiabilityRow]) -> list[tuple[str, int, int, int]]:
    """(person, owed as operator, fines as line leader, unsettled)."""
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        acc[r.person][0 if r.role == "operator" else 1] += r.amount_fen
        if not r.settled:
            acc[r.person][2] += r.amount_fen
    return [(p, *v) for p, v in sorted(acc.items())]


HEADER = ["liability", "person", "role", "amount_yuan", "order", "receipt_no", "reason", "decided_by",
          "recorded_at", "settled"]


def _xlsx(table: list[list]) -> bytes:
    """The rows as one sheet (openpyxl, as the reports' exports): yuan and date formats, text cells
    neutralised like the CSV's so a spreadsheet never runs them as formulas."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from ..reports.exporting import YUAN_FORMAT
    wb = Workbook()
    ws = wb.active
    ws.title = "liability"
    ws.append(HEADER)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for r, row in enumerate(table, start=2):
        for c, value in enumerate(row, start=1):
            cell = ws.cell(row=r, column=c)
            if c == 4:
                cell.value, cell.number_format = value / 100, YUAN_FORMAT
            elif isinstance(value, datetime):
                cell.value, cell.number_format = value.replace(tzinfo=None), "yyyy-mm-dd hh:mm"
            elif isinstance(value, int):
                cell.value = value
            else:
                cell.value, cell.data_type = neutralise_cell(str(value)), "s"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def export_liabilities(s: Session, actor: Actor, fmt: str, *, start: date | None = None,
                       end: date | None = None) -> tuple[bytes, int]:
    """The report as CSV or XLSX bytes; audited with the rows and the bytes' SHA-256."""
    rows = liabilities(s, actor, Action.LIABILITY_EXPORT, start=start, end=end)
    table = [[r.id, r.person, r.role, r.amount_fen, r.order_id, r.receipt_no, r.reason, r.decided_by,
              r.created_at, "yes" if r.settled else "no"] for r in rows]
    if fmt == "xlsx":
        data = _xlsx(table)
    else:
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(HEADER)
        w.writerows([[neutralise_cell(f"{v / 100:.2f}" if i == 3 else v.isoformat() if isinstance(v, datetime)
                                      else str(v)) for i, v in enumerate(row)] for row in table])
        data = ("\ufeff" + out.getvalue()).encode("utf-8")
    audit.record(s, actor, Action.LIABILITY_EXPORT.value, object_type="export", object_id="liabilities",
                 detail=f"{fmt} rows={len(rows)} sha256={hashlib.sha256(data).hexdigest()}")
    return data, len(rows)
