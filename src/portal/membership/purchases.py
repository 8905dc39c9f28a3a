"""Purchases: pricing a sale for its buyer, points, stored-value payment, joining, tier upgrades, returns, missed-points claims.

``record_purchase`` is the one path for the purchase form, the CSV import and the POS API.
It validates everything before the first write, and runs in the caller's transaction, so a
refused sale leaves nothing behind.
"""
from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers.birthday import birthday_of
from ..customers.models import CustomerFile
from ..customers.rules import InvalidField
from ..customers.service import NotFound, open_for
from ..org.models import OrgUnit
from ..policy import Action, PermissionDenied, can, may_perform
from ..reports import class_window, rollup
from ..vault import Vault
from . import ledger
from . import coupons
from .cards import CardInHand, check_usable, find_card, holder_matches
from .coupon_rules import CouponRefused
from .members import (credit_referral, enrol, membership_of, primary_account, reevaluate,
                      referrer_by_card, require_reason, spend_in_window_fen)
from .models import MemberCard, PosTerminal, Purchase, PurchaseLineRow
from .outcomes import PAYMENT_METHODS, PurchaseOutcome, PurchaseRequest, ReturnOutcome
from .points import (append_stored_value, credit_points, lock_account, points_entries,
                     spend_from, stored_value_entries, _append_points)
from .programme import settings_on
from .points_money import refund_payment, tender_for
from .pricing import DiscountReason, apply_points_tender, discount_for, line_counts, line_earns
from .rules import (MemberState, Tier, card_is_active, joining_cause, missed_points_claimable,
                    price_purchase, programme_today)

RECEIPT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,39}")


def normalise_receipt(raw: str) -> str:
    value = (raw or "").strip()
    if not RECEIPT.fullmatch(value):
        raise InvalidField("receipt_no", "receipt.invalid",
                           "A receipt number is 1 to 40 letters, digits, '.', '_', '/' or '-'.")
    return value


def _buyer(s: Session, actor: Actor, req: PurchaseRequest, action: Action, today: date):
    """(file, membership, card in hand or None, account or None) for the request; authorised."""
    if req.card_number:
        hand = find_card(s, actor, req.card_number, action)
        check_usable(hand, today, benefits=False)
        return hand.file, hand.membership, hand, hand.account
    if req.customer_id is not None:
        f, _grant = open_for(s, actor, req.customer_id, action)
        # One purchase by file at a time per customer: the membership, spend and account read
        # next must include a concurrent purchase's (else two first purchases both enrol).
        s.execute(select(CustomerFile.id).where(CustomerFile.id == f.id).with_for_update())
        m = membership_of(s, f.id)
        account = primary_account(s, m) if m is not None and m.status == "active" else None
        hand = None
        if account is not None:
            lock_account(s, account.id)
            card = s.scalar(select(MemberCard).where(MemberCard.account_id == account.id,
                                                     MemberCard.status == "current"))
            if card is not None:
                hand = CardInHand(card=card, account=account, membership=m, file=f)
        return f, m, hand, account
    if not may_perform(actor, action):
        raise PermissionDenied(action)
    return None, None, None, None


def _member_state(vault: Vault, f: CustomerFile | None, m, account, today: date, settings):
    """(whether the buyer is an active member, whether their card is cancelled, whether the card
    gives its benefits, the buyer's state for pricing)."""
    member_active = m is not None and m.status == "active" and account is not None \
        and account.status != "cancelled"
    # Seed 003: a member whose card is cancelled keeps the membership, but whether spend during
    # the cancellation counts is management's decision (a setting) and the tier does not move.
    cancelled = m is not None and m.status == "active" and not member_active
    # Seed 004: "有效期满后需至会员卡中心办理续卡手续; 续卡成功后,会员卡及积分重新激活": an
    # expired card gives no discount and no points by any path until it is renewed.
    benefits = member_active and card_is_active(account.expires_on, today)
    state = MemberState.for_member(
        Tier(m.tier) if benefits else None, frozen=bool(account and account.status == "frozen"),
        birthday=birthday_of(vault, f) if f is not None and benefits else None, settings=settings)
    return member_active, cancelled, benefits, state


def _priced(lines, state: MemberState, cancelled: bool, on: date, settings, coupon=None):
    """The lines priced for this buyer (a cancelled card's spend counted only if the settings say so)."""
    priced = price_purchase(list(lines), state, on, settings, coupon=coupon)
    if cancelled and not settings.cancelled_spend_counts:
        priced = dataclasses.replace(priced, spend_counted_fen=0)
    return priced


def quote_purchase(s: Session, vault: Vault, actor: Actor, customer_id, lines, on: date | None = None):
    """The purchase form's running figures before anything is recorded: the lines priced for this
    buyer as ``record_purchase`` would price them (discount, paid total, points). Authorised like
    the purchase; nothing is written and nothing personal is returned."""
    today = programme_today()
    on = min(on or today, today)
    f, _grant = open_for(s, actor, customer_id, Action.MEMBER_PURCHASE)
    m = membership_of(s, f.id)
    account = primary_account(s, m) if m is not None and m.status == "active" else None
    settings = settings_on(s, on)
    _active, cancelled, _benefits, state = _member_state(vault, f, m, account, today, settings)
    return _priced(lines, state, cancelled, on, settings)


def record_purchase(s: Session, vault: Vault, actor: Actor, req: PurchaseRequest, *,
                    action: Action = Action.MEMBER_PURCHASE) -> PurchaseOutcome:
    today = programme_today()
    receipt = normalise_receipt(req.receipt_no)
    if req.payment_method not in PAYMENT_METHODS:
        raise InvalidField("payment_method", "payment.invalid", "Choose a payment method.")
    on = req.purchased_on or today
    if on > today:
        raise InvalidField("purchased_on", "date.future", "A purchase cannot be dated in the future.")
    if (today - on).days > settings_on(s, today).missed_points_claim_days:
        raise InvalidField("purchased_on", "date.too_old",
                           "A purchase older than the missed-points claim period cannot be recorded.")
    if s.scalar(select(Purchase.id).where(Purchase.receipt_no == receipt)) is not None:
        raise InvalidField("receipt_no", "receipt.duplicate", "This receipt number is already recorded.")
    f, m, hand, account = _buyer(s, actor, req, action, today)
    settings = settings_on(s, on)
    member_active, cancelled, benefits, state = _member_state(vault, f, m, account, today, settings)
    birthday_read = state.birthday is not None
    birthday_check = _birthday_check(vault, f, state, on, settings, req.holder_check)
    if birthday_check not in (None, "verified"):
        state = dataclasses.replace(state, birthday=None)  # the tier's price: the sale goes on
    coupon = None
    if req.coupon_code:
        if not benefits or state.frozen:
            raise CouponRefused("coupon.no_benefits", "Coupons are used with a member's card that gives "
                                                      "benefits today.")
        coupon = coupons.coupon_for_purchase(s, m.id, req.coupon_code, Tier(m.tier), on)
    priced = _priced(req.lines, state, cancelled, on, settings,
                     coupon=coupons.terms_of(coupon) if coupon is not None else None)
    tender = None
    if req.payment_method == "points" or req.points_used:
        # Seed 001: points offset part of what a purchase costs, at the redemption rate, through
        # the points ledger (under the account's lock: never more than there are).
        if hand is None or not benefits:
            raise InvalidField("points_used", "points.no_card", "Paying with points needs a member's card "
                                                                "that gives benefits today.")
        check_usable(hand, today)
        entries, entry_ids = points_entries(s, account.id)
        tender = tender_for(entries, req.points_used or None, priced.paid_total_fen, today,
                            pay_all=req.payment_method == "points", ref=receipt, settings=settings)
        priced = apply_points_tender(priced, tender.value_fen, state, settings)
    money_fen = priced.paid_total_fen - priced.points_tender_fen  # what the payment method pays
    if req.payment_method == "stored_value":
        if hand is None:
            raise InvalidField("payment_method", "payment.no_card", "Stored value needs a member's card.")
        check_usable(hand, today)
    referrer = referrer_by_card(s, req.referrer_card) if req.referrer_card else None

    now = clock.now()
    purchase = Purchase(
        receipt_no=receipt, customer_id=f.id if f else None, membership_id=m.id if member_active else None,
        account_id=account.id if member_active else None,
        card_number=hand.card.number if hand and member_active else "", purchased_on=on,
        payment_method=req.payment_method, list_total_fen=priced.list_total_fen,
        discount_total_fen=priced.discount_total_fen, paid_total_fen=priced.paid_total_fen,
        rate_per_mille=priced.rate_per_mille, discount_reason=priced.discount_reason.value,
        points_earned=priced.points_earned, spend_counted_fen=priced.spend_counted_fen,
        coupon_discount_fen=priced.coupon_discount_fen, points_paid=tender.points if tender else 0,
        points_paid_fen=priced.points_tender_fen,
        status="complete", recorded_by_id=actor.user_id, terminal_id=actor.terminal_id, created_at=now)
    s.add(purchase)
    try:
        s.flush()
    except IntegrityError:
        # The same receipt sent twice at once: the unique index decides; this transaction rolls back.
        raise InvalidField("receipt_no", "receipt.duplicate", "This receipt number is already recorded.") from None
    for i, pl in enumerate(priced.lines, start=1):
        s.add(PurchaseLineRow(purchase_id=purchase.id, line_no=i, product=pl.line.product.strip()[:200],
                              quantity=pl.line.quantity, unit_price_fen=pl.line.unit_price_fen,
                              special_price=pl.line.special_price, group_buy=pl.line.group_buy,
                              list_fen=pl.list_fen, paid_fen=pl.paid_fen))
    if coupon is not None:
        coupons.mark_used(s, actor, coupon, purchase.id, today, receipt)
    if tender is not None:
        _append_points(s, actor, account, tender.entries, entry_ids, settings)
    if req.payment_method == "stored_value" and money_fen:
        spend_from(s, vault, actor, hand, money_fen, today, pin=req.pin, id_number=req.id_number, ref=receipt)
    if member_active and priced.points_earned:
        # The lot opens today whatever the sale's date: a late-recorded sale never makes
        # points redeemable on the day they are credited.
        credit_points(s, actor, account, priced.points_earned, kind="earn", on=today, ref=receipt)
    joined = False
    tier_changed = None
    if f is not None and not member_active and (m is None or m.status != "active"):
        window = spend_in_window_fen(s, f.id, on, settings.join_window_months)
        cause = joining_cause(priced.spend_counted_fen, window, settings)
        if cause:
            m = enrol(s, actor, f.id, cause=cause, on=today, referrer=referrer, pay_referral=False)
            purchase.membership_id = m.id
            joined = True
    if purchase.membership_id is not None:  # before a tier change moves the member's months
        rollup.purchase_counted(s, purchase)
        class_window.refresh(s, purchase.membership_id)
    if m is not None and m.status == "active":
        if m.last_purchase_on is None or on > m.last_purchase_on:
            m.last_purchase_on = on
        if joined or benefits:
            new_tier = reevaluate(s, actor, m, today, purchase_fen=priced.spend_counted_fen)
            tier_changed = new_tier.value if new_tier else None
        if joined:  # the referrer is paid by the tier the joining sale gave (locked in enrol)
            credit_referral(s, actor, m, today)
    # The birthday was read to price the sale, and a birthday discount tells it: say so.
    audit.record(s, actor, "member.purchase", object_type="customer" if f else "receipt",
                 object_id=f.file_no if f else receipt, fields=["birthday"] if birthday_read else [],
                 detail=f"receipt {receipt} paid {priced.paid_total_fen} fen points {priced.points_earned}"
                        + (f" coupon {coupon.id} -{priced.coupon_discount_fen} fen" if coupon else "")
                        + (f" paid with {tender.points} points ({tender.value_fen} fen)" if tender else ""))
    if birthday_check == "mismatch":  # kept with the sale, which goes on at the tier's price
        audit.record(s, actor, "member.birthday_check", audit.DENIED, object_type="customer",
                     object_id=f.file_no, detail=f"receipt {receipt}: the ID number or mobile did not match "
                                                 "the holder; no birthday discount")
    if joined:
        account = primary_account(s, m)
    card = s.scalar(select(MemberCard).where(MemberCard.account_id == account.id, MemberCard.status == "current")) \
        if account is not None else None
    return PurchaseOutcome(
        purchase_id=purchase.id, receipt_no=receipt, list_total_fen=priced.list_total_fen,
        discount_total_fen=priced.discount_total_fen, paid_total_fen=priced.paid_total_fen,
        rate_per_mille=priced.rate_per_mille, discount_reason=priced.discount_reason.value,
        points_earned=priced.points_earned,
        points_balance=account.points_balance if account is not None else None,
        stored_value_fen=account.stored_value_fen if account is not None else None,
        tier=m.tier if m is not None and m.status == "active" else None,
        card_number=card.number if card else None, joined=joined, tier_changed_to=tier_changed,
        coupon_discount_fen=priced.coupon_discount_fen, points_paid=tender.points if tender else 0,
        points_paid_fen=priced.points_tender_fen, birthday_check=birthday_check)


def _birthday_check(vault: Vault, f: CustomerFile | None, state: MemberState, on: date, settings,
                    given: str | None) -> str | None:
    """Seed 002: the birthday discount is given on the ID card or, without it, the mobile number
    the holder states; None when the birthday discount would not apply anyway."""
    if state.birthday is None or discount_for(state, on, settings)[1] is not DiscountReason.BIRTHDAY:
        return None
    if not (given or "").strip():
        return "unverified"
    return "verified" if holder_matches(f, vault, given) else "mismatch"


def recorded_outcome(s: Session, actor: Actor, customer_id, purchase_id: int, *, joined: bool = False,
                     tier_changed_to: str | None = None, birthday_check: str | None = None) -> PurchaseOutcome | None:
    """A purchase of this file as recorded, with the member's balances now (the page the form
    redirects to); None if the purchase is not this file's. Authorised like the purchase."""
    f, _grant = open_for(s, actor, customer_id, Action.MEMBER_PURCHASE)
    p = s.get(Purchase, purchase_id)
    if p is None or p.customer_id != f.id:
        return None
    m = membership_of(s, f.id)
    active = m is not None and m.status == "active"
    account = primary_account(s, m) if active else None
    card = s.scalar(select(MemberCard).where(MemberCard.account_id == account.id, MemberCard.status == "current")) \
        if account is not None else None
    return PurchaseOutcome(
        purchase_id=p.id, receipt_no=p.receipt_no, list_total_fen=p.list_total_fen,
        discount_total_fen=p.discount_total_fen, paid_total_fen=p.paid_total_fen, rate_per_mille=p.rate_per_mille,
        discount_reason=p.discount_reason, points_earned=p.points_earned,
        points_balance=account.points_balance if account is not None else None,
        stored_value_fen=account.stored_value_fen if account is not None else None,
        tier=m.tier if active else None, card_number=card.number if card else None,
        joined=joined and active, tier_changed_to=tier_changed_to if active else None,
        coupon_discount_fen=p.coupon_discount_fen, points_paid=p.points_paid, points_paid_fen=p.points_paid_fen,
        birthday_check=birthday_check)


def _purchase_for(s: Session, actor: Actor, receipt_no: str, action: Action) -> tuple[Purchase, CustomerFile | None]:
    p = s.scalar(select(Purchase).where(Purchase.receipt_no == normalise_receipt(receipt_no))
                 .with_for_update())
    if p is None:
        raise NotFound("no such purchase")
    if p.customer_id is not None:
        f, _grant = open_for(s, actor, p.customer_id, action)
        return p, f
    # A sale without a card belongs to whoever recorded it, in their unit: the same relations
    # (own, led, a terminal's unit, customer service's "any") decide as for a file.
    owner_id, unit_path = _recorder(s, p)
    if not can(actor, action, owner_id=owner_id, unit_path=unit_path):
        raise PermissionDenied(action, p.receipt_no)
    return p, None


def _recorder(s: Session, p: Purchase) -> tuple[int, str]:
    if p.terminal_id is not None:
        terminal = s.get(PosTerminal, p.terminal_id)
        return -1, terminal.unit_path
    user = s.get(User, p.recorded_by_id) if p.recorded_by_id is not None else None
    unit = s.get(OrgUnit, user.unit_id) if user is not None else None
    return (user.id if user else -1), (unit.path if unit else "")


def return_purchase(s: Session, vault: Vault, actor: Actor, receipt_no: str, reason: str, *,
                    action: Action = Action.MEMBER_PURCHASE,
                    customer_id: uuid.UUID | None = None) -> ReturnOutcome:
    """Take back a whole purchase: reverse its points, refund stored value and the points that paid
    for it, stop its spend counting. A coupon it used stays used (a coupon is used once).

    ``customer_id``: the file the request came from; a receipt of another file is not found."""
    p, f = _purchase_for(s, actor, receipt_no, action)
    if customer_id is not None and p.customer_id != customer_id:
        raise NotFound("no such purchase on this file")
    reason = require_reason(reason)
    if p.status == "returned":
        raise InvalidField("receipt_no", "purchase.returned", "This purchase was already returned.")
    today = programme_today()
    account = lock_account(s, p.account_id) if p.account_id else None
    reversed_points = shortfall = refunded = points_back = 0
    if account is not None:
        settings = settings_on(s, today)
        if p.points_paid:  # points that paid for it go back first, with their own expiry
            entries, ids = points_entries(s, account.id)
            back = refund_payment(entries, p.receipt_no, today, settings)
            if back:
                _append_points(s, actor, account, back, ids, settings)
                points_back = sum(e.points for e in back)
        entries, ids = points_entries(s, account.id)
        rev = ledger.reverse_purchase(entries, p.receipt_no, today, settings=settings)
        if rev.entries:
            _append_points(s, actor, account, rev.entries, ids, settings)
        reversed_points, shortfall = rev.reversed_points, rev.shortfall
        if p.payment_method == "stored_value":
            sv = stored_value_entries(s, account.id)
            spent = -sum(e.amount_fen for e in sv if e.kind is ledger.StoredValueKind.SPEND and e.ref == p.receipt_no)
            # At most what this purchase paid: another spend may carry the same reference.
            owed = min(spent, p.paid_total_fen)
            if owed:
                append_stored_value(s, actor, account, ledger.refund_stored_value(
                    sv, owed, today, ref=p.receipt_no, note=reason))
                refunded = owed
    rollup.purchase_uncounted(s, p)
    p.status, p.returned_at = "returned", clock.now()
    class_window.refresh(s, p.membership_id)
    audit.record(s, actor, "member.return", object_type="customer" if f else "receipt",
                 object_id=f.file_no if f else p.receipt_no, reason=reason,
                 detail=f"receipt {p.receipt_no} points -{reversed_points} shortfall {shortfall} "
                        f"refund {refunded} fen" + (f" points back {points_back}" if points_back else ""))
    return ReturnOutcome(receipt_no=p.receipt_no, points_reversed=reversed_points, points_shortfall=shortfall,
                         refunded_fen=refunded,
                         points_balance=account.points_balance if account else None,
                         stored_value_fen=account.stored_value_fen if account else None,
                         points_refunded=points_back)


def claim_missed_points(s: Session, actor: Actor, receipt_no: str, card_number: str, reason: str) -> PurchaseOutcome:
    """Customer service attaches a sale made without the card, within 30 days, and credits its points."""
    p, _ = _purchase_for(s, actor, receipt_no, Action.MEMBER_CLAIM)
    reason = require_reason(reason)
    hand = find_card(s, actor, card_number, Action.MEMBER_CLAIM)
    today = programme_today()
    check_usable(hand, today)
    settings = settings_on(s, p.purchased_on)
    if p.customer_id is not None or p.claimed_at is not None:
        raise InvalidField("receipt_no", "claim.attached", "This purchase already belongs to a customer.")
    if p.status != "complete":
        raise InvalidField("receipt_no", "claim.returned", "A returned purchase earns no points.")
    if not missed_points_claimable(p.purchased_on, today, settings):
        raise InvalidField("receipt_no", "claim.too_late",
                           f"Missed points can be claimed up to {settings.missed_points_claim_days} days "
                           "after the purchase.")
    lines = list(s.scalars(select(PurchaseLineRow).where(PurchaseLineRow.purchase_id == p.id)))
    eligible = sum(ln.paid_fen for ln in lines if line_earns(ln.special_price, ln.group_buy))
    counted = sum(ln.paid_fen for ln in lines if line_counts(ln.special_price, ln.group_buy, settings))
    points = (eligible // 100) * settings.points_per_yuan(Tier(hand.membership.tier))
    p.customer_id, p.membership_id, p.account_id = hand.file.id, hand.membership.id, hand.account.id
    p.card_number, p.claimed_at, p.points_earned, p.spend_counted_fen = hand.card.number, clock.now(), points, counted
    rollup.purchase_counted(s, p)
    class_window.refresh(s, p.membership_id)
    if points:
        credit_points(s, actor, hand.account, points, kind="earn", on=today, ref=p.receipt_no,
                      note=f"missed points claim: {reason}")
    m = hand.membership
    if m.last_purchase_on is None or p.purchased_on > m.last_purchase_on:
        m.last_purchase_on = p.purchased_on
    new_tier = reevaluate(s, actor, m, today)
    audit.record(s, actor, "member.claim", object_type="card", object_id=hand.card.number, reason=reason,
                 detail=f"receipt {p.receipt_no} +{points} points, file {hand.file.file_no}")
    return PurchaseOutcome(
        purchase_id=p.id, receipt_no=p.receipt_no, list_total_fen=p.list_total_fen,
        discount_total_fen=p.discount_total_fen, paid_total_fen=p.paid_total_fen,
        rate_per_mille=p.rate_per_mille, discount_reason=p.discount_reason, points_earned=points,
        points_balance=hand.account.points_balance, stored_value_fen=hand.account.stored_value_fen,
        tier=m.tier, card_number=hand.card.number, tier_changed_to=new_tier.value if new_tier else None)


def purchases_of(s: Session, customer_id: uuid.UUID, limit: int = 50) -> list[Purchase]:
    return list(s.scalars(select(Purchase).where(Purchase.customer_id == customer_id)
                          .order_by(Purchase.purchased_on.desc(), Purchase.id.desc()).limit(limit)))
