"""Pure model of the stored-value ledger (fen): append-only entries, the balance their sum.

As the points ledger (ledger.py), each function *returns* the entry to append and refuses,
writing nothing, a debit the balance cannot cover.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from ..customers.rules import InvalidField
from .amounts import balance, positive


class InsufficientStoredValue(InvalidField):
    """A stored-value debit larger than the balance; nothing was written."""

    def __init__(self, requested_fen: int, balance_fen: int) -> None:
        super().__init__("amount_fen", "stored_value.insufficient",
                         f"{requested_fen} fen requested but the balance is {balance_fen} fen.")
        self.requested_fen = requested_fen
        self.balance_fen = balance_fen


class StoredValueKind(StrEnum):
    RECHARGE = "recharge"    # money onto the card
    SPEND = "spend"          # paid from the card; ref = purchase
    REFUND = "refund"        # a refunded purchase's money back onto the card; ref = purchase
    ADJUST = "adjust"        # either sign


@dataclass(frozen=True)
class StoredValueEntry:
    kind: StoredValueKind
    amount_fen: int          # signed: recharge/refund > 0, spend < 0
    on: date
    ref: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        kind = StoredValueKind(self.kind)
        object.__setattr__(self, "kind", kind)
        a = self.amount_fen
        if isinstance(a, bool) or not isinstance(a, int) or a == 0:
            raise ValueError(f"amount_fen must be a non-zero integer, got {a!r}")
        if kind in (StoredValueKind.RECHARGE, StoredValueKind.REFUND) and a < 0:
            raise ValueError(f"{kind} entries credit the card")
        if kind is StoredValueKind.SPEND and a > 0:
            raise ValueError("spend entries debit the card")

    @property
    def delta(self) -> int:
        return self.amount_fen


def recharge(amount_fen: int, on: date, *, ref: str | None = None, note: str = "") -> StoredValueEntry:
    return StoredValueEntry(StoredValueKind.RECHARGE, positive(amount_fen, "amount_fen"), on, ref, note)


def spend_stored_value(entries: Sequence[StoredValueEntry], amount_fen: int, on: date, *,
                       ref: str | None = None, note: str = "") -> StoredValueEntry:
    """A spend entry; InsufficientStoredValue if it would take the balance below zero."""
    amount_fen = positive(amount_fen, "amount_fen")
    current = balance(entries)
    if amount_fen > current:
        raise InsufficientStoredValue(amount_fen, current)
    return StoredValueEntry(StoredValueKind.SPEND, -amount_fen, on, ref, note)


def refund_stored_value(entries: Sequence[StoredValueEntry], amount_fen: int, on: date, *,
                        ref: str, note: str = "") -> StoredValueEntry:
    """Money back for purchase ``ref``; at most what that purchase spent less earlier refunds."""
    amount_fen = positive(amount_fen, "amount_fen")
    spent = -sum(e.amount_fen for e in entries if e.kind is StoredValueKind.SPEND and e.ref == ref)
    refunded = sum(e.amount_fen for e in entries if e.kind is StoredValueKind.REFUND and e.ref == ref)
    if amount_fen > spent - refunded:
        raise InvalidField("amount_fen", "refund.too_large",
                           f"Purchase {ref} has only {spent - refunded} fen left to refund.")
    return StoredValueEntry(StoredValueKind.REFUND, amount_fen, on, ref, note)


def adjust_stored_value(entries: Sequence[StoredValueEntry], amount_fen: int, on: date, *,
                        note: str, ref: str | None = None) -> StoredValueEntry:
    """A signed correction with a reason; never takes the balance below zero."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen == 0:
        raise InvalidField("amount_fen", "amount_fen.invalid", "An adjustment is a non-zero number of fen.")
    if not note.strip():
        raise InvalidField("note", "note.required", "Say why the balance is adjusted.")
    current = balance(entries)
    if current + amount_fen < 0:
        raise InsufficientStoredValue(-amount_fen, current)
    return StoredValueEntry(StoredValueKind.ADJUST, amount_fen, on, ref, note)
