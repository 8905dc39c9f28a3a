"""Cards: finding one for use (POS, service desk), and its life cycle: freeze, cancel, loss, replacement, renewal, PIN
(checking the holder's PIN and keeping wrong guesses: pin_guard.py).

Every step is authorised through the file the card belongs to, written to the member's
history with its reason, and audited.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..accounts.passwords import hash_password
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..customers.rules import InvalidField, mask_name
from ..customers.service import InvalidInput, NotFound, open_for
from ..messages import outbox
from ..policy import Action, PermissionDenied
from ..vault import Vault
from .members import event, new_card, region_code_for, require_reason
from .models import CardAccount, MemberCard, Membership
from .outcomes import CardSummary
from .rules import card_is_active, parse_card_number, programme_today, renew_card


class CardNotYours(PermissionDenied):
    """A card number of a member the user may not serve: most often a mistyped number. Still a
    refusal (audited as one), but a form may say so plainly and keep what was typed."""


class CardNotUsable(InvalidField):
    """The card exists but cannot be used for this (lost, void, cancelled, frozen, expired)."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__("card_number", f"card.{state}", message)
        self.state = state


@dataclass
class CardInHand:
    """A card resolved and authorised for one use case, with its account locked for update."""

    card: MemberCard
    account: CardAccount
    membership: Membership
    file: CustomerFile
    grant_id: int | None = None


def normalise_number(raw: str) -> str:
    parsed = parse_card_number(raw or "")
    if parsed is None:
        raise InvalidField("card_number", "card.invalid", "Enter a card number like 755 00243.")
    return f"{parsed[0]} {parsed[1]:05d}"


def find_card(s: Session, actor: Actor, raw_number: str, action: Action, *, lock: bool = True) -> CardInHand:
    """Resolve a card number and authorise ``action`` on its file; NotFound or PermissionDenied.

    The account row is locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite writers are already
    serialised) so balance checks and the entries that follow cannot interleave with another
    redemption or spend on the same account.
    """
    number = normalise_number(raw_number)
    card = s.scalar(select(MemberCard).where(MemberCard.number == number))
    if card is None:
        raise NotFound("no such card")
    account = s.get(CardAccount, card.account_id)
    m = s.get(Membership, account.membership_id)
    try:
        f, grant_id = open_for(s, actor, m.customer_id, action)  # authorise before taking any lock
    except PermissionDenied as exc:
        raise CardNotYours(exc.action, exc.object_id, str(exc)) from None
    if lock:  # re-read under the lock: what was read above may already be stale
        account = s.get(CardAccount, card.account_id, with_for_update=True, populate_existing=True)
    return CardInHand(card=card, account=account, membership=m, file=f, grant_id=grant_id)


def check_usable(hand: CardInHand, today: date, *, benefits: bool = True) -> None:
    """Refuse a card that cannot be used today. ``benefits``: also refuse a frozen account
    (redemption, stored value); purchases on a frozen card go through without benefits."""
    if hand.card.status == "lost":
        raise CardNotUsable("lost", "This card was reported lost and no longer works.")
    if hand.card.status == "void":
        raise CardNotUsable("void", "This card was replaced and no longer works.")
    if hand.account.status == "cancelled" or hand.membership.status != "active":
        raise CardNotUsable("cancelled", "This card is cancelled.")
    if not card_is_active(hand.account.expires_on, today):
        raise CardNotUsable("expired", "This card has expired; renew it first.")
    if benefits and hand.account.status == "frozen":
        raise CardNotUsable("frozen", "This card is frozen.")


def summary(s: Session, vault: Vault, hand: CardInHand, today: date) -> CardSummary:
    from .points import redeemable  # points imports cards
    name = vault.decrypt(hand.file.name_ct, table="customer_file", column="name", row_id=hand.file.id)
    try:
        check_usable(hand, today, benefits=False)
        usable = True
    except CardNotUsable:
        usable = False
    return CardSummary(
        number=hand.card.number, card_status=hand.card.status, account_status=hand.account.status,
        card_type=hand.account.card_type, named=hand.account.named, tier=hand.membership.tier,
        member_status=hand.membership.status, masked_name=mask_name(name or ""),
        file_no=hand.file.file_no, points_balance=hand.account.points_balance,
        redeemable_points=redeemable(s, hand.account, today),
        stored_value_fen=hand.account.stored_value_fen, issued_on=hand.card.issued_on,
        expires_on=hand.account.expires_on, usable=usable)


def lookup_card(s: Session, vault: Vault, actor: Actor, number: str,
                action: Action = Action.MEMBER_VIEW) -> CardSummary:
    """A masked view of a card (POS, service desk), audited."""
    hand = find_card(s, actor, number, action, lock=False)
    audit.record(s, actor, action.value, object_type="card", object_id=hand.card.number,
                 detail=f"lookup, file {hand.file.file_no}", grant_id=hand.grant_id)
    return summary(s, vault, hand, programme_today())


# ---------------------------------------------------------------- life cycle

def _step(s: Session, actor: Actor, hand: CardInHand, kind: str, reason: str, *, from_value: str = "",
          to_value: str = "", cause: str = "") -> None:
    now = clock.now()
    hand.account.updated_at = now
    event(s, hand.membership, actor, kind, account_id=hand.account.id, from_value=from_value,
          to_value=to_value, cause=cause, reason=reason)
    audit.record(s, actor, f"card.{kind}", object_type="card", object_id=hand.card.number,
                 reason=reason, detail=f"file {hand.file.file_no}", grant_id=hand.grant_id)


def freeze(s: Session, actor: Actor, number: str, reason: str, *, frozen: bool = True,
           action: Action = Action.CARD_MANAGE) -> CardAccount:
    """``action``: CARD_MANAGE on a file, SERVICE_CARD at the service desk."""
    hand = find_card(s, actor, number, action)
    reason = require_reason(reason)
    want, have = ("frozen", "active") if frozen else ("active", "frozen")
    if hand.account.status != have:
        raise InvalidInput({"card": "This card is not active." if frozen else "This card is not frozen."})
    hand.account.status = want
    _step(s, actor, hand, "freeze" if frozen else "unfreeze", reason, from_value=have, to_value=want)
    return hand.account


def cancel(s: Session, actor: Actor, number: str, reason: str) -> CardAccount:
    hand = find_card(s, actor, number, Action.CARD_CANCEL)
    reason = require_reason(reason)
    if hand.account.status == "cancelled":
        raise InvalidInput({"card": "This card is already cancelled."})
    before = hand.account.status
    hand.account.status = "cancelled"
    _step(s, actor, hand, "cancel", reason, from_value=before, to_value="cancelled")
    return hand.account


def restore(s: Session, actor: Actor, number: str, reason: str, *, keep_points: bool,
            keep_spend: bool = True) -> CardAccount:
    """Undo a cancellation; the leader chooses whether the points, and the spend accumulated
    before the cancellation, survive it (seed 003: "If the membership is resumed, the member will
    be prompted whether to clear the points, or is the pre-sales/consumption accumulation cleared")."""
    from .points import clear_points
    hand = find_card(s, actor, number, Action.CARD_CANCEL)
    reason = require_reason(reason)
    if hand.account.status != "cancelled":
        raise InvalidInput({"card": "This card is not cancelled."})
    hand.account.status = "active"
    cause = ("points_kept" if keep_points else "points_cleared") + ("" if keep_spend else ",spend_cleared")
    _step(s, actor, hand, "restore", reason, from_value="cancelled", to_value="active", cause=cause)
    today = programme_today()
    if not keep_points:
        clear_points(s, actor, hand.account, today, note=f"cleared on restore: {reason}")
    if not keep_spend:
        hand.membership.spend_counted_from = today
    return hand.account


class HolderIdMismatch(InvalidField):
    """The ID number given at the counter is not the card holder's (seeds 002-004: a lost-card
    report, a replacement and a PIN change are made by the holder, who shows their ID card)."""

    def __init__(self, card_number: str, message: str) -> None:
        super().__init__("id_number", "id_number.mismatch", message)
        self.card_number = card_number


def require_holder_id(hand: CardInHand, vault: Vault, id_number: str | None) -> None:
    """The holder's ID number, checked against the file's blind index (never decrypted).

    A file without an ID number on record cannot pass: the number must be recorded on the file
    first (by someone who may edit it), so a counter clerk cannot vouch for a stranger.
    """
    from ..customers.rules import normalise_id_number
    if not (id_number or "").strip():
        raise InvalidField("id_number", "id_number.required", "Enter the holder's ID number from their ID card.")
    if not hand.file.id_number_bidx:
        raise HolderIdMismatch(hand.card.number, "This file has no ID number on record: record it on the "
                                                 "file before this step.")
    try:
        given = vault.blind_index("id_number", normalise_id_number(id_number))
    except InvalidField:
        given = None
    if given != hand.file.id_number_bidx:
        raise HolderIdMismatch(hand.card.number, "The ID number does not match this card's holder.")


def holder_matches(f: CustomerFile, vault: Vault, given: str | None) -> bool:
    """The birthday discount at the till (seed 002: "购买时请顾客出示有效VIP卡及身份证,未带身份证可报
    手机号码"): the holder's ID card number or, without it, the mobile number on file, as the
    cashier enters it, checked against the file's blind indexes (never decrypted)."""
    from ..customers.rules import normalise_id_number, normalise_mobile
    value = (given or "").strip()
    for name, normalise, bidx in (("id_number", normalise_id_number, f.id_number_bidx),
                                  ("mobile", normalise_mobile, f.mobile_bidx)):
        if not value or not bidx:
            continue
        try:
            if vault.blind_index(name, normalise(value)) == bidx:
                return True
        except InvalidField:
            continue
    return False


def note_holder_id_mismatch(s: Session, actor: Actor, exc: HolderIdMismatch, step: str) -> None:
    """Keep the refusal (in its own transaction: the step's own rolled back)."""
    audit.record(s, actor, f"member.card.{step}", audit.DENIED, object_type="card",
                 object_id=exc.card_number, detail="ID number did not match the holder")


def _check_holder_id(hand: CardInHand, vault: Vault | None, id_number: str | None) -> None:
    """With ``vault`` (every counter and page path) the holder's ID number must match.
    Trusted callers (the demo, scripts) pass no vault."""
    if vault is not None:
        require_holder_id(hand, vault, id_number)


def report_loss(s: Session, actor: Actor, number: str, reason: str,
                action: Action = Action.CARD_MANAGE, *, vault: Vault | None = None,
                id_number: str | None = None) -> MemberCard:
    """The card stops working at once; its account waits for a replacement. ``action``:
    CARD_MANAGE on a file, SERVICE_CARD at the service desk."""
    hand = find_card(s, actor, number, action)
    reason = require_reason(reason)
    _check_holder_id(hand, vault, id_number)
    if hand.card.status != "current":
        raise InvalidInput({"card": "This card is not in use."})
    hand.card.status = "lost"
    _step(s, actor, hand, "loss", reason, from_value="current", to_value="lost")
    return hand.card


def replace(s: Session, actor: Actor, number: str, reason: str, *, vault: Vault | None = None,
            id_number: str | None = None) -> MemberCard:
    """A new number on the same account: points, stored value and history move; the old card is void."""
    hand = find_card(s, actor, number, Action.CARD_MANAGE)
    reason = require_reason(reason)
    _check_holder_id(hand, vault, id_number)
    if hand.card.status == "void":
        raise InvalidInput({"card": "This card was already replaced."})
    if hand.account.status == "cancelled":
        raise InvalidInput({"card": "A cancelled card cannot be replaced; restore it first."})
    old = hand.card.number
    hand.card.status = "void"
    s.flush()  # one current card per account at any moment
    card = new_card(s, hand.account, region_code_for(s, hand.file), programme_today(), replaces=hand.card)
    _step(s, actor, hand, "replace", reason, from_value=old, to_value=card.number)
    outbox.enqueue(s, customer_id=hand.file.id, kind="card_dispatch", purpose="service", actor=actor,
                   context={"card_number": card.number}, reference=f"card:{card.number}")
    return card


def renew(s: Session, actor: Actor, number: str, reason: str) -> CardAccount:
    """Extend validity (reactivating an expired card and its points)."""
    from .programme import settings_on
    hand = find_card(s, actor, number, Action.CARD_MANAGE)
    reason = require_reason(reason)
    if hand.card.status != "current" or hand.account.status == "cancelled":
        raise InvalidInput({"card": "Only a card in use can be renewed."})
    today = programme_today()
    before = hand.account.expires_on
    hand.account.expires_on = renew_card(before, today, settings_on(s, today))
    from ..reports import card_rollup  # reports read membership: imported at call time
    card_rollup.expiry_set(s, hand.membership.id, before, hand.account.expires_on)
    _step(s, actor, hand, "renew", reason, from_value=before.isoformat(),
          to_value=hand.account.expires_on.isoformat())
    return hand.account


def set_pin(s: Session, actor: Actor, number: str, pin: str, *, vault: Vault | None = None,
            id_number: str | None = None) -> None:
    """The member's PIN for stored-value spends on named cards (argon2id; never stored plain)."""
    hand = find_card(s, actor, number, Action.CARD_MANAGE)
    pin = (pin or "").strip()
    if not (pin.isascii() and pin.isdigit() and len(pin) == 6):
        raise InvalidInput({"pin": "The PIN is six digits."})
    _check_holder_id(hand, vault, id_number)
    hand.membership.pin_hash = hash_password(pin)
    _step(s, actor, hand, "pin", "PIN set by the member")


def cards_of(s: Session, membership_id: int) -> list[tuple[CardAccount, list[MemberCard]]]:
    accounts = list(s.scalars(select(CardAccount).where(CardAccount.membership_id == membership_id)
                              .order_by(CardAccount.id)))
    out = []
    for a in accounts:
        out.append((a, list(s.scalars(select(MemberCard).where(MemberCard.account_id == a.id)
                                      .order_by(MemberCard.id.desc())))))
    return out


_PIN_GUARD = ("PIN_TRIES", "PIN_WINDOW_MINUTES", "HolderNotVerified", "note_holder_failure", "guarded",
              "check_holder")


def __getattr__(name: str):
    """Checking the holder's PIN and keeping wrong guesses lives in pin_guard.py; its names are
    found here too, for the callers that know them by this module (looked up when asked:
    pin_guard.py imports this module, in either order)."""
    if name in _PIN_GUARD:
        from . import pin_guard
        return getattr(pin_guard, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
