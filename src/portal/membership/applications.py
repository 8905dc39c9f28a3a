"""Membership applications: a salesperson applies for a client, customer service reviews.

Seed 001: "客服人員收到會員申請表后,對客戶信息進行審核 ... 是否符合會員入會條件": approval
requires the joining condition in force, which is met by the client's spend (¥680 in one
purchase or ¥1,000 in the joining window, by default), by the joining fee paid where one is
set (seed 004: "消费达特定金额或交纳会员工本费"), or by a leader's documented exception. The
fee, where set, is recorded as paid (method, who, when) before the card is issued. A referrer
named on the application is paid at approval, by the joining tier (seed 001).
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
from ..customers.rules import InvalidField
from ..customers.service import InvalidInput, NotFound, open_for
from ..inbox.service import notify
from ..policy import Action, PermissionDenied, customer_scope, may_perform
from .members import enrol, membership_of, referrer_by_card, require_reason, window_spend_fen
from .models import CardAccount, MemberCard, MembershipApplication
from .programme import settings_on
from .rules import ProgrammeSettings, programme_today

# How a joining fee can be paid at the service desk (stored value and credit need a card).
FEE_METHODS = ("cash", "cheque", "bank_transfer", "wire")


def joining_condition(s: Session, customer_id, today: date, settings: ProgrammeSettings) -> str | None:
    """"single_purchase" or "cumulative" when the file's kept purchases meet the joining
    condition in the joining window (counted spend), else None."""
    return condition_met(window_spend_fen(s, customer_id, today, settings.join_window_months), settings)


def condition_met(window: tuple[int, int], settings: ProgrammeSettings) -> str | None:
    """The joining condition for (the biggest, the total) counted spend in the joining window."""
    biggest, total = window
    if biggest >= settings.join_single_purchase_fen:
        return "single_purchase"
    if total >= settings.join_cumulative_fen:
        return "cumulative"
    return None


def submit_application(s: Session, actor: Actor, customer_id, *, card_type: str, note: str = "",
                       referrer_card: str = "") -> MembershipApplication:
    f, _grant = open_for(s, actor, customer_id, Action.MEMBER_APPLY)
    settings = settings_on(s, programme_today())
    errors: dict[str, str] = {}
    try:
        settings.card_type(card_type)
    except InvalidField as exc:
        errors["card_type"] = exc.message
    referrer = None
    if (referrer_card or "").strip():
        try:
            referrer = referrer_by_card(s, referrer_card)
        except InvalidField as exc:
            errors["referrer_card"] = exc.message
    m = membership_of(s, f.id)
    if m is not None and m.status == "active":
        errors["customer"] = "This customer is already a member."
    if referrer is not None and referrer.customer_id == f.id:
        errors["referrer_card"] = "A customer cannot refer themselves."
    if s.scalar(select(MembershipApplication.id).where(MembershipApplication.customer_id == f.id,
                                                       MembershipApplication.status == "pending")):
        errors["customer"] = "An application for this customer is already waiting for review."
    if len((note or "").strip()) > 500:
        errors["note"] = "At most 500 characters."
    if errors:
        raise InvalidInput(errors)
    app = MembershipApplication(customer_id=f.id, submitted_by_id=actor.user_id, card_type=card_type,
                                note=(note or "").strip(), joining_fee_fen=settings.joining_fee_fen,
                                referrer_id=referrer.id if referrer else None,
                                status="pending", submitted_at=clock.now())
    s.add(app)
    s.flush()
    audit.record(s, actor, "member.apply", object_type="customer", object_id=f.file_no,
                 detail=f"application {app.id} card {card_type}")
    for user_id in s.scalars(select(User.id).where(User.role == "customer_service", User.is_active)):
        notify(s, user_id, "member.application", "Membership application %(id)s for file %(file_no)s awaits review.",
               link="/service/applications", id=app.id, file_no=f.file_no)
    return app


def pending_applications(s: Session, actor: Actor, status: str = "pending",
                         limit: int | None = None) -> list[MembershipApplication]:
    """Applications in one status: pending oldest first; decided ones latest decision first."""
    if not may_perform(actor, Action.MEMBER_REVIEW):
        raise PermissionDenied(Action.MEMBER_REVIEW)
    # Scoped in SQL by the same policy as files (customer service's relation is "any" today).
    q = select(MembershipApplication).where(
        MembershipApplication.status == status,
        customer_scope(actor, Action.MEMBER_REVIEW, file_id=MembershipApplication.customer_id,
                       owner=CustomerFile.owner_id, unit_path=CustomerFile.unit_path)) \
        .join(CustomerFile, CustomerFile.id == MembershipApplication.customer_id)
    if status == "pending":
        q = q.order_by(MembershipApplication.id)
    else:
        q = q.order_by(MembershipApplication.reviewed_at.desc(), MembershipApplication.id.desc())
    return list(s.scalars(q.limit(limit) if limit else q))


def pending_application_of(s: Session, customer_id) -> MembershipApplication | None:
    return s.scalar(select(MembershipApplication).where(MembershipApplication.customer_id == customer_id,
                                                        MembershipApplication.status == "pending"))


def grant_exception(s: Session, actor: Actor, application_id: int, reason: str) -> MembershipApplication:
    """A leader above the file waives the joining condition for one pending application, with a
    documented reason; customer service still reviews it."""
    app = s.get(MembershipApplication, application_id, with_for_update=True)
    if app is None:
        raise NotFound("no such application")
    f, _grant = open_for(s, actor, app.customer_id, Action.MEMBER_EXCEPTION)
    if app.status != "pending":
        raise InvalidInput({"application": "This application has already been decided."})
    if actor.user_id is not None and actor.user_id == app.submitted_by_id:
        raise InvalidInput({"application": "An exception for your own application needs another leader."})
    reason = require_reason(reason)
    app.exception_by_id, app.exception_reason, app.exception_at = actor.user_id, reason, clock.now()
    audit.record(s, actor, "member.exception", object_type="customer", object_id=f.file_no,
                 reason=reason, detail=f"application {app.id} joining condition waived")
    return app


def review_application(s: Session, actor: Actor, application_id: int, *, approve: bool,
                       reason: str = "", fee_method: str = "") -> MembershipApplication:
    """Customer service approves (card issued, salesperson told) or rejects with a reason.

    Approval needs the joining condition (spend, the fee, or a leader's exception); a joining
    fee set on the application is recorded as paid with ``fee_method`` before the card is issued.
    """
    app = s.get(MembershipApplication, application_id, with_for_update=True)
    if app is None:
        raise NotFound("no such application")
    f = s.get(CustomerFile, app.customer_id)
    open_for(s, actor, f.id, Action.MEMBER_REVIEW)
    if app.status != "pending":
        raise InvalidInput({"application": "This application has already been decided."})
    if actor.user_id is not None and actor.user_id == app.submitted_by_id:
        raise InvalidInput({"application": "You cannot review your own application."})
    today = programme_today()
    basis = ""
    if approve:
        member = membership_of(s, f.id)
        if member is not None and member.status == "active":
            raise InvalidInput({"application": "This customer is already a member."})
        reason = (reason or "").strip()
        if len(reason) > 500:
            raise InvalidInput({"reason": "At most 500 characters."})
        if app.joining_fee_fen > 0:
            if fee_method not in FEE_METHODS:
                raise InvalidInput({"fee_method": "Record how the joining fee was paid."})
            basis = "fee"
        else:
            basis = joining_condition(s, f.id, today, settings_on(s, today)) or (
                "exception" if app.exception_by_id else "")
        if not basis:
            raise InvalidInput({"application": "The customer does not meet the joining condition yet "
                                               "(spend in one purchase or over the joining window); "
                                               "a leader above the file may record an exception."})
    else:
        reason = require_reason(reason)
    app.status = "approved" if approve else "rejected"
    app.reviewed_by_id, app.reviewed_at, app.decision_reason = actor.user_id, clock.now(), reason
    if basis == "fee":
        app.fee_paid_method, app.fee_paid_by_id, app.fee_paid_at = fee_method, actor.user_id, clock.now()
    referrer = None
    if approve and app.referrer_id is not None:
        from .models import Membership
        referrer = s.get(Membership, app.referrer_id)
        referrer = referrer if referrer is not None and referrer.status == "active" else None
    if approve:
        # Lock order (accounts before the audit head): enrol locks the referrer's account first.
        m = enrol(s, actor, f.id, cause="application", card_type=app.card_type, referrer=referrer)
        app.membership_id = m.id
    audit.record(s, actor, "member.review", object_type="customer", object_id=f.file_no, reason=reason,
                 detail=f"application {app.id} {app.status}" + (f" on {basis}" if basis else "")
                        + (f", fee {app.joining_fee_fen} fen by {fee_method}" if basis == "fee" else ""))
    if approve:
        card = s.scalar(select(MemberCard).join(CardAccount, CardAccount.id == MemberCard.account_id)
                        .where(CardAccount.membership_id == app.membership_id, MemberCard.status == "current")
                        .order_by(MemberCard.id.desc()).limit(1))
        notify(s, app.submitted_by_id, "member.approved",
               "Membership for file %(file_no)s approved: card %(card)s.", link=f"/customers/{f.id}",
               file_no=f.file_no, card=card.number if card else "")
    else:
        notify(s, app.submitted_by_id, "member.rejected",
               "Membership application for file %(file_no)s rejected: %(reason)s", link=f"/customers/{f.id}",
               file_no=f.file_no, reason=reason)
    return app
