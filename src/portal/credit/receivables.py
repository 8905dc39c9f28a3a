"""The receivables ledger of each order: charge at delivery, payments, write-off (with liability).

Entries are append-only; the order's balance is cached beside them in the same transaction under
the order's row lock (a CHECK keeps it non-negative), so a payment can never take more than is
owed however many arrive at once. Due date = delivery + account period (cash on delivery: due
at once).
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..customers.service import InvalidInput, NotFound, get_file_for
from ..membership.rules import programme_today
from ..org.models import OrgUnit
from ..policy import Action
from .models import CreditOrder, Liability, ReceivableEntry
from .rules import add_period, line_leader_fine
from .terms import terms_on

METHODS = ("cash", "cash_cheque", "transfer", "wire", "other")


def order_for(s: Session, actor: Actor, order_id: int, action: Action) -> tuple[CreditOrder, CustomerFile]:
    """The order (locked) and its file, if the actor may do ``action`` on the file."""
    o = s.scalar(select(CreditOrder).where(CreditOrder.id == order_id).with_for_update())
    if o is None:
        raise NotFound("no such order")
    return o, get_file_for(s, actor, o.customer_id, action)


def entries(s: Session, order_id: int) -> list[ReceivableEntry]:
    return list(s.scalars(select(ReceivableEntry).where(ReceivableEntry.order_id == order_id)
                          .order_by(ReceivableEntry.id)))


def _append(s: Session, actor: Actor, o: CreditOrder, kind: str, amount_fen: int, on: date, **kw) -> ReceivableEntry:
    e = ReceivableEntry(order_id=o.id, kind=kind, amount_fen=amount_fen, on=on, recorded_by_id=actor.user_id,
                        recorded_at=clock.now(), **kw)
    s.add(e)
    o.balance_fen += amount_fen
    if o.balance_fen == 0 and kind != "charge":
        o.settled_at = clock.now()
    s.flush()
    return e


def deliver(s: Session, actor: Actor, order_id: int, *, on: date | None = None) -> CreditOrder:
    """The goods reached the customer: the receivable is charged, due after the account period."""
    o, f = order_for(s, actor, order_id, Action.CREDIT_SELL)
    today = programme_today()
    on = on or today
    if o.delivered_on is not None:
        raise InvalidInput({"_form": "This order was already delivered."})
    if on > today or on < o.ordered_on:
        raise InvalidInput({"delivered_on": "The delivery date is between the order's date and today."})
    o.delivered_on, o.delivered_by_id = on, actor.user_id
    o.due_on = add_period(on, o.period_months, o.period_days) if o.terms == "credit" else on
    _append(s, actor, o, "charge", o.amount_fen, on, note="delivery")
    audit.record(s, actor, "credit.deliver", object_type="customer", object_id=f.file_no,
                 detail=f"order {o.id} delivered {on} due {o.due_on} {o.amount_fen} fen")
    return o


def record_payment(s: Session, actor: Actor, order_id: int, *, amount_fen: int, method: str, on: date | None = None,
                   reference: str = "", received_by: str = "") -> ReceivableEntry:
    """A payment (partial allowed) of a delivered order, by method, received by someone."""
    o, f = order_for(s, actor, order_id, Action.RECEIVABLE_COLLECT)
    today = programme_today()
    on = on or today
    errors = {}
    if method not in METHODS:
        errors["method"] = "Choose a payment method."
    if o.delivered_on is None:
        errors["_form"] = "Record the delivery first: the receivable starts at delivery."
    elif amount_fen <= 0 or amount_fen > o.balance_fen:
        errors["amount"] = "The amount is above zero and at most the balance owed."
    if on > today:
        errors["paid_on"] = "A payment cannot be dated in the future."
    receiver = s.scalar(select(User).where(User.username == (received_by or actor.username).strip()))
    if receiver is None:
        errors["received_by"] = "No such member of staff."
    if len((reference or "").strip()) > 100:
        errors["reference"] = "At most 100 characters."
    if errors:
        raise InvalidInput(errors)
    e = _append(s, actor, o, "payment", -amount_fen, on, method=method, received_by_id=receiver.id,
                reference=(reference or "").strip())
    audit.record(s, actor, Action.RECEIVABLE_COLLECT.value, object_type="customer", object_id=f.file_no,
                 detail=f"order {o.id} paid {amount_fen} fen {method} received by {receiver.username}")
    return e


def write_off(s: Session, actor: Actor, order_id: int, *, reason: str) -> list[Liability]:
    """A leader above the file writes off what is owed (a bad debt or an evaded bill). The operator
    is liable for the full amount; the line leader at the time of the sale is fined 10 %."""
    o, f = order_for(s, actor, order_id, Action.RECEIVABLE_WRITE_OFF)
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise InvalidInput({"reason": "Describe why the debt is written off in at least 10 characters."})
    if o.delivered_on is None or o.balance_fen <= 0:
        raise InvalidInput({"_form": "Only a delivered order with a balance owed can be written off."})
    amount = o.balance_fen
    e = _append(s, actor, o, "write_off", -amount, programme_today(), note=reason[:500])
    terms = terms_on(s, programme_today())
    out = []
    for person_id, role, fen in ((o.operator_id, "operator", amount),
                                 (o.line_leader_id, "line_leader", line_leader_fine(amount, terms.line_leader_fine_permille))):
        person = s.get(User, person_id) if person_id is not None else None
        if person is None or fen <= 0:
            continue
        unit = s.get(OrgUnit, person.unit_id)
        li = Liability(order_id=o.id, entry_id=e.id, person_id=person.id, person_unit_path=unit.path if unit else "",
                       role=role, amount_fen=fen, reason=reason[:500], decided_by_id=actor.user_id,
                       created_at=clock.now())
        s.add(li)
        out.append(li)
    s.flush()
    audit.record(s, actor, Action.RECEIVABLE_WRITE_OFF.value, object_type="customer", object_id=f.file_no,
                 reason=reason, detail=f"order {o.id} written off {amount} fen; liabilities "
                                       + ", ".join(f"{li.role} {li.person_id} {li.amount_fen}" for li in out))
    return out
