"""Liabilities (seed 000): the report per person and period with what is settled and what is still
outstanding, its CSV/XLSX export, one liability with its settlements, and recording a settlement.

A settlement (partial or whole: amount, date, method, note) is a row of ``liability_settlement``,
which the database never lets change; it is recorded by a leader above the person (never by the
person), under the liability's row lock, and the sum is cached on the liability in the same
transaction (a CHECK keeps it within the amount). Usernames and receipt numbers only: no personal
data of customers.
"""
from __future__ import annotations

import csv
import hashlib
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers.export import neutralise_cell
from ..customers.service import InvalidInput, NotFound
from ..membership.rules import PROGRAMME_TZ, programme_today
from ..policy import Action, PermissionDenied, can, customer_scope
from .models import CreditOrder, Liability, LiabilitySettlement

METHODS = ("payroll", "cash", "transfer", "other")   # payroll: deducted from the person's pay


@dataclass(frozen=True)
class LiabilityRow:
    id: int
    person: str
    role: str
    amount_fen: int
    settled_fen: int
    order_id: int
    receipt_no: str
    reason: str
    decided_by: str
    created_at: datetime

    @property
    def outstanding_fen(self) -> int:
        return self.amount_fen - self.settled_fen

    @property
    def status(self) -> str:
        """settled | part (partly settled) | open."""
        return "settled" if self.outstanding_fen == 0 else "part" if self.settled_fen else "open"

    @property
    def settled(self) -> bool:
        return self.outstanding_fen == 0


def _names(s: Session, ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    return {u.id: u.username for u in s.scalars(select(User).where(User.id.in_(ids)))} if ids else {}


def _day_start(day: date) -> datetime:
    """The start of a calendar day in the programme's time zone (Asia/Shanghai), as UTC."""
    return datetime.combine(day, time(0), PROGRAMME_TZ)


def liabilities(s: Session, actor: Actor, action: Action, *, start: date | None = None,
                end: date | None = None, open_only: bool = False) -> list[LiabilityRow]:
    """The liabilities of the people in the actor's scope recorded from ``start`` to ``end``
    (Shanghai days, both included), newest first; scoped and filtered in SQL."""
    q = (select(Liability, CreditOrder.receipt_no).join(CreditOrder, CreditOrder.id == Liability.order_id)
         .where(customer_scope(actor, action, owner=Liability.person_id, unit_path=Liability.person_unit_path,
                               file_id=Liability.id)).order_by(Liability.id.desc()).limit(5000))
    if start is not None:
        q = q.where(Liability.created_at >= _day_start(start))
    if end is not None:
        q = q.where(Liability.created_at < _day_start(end + timedelta(days=1)))
    if open_only:
        q = q.where(Liability.settled_fen < Liability.amount_fen)
    pairs = list(s.execute(q))
    names = _names(s, [li.person_id for li, _ in pairs] + [li.decided_by_id for li, _ in pairs])
    return [_row(li, receipt, names) for li, receipt in pairs]


def _row(li: Liability, receipt: str, names: dict[int, str]) -> LiabilityRow:
    return LiabilityRow(li.id, names.get(li.person_id, "?"), li.role, li.amount_fen, li.settled_fen, li.order_id,
                        receipt, li.reason, names.get(li.decided_by_id, "?"), li.created_at)


def totals_per_person(rows: list[LiabilityRow]) -> list[tuple[str, int, int, int, int]]:
    """(person, owed as operator, fines as line leader, settled, outstanding)."""
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        acc[r.person][0 if r.role == "operator" else 1] += r.amount_fen
        acc[r.person][2] += r.settled_fen
        acc[r.person][3] += r.outstanding_fen
    return [(p, *v) for p, v in sorted(acc.items())]


# ---------------------------------------------------------------- one liability, settlements

@dataclass(frozen=True)
class SettlementRow:
    id: int
    amount_fen: int
    paid_on: date
    method: str
    note: str
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class LiabilityDetail:
    row: LiabilityRow
    settlements: list[SettlementRow]
    may_settle: bool


def liability_for(s: Session, actor: Actor, liability_id: int, action: Action, *, lock: bool = False) -> Liability:
    """The liability, if the actor may do ``action`` to its person (a leader above them)."""
    q = select(Liability).where(Liability.id == liability_id)
    li = s.scalar(q.with_for_update() if lock else q)
    if li is None:
        raise NotFound("no such liability")
    if not can(actor, action, owner_id=li.person_id, unit_path=li.person_unit_path):
        raise PermissionDenied(action, str(liability_id))
    return li


def may_settle(actor: Actor, li: Liability) -> bool:
    """A leader above the person, never the person themselves (as for penalties)."""
    return li.person_id != actor.user_id and can(actor, Action.LIABILITY_SETTLE, owner_id=li.person_id,
                                                 unit_path=li.person_unit_path)


def detail(s: Session, actor: Actor, liability_id: int) -> LiabilityDetail:
    """One liability and its settlements, for its page; audited (the caller's write transaction)."""
    li = liability_for(s, actor, liability_id, Action.LIABILITY_VIEW)
    receipt = s.scalar(select(CreditOrder.receipt_no).where(CreditOrder.id == li.order_id)) or ""
    rows = list(s.scalars(select(LiabilitySettlement).where(LiabilitySettlement.liability_id == li.id)
                          .order_by(LiabilitySettlement.id)))
    names = _names(s, [li.person_id, li.decided_by_id] + [r.recorded_by_id for r in rows])
    audit.record(s, actor, Action.LIABILITY_VIEW.value, object_type="liability", object_id=str(li.id),
                 detail=f"{len(rows)} settlements")
    return LiabilityDetail(_row(li, receipt, names),
                           [SettlementRow(r.id, r.amount_fen, r.paid_on, r.method, r.note,
                                          names.get(r.recorded_by_id, "?"), r.recorded_at) for r in rows],
                           may_settle(actor, li))


def settle(s: Session, actor: Actor, liability_id: int, *, amount_fen: int, paid_on: date | None, method: str,
           note: str = "") -> LiabilitySettlement:
    """Record that the person paid back ``amount_fen`` (at most what is outstanding) on ``paid_on``."""
    li = liability_for(s, actor, liability_id, Action.LIABILITY_SETTLE, lock=True)
    if li.person_id == actor.user_id:
        raise PermissionDenied(Action.LIABILITY_SETTLE, str(liability_id),
                               "A settlement of one's own liability is recorded by a leader above.")
    today = programme_today()
    errors: dict[str, str] = {}
    outstanding = li.amount_fen - li.settled_fen
    if outstanding <= 0:
        errors["_form"] = "This liability is settled: nothing is outstanding."
    elif not 0 < amount_fen <= outstanding:
        errors["amount"] = "The amount is above zero and at most what is outstanding."
    if paid_on is None:
        errors["paid_on"] = "Enter a date like 2026-03-10."
    elif paid_on > today or paid_on < li.created_at.astimezone(PROGRAMME_TZ).date():
        errors["paid_on"] = "The date is between the liability's date and today."
    if method not in METHODS:
        errors["method"] = "Choose how it was paid."
    note = (note or "").strip()
    if len(note) > 500:
        errors["note"] = "At most 500 characters."
    if errors:
        raise InvalidInput(errors)
    now = clock.now()
    row = LiabilitySettlement(liability_id=li.id, amount_fen=amount_fen, paid_on=paid_on, method=method, note=note,
                              recorded_by_id=actor.user_id, recorded_at=now)
    s.add(row)
    li.settled_fen += amount_fen
    if li.settled_fen == li.amount_fen:
        li.settled_at, li.settled_by_id = now, actor.user_id
    s.flush()
    audit.record(s, actor, Action.LIABILITY_SETTLE.value, object_type="liability", object_id=str(li.id),
                 reason=note, detail=f"settlement {row.id}: {amount_fen} fen {method} on {paid_on}; "
                                     f"{li.amount_fen - li.settled_fen} fen outstanding")
    return row


# ---------------------------------------------------------------- export

HEADER = ["liability", "person", "role", "amount_yuan", "order", "receipt_no", "reason", "decided_by",
          "recorded_at", "settled", "settled_yuan", "outstanding_yuan"]
MONEY_COLUMNS = {3, 10, 11}   # 0-based: yuan in both formats


def _table(rows: list[LiabilityRow]) -> list[list]:
    status = {"settled": "yes", "part": "part", "open": "no"}
    return [[r.id, r.person, r.role, r.amount_fen, r.order_id, r.receipt_no, r.reason, r.decided_by, r.created_at,
             status[r.status], r.settled_fen, r.outstanding_fen] for r in rows]


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
            if c - 1 in MONEY_COLUMNS:
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


def _cell(i: int, v) -> str:
    if i in MONEY_COLUMNS:
        return f"{v / 100:.2f}"
    return neutralise_cell(v.isoformat() if isinstance(v, datetime) else str(v))


def export_liabilities(s: Session, actor: Actor, fmt: str, *, start: date | None = None,
                       end: date | None = None) -> tuple[bytes, int]:
    """The report as CSV or XLSX bytes; audited with the rows and the bytes' SHA-256."""
    rows = liabilities(s, actor, Action.LIABILITY_EXPORT, start=start, end=end)
    table = _table(rows)
    if fmt == "xlsx":
        data = _xlsx(table)
    else:
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(HEADER)
        w.writerows([[_cell(i, v) for i, v in enumerate(row)] for row in table])
        data = ("\ufeff" + out.getvalue()).encode("utf-8")
    audit.record(s, actor, Action.LIABILITY_EXPORT.value, object_type="export", object_id="liabilities",
                 detail=f"{fmt} rows={len(rows)} sha256={hashlib.sha256(data).hexdigest()}")
    return data, len(rows)
