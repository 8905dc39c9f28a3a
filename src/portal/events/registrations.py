"""Registration, the waiting list, check-in and event points, satisfaction.

Staff register members on their behalf (``event.register``, decided by the member's file: a
salesperson their own clients, a leader their units', customer service any member). Each event's
row is locked while places are counted, so two registrations never take the last place twice;
a cancellation promotes the first of the waiting list in the same transaction. Check-in moves a
registration to ``attended`` with a conditional UPDATE: of two clicks (or two processes) only
one changes the row, and only that one credits the event points to the member's account
through the points ledger, with the event as its reference.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..customers.rules import InvalidField, mask_name
from ..customers.service import InvalidInput, NotFound
from ..membership import cards, members
from ..membership.models import Membership
from ..membership.points import credit_points
from ..membership.rules import programme_today
from ..policy import Action, PermissionDenied, can
from ..policy.scope import member_scope
from ..vault import Vault
from . import rules
from .models import Event, EventRegistration
from .planning import get_event

TAKEN = ("registered", "attended")  # statuses that hold a place


@dataclass(frozen=True)
class Registered:
    registration_id: int
    status: str        # registered | waitlisted
    position: int      # place on the waiting list (0 when registered)


@dataclass(frozen=True)
class CheckedIn:
    registration_id: int
    already: bool      # it was checked in before: nothing was credited now
    points: int        # points credited by this check-in
    note: str = ""     # why no points were credited, if so


@dataclass(frozen=True)
class RegistrationRow:
    id: int
    status: str
    position: int
    card_number: str
    masked_name: str
    tier: str
    queued_at: datetime
    checked_in_at: datetime | None
    points_credited: int
    satisfaction: int | None


def _card_member(s: Session, actor: Actor, number: str, action: Action) -> tuple[Membership, CustomerFile]:
    """The member whose card this is, authorised for ``action`` through their file."""
    try:
        hand = cards.find_card(s, actor, number, action, lock=False)
    except InvalidField as exc:
        raise InvalidInput({"card": exc.message}) from None
    except NotFound:
        raise InvalidInput({"card": "No such card."}) from None
    if hand.card.status != "current":
        raise InvalidInput({"card": "This card no longer works; use the member's current card."})
    return hand.membership, hand.file


def _authorise_member(s: Session, actor: Actor, m: Membership, action: Action, what: str) -> None:
    if not can(actor, action, owner_id=m.owner_id, unit_path=m.unit_path):
        raise PermissionDenied(action, what)


def _registration(s: Session, ev: Event, registration_id: int) -> EventRegistration:
    reg = s.get(EventRegistration, registration_id, populate_existing=True)
    if reg is None or reg.event_id != ev.id:
        raise NotFound("no such registration")
    return reg


def waiting_position(s: Session, reg: EventRegistration) -> int:
    if reg.status != "waitlisted":
        return 0
    ahead = s.scalar(select(func.count()).select_from(EventRegistration).where(
        EventRegistration.event_id == reg.event_id, EventRegistration.status == "waitlisted",
        (EventRegistration.queued_at < reg.queued_at)
        | ((EventRegistration.queued_at == reg.queued_at) & (EventRegistration.id < reg.id))))
    return int(ahead or 0) + 1


def places_taken(s: Session, event_id: int) -> int:
    return int(s.scalar(select(func.count()).select_from(EventRegistration).where(
        EventRegistration.event_id == event_id, EventRegistration.status.in_(TAKEN))) or 0)


def register(s: Session, actor: Actor, event_id: int, card_number: str) -> Registered:
    """Register the card's member for the event, or put them on its waiting list when it is full."""
    m, f = _card_member(s, actor, card_number, Action.EVENT_REGISTER)
    ev = get_event(s, actor, event_id, lock=True)  # places are counted under the event's lock
    now = clock.now()
    if ev.status != "planned":
        raise InvalidInput({"card": "This event was cancelled."})
    if m.status != "active":
        raise InvalidInput({"card": "This membership has ended."})
    if not m.unit_path.startswith(ev.unit_path):
        raise InvalidInput({"card": "This member belongs to a unit the event is not for."})
    if m.tier not in ev.tiers.split(","):
        raise InvalidInput({"card": "This member's tier is not invited to the event."})
    try:
        rules.check_registration_open(m.tier, now, opens_at=ev.registration_opens_at,
                                      priority_opens_at=ev.priority_opens_at, ends_at=ev.ends_at)
    except rules.EventRuleError as exc:
        raise InvalidInput({exc.field: exc.message}) from None
    reg = s.scalar(select(EventRegistration).where(EventRegistration.event_id == ev.id,
                                                   EventRegistration.membership_id == m.id))
    if reg is not None and reg.status != "cancelled":
        raise InvalidInput({"card": "This member is already registered or on the waiting list."})
    status = "registered" if places_taken(s, ev.id) < ev.capacity else "waitlisted"
    if reg is None:
        reg = EventRegistration(event_id=ev.id, membership_id=m.id, status=status, queued_at=now,
                                registered_by_id=actor.user_id)
        s.add(reg)
    else:  # registered again after a cancellation: to the end of the queue
        reg.status, reg.queued_at, reg.registered_by_id = status, now, actor.user_id
        reg.cancelled_at = reg.cancelled_by_id = None
    s.flush()
    audit.record(s, actor, Action.EVENT_REGISTER.value, object_type="event", object_id=str(ev.id),
                 detail=f"{status}: file {f.file_no}, registration {reg.id}")
    return Registered(reg.id, status, waiting_position(s, reg))


def cancel(s: Session, actor: Actor, event_id: int, registration_id: int) -> int | None:
    """Cancel a registration (or a place on the waiting list). A freed place goes to the first of
    the waiting list at once; returns the promoted registration's id, if any."""
    ev = get_event(s, actor, event_id, lock=True)
    reg = _registration(s, ev, registration_id)
    m = s.get(Membership, reg.membership_id)
    _authorise_member(s, actor, m, Action.EVENT_REGISTER, f"event {ev.id} registration {reg.id}")
    now = clock.now()
    if reg.status not in ("registered", "waitlisted"):
        raise InvalidInput({"registration": "Only a registration or a place on the waiting list can be cancelled."})
    if now >= ev.ends_at:
        raise InvalidInput({"registration": "This event is over."})
    held_place = reg.status == "registered"
    reg.status, reg.cancelled_at, reg.cancelled_by_id = "cancelled", now, actor.user_id
    s.flush()
    promoted = None
    if held_place and places_taken(s, ev.id) < ev.capacity:
        promoted = s.scalar(select(EventRegistration).where(
            EventRegistration.event_id == ev.id, EventRegistration.status == "waitlisted")
            .order_by(EventRegistration.queued_at, EventRegistration.id).limit(1))
        if promoted is not None:
            promoted.status = "registered"
            s.flush()
            # The promoted member is told, through the outbox, in this transaction.
            from ..messages import outbox
            from .invitations import _event_context
            member = s.get(Membership, promoted.membership_id)
            outbox.enqueue(s, customer_id=member.customer_id, kind="event_notice", purpose="service",
                           context={**_event_context(ev), "notice_zh": "您已从候补名单转为正式报名，期待您的光临。",
                                    "notice_en": "a place has come free and it is yours; we look forward to seeing you."},
                           reference=f"event-place:{ev.id}:{promoted.id}", actor=actor)
    audit.record(s, actor, Action.EVENT_REGISTER.value, object_type="event", object_id=str(ev.id),
                 detail=f"cancelled registration {reg.id}"
                        + (f"; registration {promoted.id} promoted from the waiting list" if promoted else ""))
    return promoted.id if promoted is not None else None


def _points_account(s: Session, m: Membership):
    """The member's account that earns, or (None, why) when no card of theirs may earn now."""
    account = members.primary_account(s, m)
    card = members.current_card(s, account.id) if account is not None else None
    if account is None or card is None:
        return None, "no card"
    try:
        cards.check_usable(cards.CardInHand(card=card, account=account, membership=m, file=None),
                           programme_today())
    except cards.CardNotUsable as exc:
        return None, exc.state
    return account, ""


def check_in(s: Session, actor: Actor, event_id: int, registration_id: int) -> CheckedIn:
    """Check a registered member in at the event and credit its points, exactly once."""
    ev = get_event(s, actor, event_id)
    reg = _registration(s, ev, registration_id)
    m = s.get(Membership, reg.membership_id)
    _authorise_member(s, actor, m, Action.EVENT_CHECKIN, f"event {ev.id} registration {reg.id}")
    if reg.status == "attended":
        return CheckedIn(reg.id, True, 0)
    now = clock.now()
    if reg.status != "registered":
        raise InvalidInput({"registration": "Only a registered member can be checked in."})
    if ev.status != "planned" or not rules.check_in_open(now, ev.starts_at, ev.ends_at):
        raise InvalidInput({"registration": "Check-in is open on the day of the event only."})
    # The claim: only the request that moves the row from registered to attended goes on.
    claimed = s.execute(update(EventRegistration)
                        .where(EventRegistration.id == reg.id, EventRegistration.status == "registered")
                        .values(status="attended", checked_in_at=now, checked_in_by_id=actor.user_id)
                        .execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        return CheckedIn(reg.id, True, 0)
    points, note = 0, ""
    if ev.points:
        account, note = _points_account(s, m)
        if account is not None:
            row = credit_points(s, actor, account, ev.points, kind="event", on=programme_today(),
                                ref=f"event:{ev.id}", note=ev.theme[:200])
            s.execute(update(EventRegistration).where(EventRegistration.id == reg.id)
                      .values(points_credited=ev.points, points_entry_id=row.id)
                      .execution_options(synchronize_session=False))
            points = ev.points
    s.expire(reg)
    audit.record(s, actor, Action.EVENT_CHECKIN.value, object_type="event", object_id=str(ev.id),
                 detail=f"checked in registration {reg.id}, {points} points"
                        + (f" (none: {note})" if note else ""))
    return CheckedIn(reg.id, False, points, note)


def record_satisfaction(s: Session, actor: Actor, event_id: int, registration_id: int, score: str) -> None:
    """An attendee's satisfaction with the event, 1 (poor) to 5 (excellent)."""
    ev = get_event(s, actor, event_id)
    reg = _registration(s, ev, registration_id)
    m = s.get(Membership, reg.membership_id)
    _authorise_member(s, actor, m, Action.EVENT_CHECKIN, f"event {ev.id} registration {reg.id}")
    score = (score or "").strip()
    if score not in ("1", "2", "3", "4", "5"):
        raise InvalidInput({"satisfaction": "Choose 1 to 5."})
    if reg.status != "attended":
        raise InvalidInput({"satisfaction": "Only an attendee's satisfaction is recorded."})
    reg.satisfaction = int(score)
    audit.record(s, actor, Action.EVENT_CHECKIN.value, object_type="event", object_id=str(ev.id),
                 detail=f"satisfaction {score} for registration {reg.id}")


def list_registrations(s: Session, vault: Vault, actor: Actor, ev: Event) -> list[RegistrationRow]:
    """The event's registrations of the members ``actor`` may register (scoped in SQL), with
    masked names; the caller audits the view before rendering it."""
    q = (select(EventRegistration, Membership, CustomerFile)
         .join(Membership, Membership.id == EventRegistration.membership_id)
         .join(CustomerFile, CustomerFile.id == Membership.customer_id)
         .where(EventRegistration.event_id == ev.id, member_scope(actor, Action.EVENT_REGISTER))
         .order_by(EventRegistration.queued_at, EventRegistration.id))
    rows = []
    waiting = [r.id for r in s.scalars(select(EventRegistration).where(
        EventRegistration.event_id == ev.id, EventRegistration.status == "waitlisted")
        .order_by(EventRegistration.queued_at, EventRegistration.id))]
    for reg, m, f in s.execute(q):
        account = members.primary_account(s, m)
        card = members.current_card(s, account.id) if account is not None else None
        name = vault.decrypt(f.name_ct, table="customer_file", column="name", row_id=f.id) or ""
        rows.append(RegistrationRow(reg.id, reg.status, waiting.index(reg.id) + 1 if reg.id in waiting else 0,
                                    card.number if card else "", mask_name(name), m.tier, reg.queued_at,
                                    reg.checked_in_at, reg.points_credited, reg.satisfaction))
    return rows
