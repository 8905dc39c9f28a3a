"""Selling on terms: on credit (collected within the account period) or cash on delivery.

``sell_on_terms`` is the one path for the credit page, the purchase form, the CSV import and the
POS API (``record_sale`` routes every sale there whose payment leaves money owed). In one
transaction it takes the customer's grant row lock, checks the limit, the period, any overdue
order and the applications, then records the purchase (membership pricing, points) and the
order beside it. A refused sale leaves nothing behind.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..catalogue.service import UnknownProduct, product_on
from ..customers.service import InvalidInput, get_file_for
from ..membership import purchases
from ..membership.outcomes import ON_TERMS, PurchaseOutcome, PurchaseRequest
from ..membership.rules import PurchaseLine, programme_today
from ..org.models import OrgUnit
from ..policy import Action
from ..vault import Vault
from . import accounts
from .models import CreditOrder
from .rules import CreditRefused, check_credit_sale
from .terms import terms_on

NO_GRANT = ("This customer has no credit: only customers a leader has granted credit to may buy on credit. "
            "Ask a leader above the file to grant it on the customer's credit page.")
TERMS = ("credit", "cod")


@dataclass(frozen=True)
class Item:
    code: str
    boxes: int


@dataclass(frozen=True)
class TermsSale:
    customer_id: uuid.UUID
    receipt_no: str
    items: tuple[Item, ...]
    terms: str = "credit"                       # credit | cod
    extra_days: int = 0                         # beyond the class's standard period
    application_id: int | None = None           # an approved application for this order
    discount_application_id: int | None = None  # an approved special price for this order
    purchased_on: date | None = None
    card_number: str | None = None


def line_leader_of(s: Session, operator: User | None) -> tuple[int | None, str]:
    """(the operator's line leader, the operator's unit path) now: the nearest active leader of
    the operator's unit or a unit above it, never the operator."""
    if operator is None:
        return None, ""
    unit = s.get(OrgUnit, operator.unit_id)
    path = unit.path if unit else ""
    rows = s.execute(select(User.id, OrgUnit.path).join(OrgUnit, OrgUnit.id == User.unit_id)
                     .where(User.role == "leader", User.is_active.is_(True), User.id != operator.id)).all()
    above = sorted(((len(p), uid) for uid, p in rows if path.startswith(p)), reverse=True)
    return (above[0][1] if above else None), path


def sell_on_terms(s: Session, vault: Vault, actor: Actor, sale: TermsSale, *,
                  action: Action = Action.CREDIT_SELL) -> tuple[CreditOrder, PurchaseOutcome]:
    f = get_file_for(s, actor, sale.customer_id, action)
    if sale.terms not in TERMS:
        raise InvalidInput({"terms": "Choose credit or cash on delivery."})
    today = programme_today()
    on = sale.purchased_on or today
    now = clock.now()
    terms = terms_on(s, on)
    grant = accounts.live_grant(s, f.id, lock=True) if sale.terms == "credit" else None
    if sale.terms == "credit" and grant is None:
        raise CreditRefused("_form", "credit.no_grant", NO_GRANT)
    discount = accounts.usable_application(s, f.id, sale.discount_application_id, "discount", now)
    application = accounts.usable_application(s, f.id, sale.application_id, "credit", now) \
        if sale.terms == "credit" else None
    if not sale.items:
        raise InvalidInput({"lines": "A sale on terms needs at least one catalogue product."})
    lines, boxes, discounted = [], 0, False
    for item in sale.items:
        try:
            p = product_on(s, item.code, on)
        except UnknownProduct:
            raise InvalidInput({"lines": "A sale on terms names catalogue products by code; this code is "
                                         "not on sale that day."}) from None
        if not 1 <= item.boxes <= 10_000:
            raise InvalidInput({"lines": "Quantities on terms are whole boxes (1 or more)."})
        price = p.group_price_fen
        if discount is not None and discount.product_code == p.code:
            price, discounted = discount.price_fen, True
        # The member group price is a group-buy price (seed 004: no points; the member discount
        # only if the programme's settings say so); a special price below it is a special-price line.
        lines.append(PurchaseLine(f"{p.code} {p.name}"[:200], item.boxes * p.bottles_per_box, price,
                                  special_price=price < p.group_price_fen, group_buy=price >= p.group_price_fen))
        boxes += item.boxes
    if discount is not None and not discounted:
        raise InvalidInput({"discount_application_id": "The approved special price is for another product."})
    limit = terms.limit(grant.credit_class) if grant else None
    if sale.terms == "credit":
        if not 0 <= sale.extra_days <= 1000:
            raise InvalidInput({"period_days": "Enter a whole number of days."})
        check_credit_sale(limit=limit, outstanding_boxes=accounts.outstanding_boxes(s, f.id), boxes=boxes,
                          extra_days_asked=sale.extra_days,
                          approved_extra_boxes=application.extra_boxes if application else 0,
                          approved_extra_days=application.extra_days if application else 0,
                          overdue_days=accounts.worst_overdue_days(s, f.id, today),
                          overdue_block_days=terms.overdue_block_days, has_application=application is not None)
    outcome = purchases.record_purchase(s, vault, actor, PurchaseRequest(
        receipt_no=sale.receipt_no, lines=tuple(lines),
        payment_method="credit" if sale.terms == "credit" else "cash_on_delivery",
        customer_id=None if sale.card_number else f.id, card_number=sale.card_number, purchased_on=on),
        action=Action.MEMBER_POS if actor.role == "terminal" else Action.MEMBER_PURCHASE)
    # The operator is the person who recorded the sale (at a till: the file's owner answers for it).
    operator = s.get(User, actor.user_id) if actor.user_id is not None else s.get(User, f.owner_id)
    leader_id, operator_path = line_leader_of(s, operator)
    order = CreditOrder(
        purchase_id=outcome.purchase_id, receipt_no=outcome.receipt_no, customer_id=f.id, terms=sale.terms,
        operator_id=operator.id if operator else None, operator_unit_path=operator_path,
        line_leader_id=leader_id, boxes=boxes, amount_fen=outcome.paid_total_fen,
        period_days=(limit.days + sale.extra_days) if limit else 0, period_months=limit.months if limit else 0,
        application_id=application.id if application else None,
        discount_application_id=discount.id if discount else None, no_invoice=discount is not None,
        ordered_on=on, created_at=now)
    s.add(order)
    s.flush()
    for used in (application, discount):
        if used is not None:
            used.status, used.used_by_order_id = "used", order.id
    audit.record(s, actor, "credit.sell", object_type="customer", object_id=f.file_no,
                 detail=f"order {order.id} receipt {order.receipt_no} {sale.terms} {boxes} boxes "
                        f"{order.amount_fen} fen" + (f" application {application.id}" if application else "")
                        + (" no invoice" if order.no_invoice else ""))
    return order, outcome


def items_from_lines(s: Session, lines, on: date) -> tuple[Item, ...]:
    """A till's or a form's lines (product code, bottles, unit price) as whole boxes of catalogue
    products at the group price: free text, part boxes or another price are refused on terms."""
    items = []
    for ln in lines:
        try:
            p = product_on(s, ln.product.strip(), on)
        except UnknownProduct:
            raise InvalidInput({"lines": "On credit or cash on delivery, every line names a catalogue product "
                                         "by its code (free-text lines are for cash sales)."}) from None
        if ln.quantity % p.bottles_per_box:
            raise InvalidInput({"lines": "On credit or cash on delivery, quantities are whole boxes."})
        if ln.unit_price_fen != p.group_price_fen or ln.special_price:
            raise InvalidInput({"lines": "On credit or cash on delivery, the price is the catalogue's member "
                                         "group price (a lower one needs an approved special price)."})
        items.append(Item(p.code, ln.quantity // p.bottles_per_box))
    return tuple(items)


def record_sale(s: Session, vault: Vault, actor: Actor, req: PurchaseRequest, *,
                action: Action = Action.MEMBER_PURCHASE) -> PurchaseOutcome:
    """Every sale: on terms through ``sell_on_terms`` (same rules as the credit page), else as before."""
    if req.payment_method not in ON_TERMS:
        return purchases.record_purchase(s, vault, actor, req, action=action)
    if req.coupon_code or req.points_used:
        raise InvalidInput({"payment_method": "Coupons and points pay for sales paid now, not on credit "
                                              "or cash on delivery."})
    on = req.purchased_on or programme_today()
    customer_id = req.customer_id
    if customer_id is None and req.card_number:
        from ..membership.cards import find_card
        customer_id = find_card(s, actor, req.card_number, action).file.id
    if customer_id is None:
        raise InvalidInput({"payment_method": "A sale on credit or cash on delivery names its customer."})
    sale = TermsSale(customer_id=customer_id, receipt_no=req.receipt_no, items=items_from_lines(s, req.lines, on),
                     terms="credit" if req.payment_method == "credit" else "cod", purchased_on=on,
                     card_number=req.card_number)
    return sell_on_terms(s, vault, actor, sale, action=Action.CREDIT_SELL)[1]
