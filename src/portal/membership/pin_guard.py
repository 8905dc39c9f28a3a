"""A named card's holder proves who they are (the member's PIN or ID number) before spending stored
value, and wrong guesses are kept: five within a quarter of an hour lock the member's stored value,
however many arrive at once, across processes (the holder's lock, ``portal.locks``)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import clock, locks
from ..accounts.actor import Actor
from ..accounts.passwords import verify_password
from ..audit import service as audit
from ..customers.rules import InvalidField
from ..vault import Vault
from .cards import CardInHand, CardNotUsable
from .members import event
from .models import MemberEvent, Membership


PIN_TRIES = 5          # wrong PINs / ID numbers ...
PIN_WINDOW_MINUTES = 15  # ... within this many minutes lock stored-value spending on the member
_GUARD = "holder_guard"  # session.info key: the membership ids whose PIN checks this transaction holds


class HolderNotVerified(InvalidField):
    """A wrong PIN or ID number. The use case's writes roll back but the failure is kept
    (``guarded`` notes it in the same transaction, under the holder's lock)."""

    def __init__(self, membership_id: int, card_number: str) -> None:
        super().__init__("pin", "pin.invalid", "The PIN or ID number does not match this card's holder.")
        self.membership_id = membership_id
        self.card_number = card_number


class _HolderLockNeeded(Exception):
    """Raised inside ``guarded`` before any PIN is evaluated: the transaction must start again
    holding this holder's lock."""

    def __init__(self, membership_id: int) -> None:
        super().__init__(membership_id)
        self.membership_id = membership_id


def _recent_failures(s: Session, membership_id: int) -> int:
    since = clock.now() - timedelta(minutes=PIN_WINDOW_MINUTES)
    return s.scalar(select(func.count()).select_from(MemberEvent).where(
        MemberEvent.membership_id == membership_id, MemberEvent.kind == "holder_failed",
        MemberEvent.at > since)) or 0


def note_holder_failure(s: Session, actor: Actor, exc: HolderNotVerified) -> None:
    m = s.get(Membership, exc.membership_id)
    event(s, m, actor, "holder_failed", to_value=exc.card_number)
    audit.record(s, actor, "member.stored_value", audit.DENIED, object_type="card",
                 object_id=exc.card_number, detail="wrong PIN or ID number")


def guarded(db, actor: Actor, work):
    """Run ``work(session)`` in a write transaction in which a wrong PIN is kept: five wrong
    guesses lock the card's stored value for a while, however many arrive at once.

    The transaction holds the card holder's lock (``portal.locks``) from before the count of
    recent failures until the failure is committed; ``work`` runs in a savepoint inside it, so
    a wrong PIN undoes the work's writes while its failure is noted under the same lock. Which
    holder ``work`` needs is known only once it reaches ``check_holder``: the first pass stops
    there (before evaluating anything) and the transaction starts again holding that lock.
    """
    held: set[int] = set()
    for _ in range(3):
        failure = None
        with db.write() as s:
            locks.hold(s, "stored-value-pin", *sorted(held))  # before the savepoint and every row lock
            s.info[_GUARD] = frozenset(held)
            try:
                with s.begin_nested():
                    return work(s)
            except _HolderLockNeeded as exc:
                held.add(exc.membership_id)
                continue  # nothing was evaluated; this transaction ends with nothing written
            except HolderNotVerified as exc:
                note_holder_failure(s, actor, exc)
                failure = exc
            finally:
                s.info.pop(_GUARD, None)
        raise failure
    raise RuntimeError("the card holder kept changing while the PIN was checked")


def check_holder(s: Session, hand: CardInHand, vault: Vault, *, pin: str | None,
                 id_number: str | None) -> None:
    """A named card spends stored value only with the member's PIN or ID number; anonymous cards need neither.

    Run through ``guarded`` (the pages and the POS API do), a wrong guess is kept and the count of
    recent failures is exact under any concurrency. Called outside it (scripts, tests), a wrong
    guess is refused the same way but only the caller's transaction decides what is kept.
    """
    if not hand.account.named:
        return
    held = s.info.get(_GUARD)
    if held is not None and hand.membership.id not in held:
        raise _HolderLockNeeded(hand.membership.id)
    if _recent_failures(s, hand.membership.id) >= PIN_TRIES:
        raise CardNotUsable("pin_locked", f"Too many wrong PINs: stored value is locked for "
                                          f"{PIN_WINDOW_MINUTES} minutes.")
    if pin and hand.membership.pin_hash and verify_password(hand.membership.pin_hash, pin.strip()):
        return
    if id_number and hand.file.id_number_bidx:
        from ..customers.rules import normalise_id_number
        try:
            if vault.blind_index("id_number", normalise_id_number(id_number)) == hand.file.id_number_bidx:
                return
        except InvalidField:
            pass
    raise HolderNotVerified(hand.membership.id, hand.card.number)
