"""A customer's credit: the grant (a leader above the file), what is outstanding, and written
applications for one order (extra boxes or days, or a special price), decided by a leader above
the file who is never the requester."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..customers.service import InvalidInput, NotFound, get_file_for
from ..policy import Action, PermissionDenied
from .models import CreditApplication, CreditGrant, CreditOrder
from .rules import credit_class, days_overdue


def live_grant(s: Session, customer_id: uuid.UUID, *, lock: bool = False) -> CreditGrant | None:
    q = select(CreditGrant).where(CreditGrant.customer_id == customer_id, CreditGrant.revoked_at.is_(None))
    if lock:
        q = q.with_for_update()
    return s.scalar(q.order_by(CreditGrant.id.desc()).limit(1))


def _reason(raw: str, field: str = "reason") -> str:
    reason = (raw or "").strip()
    if len(reason) < 5:
        raise InvalidInput({field: "Give a reason (at least 5 characters)."})
    if len(reason) > 500:
        raise InvalidInput({field: "At most 500 characters."})
    return reason


def grant_credit(s: Session, actor: Actor, customer_id, reason: str) -> CreditGrant:
    """A leader above the file grants credit; the class comes from the customer's category."""
    f = get_file_for(s, actor, customer_id, Action.CREDIT_GRANT)
    reason = _reason(reason)
    # The file's row orders grants of one customer: two leaders granting at once make one grant.
    s.execute(select(CustomerFile.id).where(CustomerFile.id == f.id).with_for_update())
    if live_grant(s, f.id) is not None:
        raise InvalidInput({"_form": "This customer already has credit."})
    g = CreditGrant(customer_id=f.id, credit_class=credit_class(f.category), reason=reason,
                    granted_by_id=actor.user_id, granted_at=clock.now())
    s.add(g)
    s.flush()
    audit.record(s, actor, Action.CREDIT_GRANT.value, object_type="customer", object_id=f.file_no,
                 reason=reason, detail=f"grant {g.id} class {g.credit_class}")
    return g


def revoke_credit(s: Session, actor: Actor, customer_id, reason: str) -> CreditGrant:
    f = get_file_for(s, actor, customer_id, Action.CREDIT_GRANT)
    reason = _reason(reason)
    g = live_grant(s, f.id, lock=True)
    if g is None:
        raise InvalidInput({"_form": "This customer has no credit to revoke."})
    g.revoked_at, g.revoked_by_id = clock.now(), actor.user_id
    audit.record(s, actor, "credit.revoke", object_type="customer", object_id=f.file_no, reason=reason,
                 detail=f"grant {g.id}")
    return g


def outstanding_boxes(s: Session, customer_id: uuid.UUID) -> int:
    """Boxes of credit orders not yet settled (delivered or not): they count against the limit."""
    return int(s.scalar(select(func.coalesce(func.sum(CreditOrder.boxes), 0)).where(
        CreditOrder.customer_id == customer_id, CreditOrder.terms == "credit",
        CreditOrder.settled_at.is_(None))) or 0)


def worst_overdue_days(s: Session, customer_id: uuid.UUID, today: date) -> int:
    due = s.scalar(select(func.min(CreditOrder.due_on)).where(
        CreditOrder.customer_id == customer_id, CreditOrder.settled_at.is_(None), CreditOrder.due_on.is_not(None)))
    return days_overdue(due, today)


# ---------------------------------------------------------------- applications

def _whole(raw, field: str, hi: int) -> int:
    text = str(raw if raw is not None else "").strip() or "0"
    if not text.isascii() or not text.isdigit() or int(text) > hi:
        raise InvalidInput({field: "Enter a whole number from 0 to 1,000."})
    return int(text)


def apply_for_credit(s: Session, actor: Actor, customer_id, *, reason: str, extra_boxes, extra_days) -> CreditApplication:
    """A written application for one order above the limits (or despite an overdue order)."""
    f = get_file_for(s, actor, customer_id, Action.CREDIT_SELL)
    reason = _reason(reason)
    boxes, days = _whole(extra_boxes, "extra_boxes", 1000), _whole(extra_days, "extra_days", 1000)
    a = CreditApplication(kind="credit", customer_id=f.id, requested_by_id=actor.user_id, reason=reason,
                          extra_boxes=boxes, extra_days=days, created_at=clock.now())
    s.add(a)
    s.flush()
    audit.record(s, actor, "credit.apply", object_type="customer", object_id=f.file_no, reason=reason,
                 detail=f"application {a.id} extra {boxes} boxes {days} days")
    return a


def apply_for_discount(s: Session, actor: Actor, customer_id, *, reason: str, product_code: str,
                       price_fen: int, group_price_fen: int) -> CreditApplication:
    """A special price below the group price for one order (the caller read the group price)."""
    f = get_file_for(s, actor, customer_id, Action.CREDIT_SELL)
    reason = _reason(reason)
    if not 0 < price_fen < group_price_fen:
        raise InvalidInput({"price": "A special price is above zero and below the member group price."})
    a = CreditApplication(kind="discount", customer_id=f.id, requested_by_id=actor.user_id, reason=reason,
                          product_code=product_code, price_fen=price_fen, created_at=clock.now())
    s.add(a)
    s.flush()
    audit.record(s, actor, "credit.apply", object_type="customer", object_id=f.file_no, reason=reason,
                 detail=f"application {a.id} discount {product_code} {price_fen} fen")
    return a


def decide(s: Session, actor: Actor, application_id: int, *, approve: bool, note: str = "",
           discount_valid_days: int = 7) -> CreditApplication:
    """A leader above the file approves or refuses; never the one who asked."""
    a = s.scalar(select(CreditApplication).where(CreditApplication.id == application_id).with_for_update())
    if a is None:
        raise NotFound("no such application")
    f = get_file_for(s, actor, a.customer_id, Action.CREDIT_DECIDE)
    if a.requested_by_id == actor.user_id:
        raise PermissionDenied(Action.CREDIT_DECIDE, f.file_no, "An application is decided by someone else.")
    if a.status != "pending":
        raise InvalidInput({"_form": "This application has already been decided."})
    note = (note or "").strip()
    if len(note) > 500:
        raise InvalidInput({"note": "At most 500 characters."})
    if not approve and len(note) < 5:
        raise InvalidInput({"note": "Say why the application is refused."})
    a.status = "approved" if approve else "refused"
    a.decided_by_id, a.decided_at, a.decision_note = actor.user_id, clock.now(), note
    if approve and a.kind == "discount":
        a.expires_at = a.decided_at + timedelta(days=discount_valid_days)
    audit.record(s, actor, Action.CREDIT_DECIDE.value, object_type="customer", object_id=f.file_no,
                 reason=note, detail=f"application {a.id} {a.kind} {a.status}")
    return a


def usable_application(s: Session, customer_id: uuid.UUID, application_id: int | None, kind: str,
                       now: datetime) -> CreditApplication | None:
    """The approved, unused application of this customer (locked), or InvalidInput."""
    if application_id is None:
        return None
    a = s.scalar(select(CreditApplication).where(CreditApplication.id == application_id).with_for_update())
    field = "application_id" if kind == "credit" else "discount_application_id"
    if a is None or a.customer_id != customer_id or a.kind != kind:
        raise InvalidInput({field: "No such application for this customer."})
    if a.status != "approved":
        raise InvalidInput({field: "This application is not approved, or was already used."})
    if a.expires_at is not None and now > a.expires_at:
        raise InvalidInput({field: "This approved price has expired."})
    return a


@dataclass(frozen=True)
class ApplicationRow:
    id: int
    kind: str
    file_no: str
    customer_id: uuid.UUID
    requested_by: str
    reason: str
    extra_boxes: int
    extra_days: int
    product_code: str
    price_fen: int
    status: str
    decided_by: str
    decision_note: str
    created_at: datetime
    expires_at: datetime | None
