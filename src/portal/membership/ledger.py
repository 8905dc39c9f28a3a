"""Pure model of the points ledger and the stored-value ledger: append-only entries, derived balances.

A member's ledger is a list of entries in the order they were written; nothing is ever
updated or removed, and each function here *returns* the new entries to append instead of
changing the list it was given (so a refused operation writes nothing).

Points are kept in lots: every credit entry (earn, referral, event, positive adjust or
transfer) opens a lot that expires ``points_validity_years`` after its date; every debit entry
(redeem, expire, reversal, negative adjust or transfer) draws on one lot, named by ``lot`` =
the position of the credit entry in the ledger list (the database slice maps this to the
credit row's id). Debits written here always name their lot, so a lot's remainder is exact and
expiry never takes more than what is left of it. Balances are sums of entries and, because a
debit can only take a lot's remainder, never negative.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from ..customers.rules import InvalidField
from .amounts import balance, positive
from .rules import (
    DEFAULT_SETTINGS,
    ProgrammeSettings,
    catalogue_item,
    points_expire_on,
    redemption_open,
)
# The stored-value ledger (stored_value.py), named here too, as before.
from .stored_value import (  # noqa: F401
    InsufficientStoredValue,
    StoredValueEntry,
    StoredValueKind,
    adjust_stored_value,
    recharge,
    refund_stored_value,
    spend_stored_value,
)

__all__ = [
    "InsufficientPoints",
    "InsufficientStoredValue",
    "LedgerError",
    "Lot",
    "PointsEntry",
    "PointsKind",
    "PurchaseReversal",
    "RedemptionClosed",
    "StoredValueEntry",
    "StoredValueKind",
    "adjust_stored_value",
    "apply_deduction",
    "apply_redemption",
    "available_to_redeem",
    "balance",
    "check_ledger",
    "expire_due",
    "expiring_within",
    "lots",
    "recharge",
    "redeem_item",
    "refund_stored_value",
    "reverse_purchase",
    "spend_stored_value",
]


class LedgerError(ValueError):
    """The ledger itself breaks an invariant (a debit without points behind it, a bad lot)."""


class InsufficientPoints(InvalidField):
    """Asked for more points than are available; nothing was written."""

    def __init__(self, requested: int, available: int) -> None:
        super().__init__("points", "points.insufficient",
                         f"{requested} points requested but only {available} can be redeemed now.")
        self.requested = requested
        self.available = available


class RedemptionClosed(InvalidField):
    """Redemption is outside the configured windows; nothing was written."""

    def __init__(self, on: date) -> None:
        super().__init__("date", "redemption.closed",
                         f"Points cannot be redeemed on {on.isoformat()}: outside the redemption windows.")


# ---------------------------------------------------------------------------
# Points
# ---------------------------------------------------------------------------


class PointsKind(StrEnum):
    EARN = "earn"            # purchase points (also a claimed missed purchase); ref = purchase
    REDEEM = "redeem"
    EXPIRE = "expire"
    ADJUST = "adjust"        # either sign
    REFERRAL = "referral"
    EVENT = "event"
    TRANSFER = "transfer"    # either sign (in / out)
    REVERSAL = "reversal"    # takes back purchase points; ref = purchase
    PAYMENT = "payment"      # points paying part of a purchase (seed 001); ref = purchase
    REFUND = "refund"        # a returned purchase's points payment given back; ref = purchase
    CASH = "cash"            # points exchanged for cash (gold and above); ref = redemption


_CREDIT_ONLY = frozenset({PointsKind.EARN, PointsKind.REFERRAL, PointsKind.EVENT, PointsKind.REFUND})
_DEBIT_ONLY = frozenset({PointsKind.REDEEM, PointsKind.EXPIRE, PointsKind.REVERSAL, PointsKind.PAYMENT,
                         PointsKind.CASH})


@dataclass(frozen=True)
class PointsEntry:
    kind: PointsKind
    points: int                # signed: credits > 0, debits < 0
    on: date                   # Asia/Shanghai calendar date
    ref: str | None = None     # purchase, redemption, referral... reference
    lot: int | None = None     # debits: ledger position of the credit entry drawn on
    note: str = ""
    # Credits: the expiry fixed when they were written (the settings of that day); None means
    # "points_validity_years after ``on`` under the settings passed in".
    expires_on: date | None = None

    def __post_init__(self) -> None:
        kind = PointsKind(self.kind)
        object.__setattr__(self, "kind", kind)
        if isinstance(self.points, bool) or not isinstance(self.points, int) or self.points == 0:
            raise ValueError(f"points must be a non-zero integer, got {self.points!r}")
        if kind in _CREDIT_ONLY and self.points < 0:
            raise ValueError(f"{kind} entries credit points")
        if kind in _DEBIT_ONLY and self.points > 0:
            raise ValueError(f"{kind} entries debit points")
        if self.points > 0 and self.lot is not None:
            raise ValueError("a credit opens a lot; it does not draw on one")

    @property
    def delta(self) -> int:
        return self.points


@dataclass(frozen=True)
class Lot:
    """What is left of one credit entry."""

    index: int          # ledger position of the credit entry
    kind: PointsKind
    ref: str | None
    earned_on: date
    expires_on: date    # first day the points are no longer usable
    points: int         # credited
    remaining: int


def _expiry(credit: PointsEntry, settings: ProgrammeSettings) -> date:
    return credit.expires_on or points_expire_on(credit.on, settings)


def lots(entries: Sequence[PointsEntry], settings: ProgrammeSettings = DEFAULT_SETTINGS) -> list[Lot]:
    """Replay the ledger into lots (in ledger order); LedgerError if any debit is not covered.

    A debit naming a lot must name an earlier credit entry and take at most its remainder. A
    debit without a lot (written by some other tool) draws oldest-first on the lots that exist
    before it and are unexpired on its date.
    """
    remaining: dict[int, int] = {}
    meta: dict[int, PointsEntry] = {}
    for i, e in enumerate(entries):
        if e.points > 0:
            remaining[i] = e.points
            meta[i] = e
            continue
        need = -e.points
        if e.lot is not None:
            if e.lot not in remaining:
                raise LedgerError(f"entry {i} draws on {e.lot}, which is not an earlier credit")
            if remaining[e.lot] < need:
                raise LedgerError(f"entry {i} takes {need} from lot {e.lot}, which has {remaining[e.lot]}")
            remaining[e.lot] -= need
            continue
        for j in sorted(remaining, key=lambda k: (meta[k].on, k)):
            if _expiry(meta[j], settings) <= e.on:
                continue
            take = min(need, remaining[j])
            remaining[j] -= take
            need -= take
            if not need:
                break
        if need:
            raise LedgerError(f"entry {i} debits {-e.points} points that are not there")
    return [Lot(index=i, kind=meta[i].kind, ref=meta[i].ref, earned_on=meta[i].on,
                expires_on=_expiry(meta[i], settings), points=meta[i].points,
                remaining=left)
            for i, left in remaining.items()]


def check_ledger(entries: Sequence[PointsEntry], settings: ProgrammeSettings = DEFAULT_SETTINGS) -> None:
    """LedgerError unless every debit is covered by a lot (hence the balance is never negative)."""
    lots(entries, settings)


def _fifo(candidates: list[Lot]) -> list[Lot]:
    return sorted(candidates, key=lambda lot: (lot.earned_on, lot.index))


def _redeemable(entries: Sequence[PointsEntry], today: date, settings: ProgrammeSettings) -> list[Lot]:
    return _fifo([lot for lot in lots(entries, settings)
                  if lot.remaining > 0 and lot.earned_on < today < lot.expires_on])


def _draw(candidates: list[Lot], points: int, kind: PointsKind, today: date,
          ref: str | None, note: str) -> list[PointsEntry]:
    out: list[PointsEntry] = []
    for lot in candidates:
        if not points:
            break
        take = min(points, lot.remaining)
        if take:
            out.append(PointsEntry(kind, -take, today, ref=ref, lot=lot.index, note=note))
            points -= take
    return out


def available_to_redeem(entries: Sequence[PointsEntry], today: date,
                        settings: ProgrammeSettings = DEFAULT_SETTINGS) -> int:
    """Points redeemable today: unexpired lots credited before today.

    Anything credited today (purchase points, but also referral, event, adjustment or transfer
    credits) becomes redeemable tomorrow; lots past their expiry date are excluded even before
    ``expire_due`` has written their expire entries.
    """
    return redeemable_of(lots(entries, settings), today)


def redeemable_of(ledger_lots: Sequence[Lot], today: date) -> int:
    """``available_to_redeem`` from the ledger's lots (``lots()``) already replayed."""
    return sum(lot.remaining for lot in ledger_lots if lot.remaining > 0 and lot.earned_on < today < lot.expires_on)


def apply_redemption(entries: Sequence[PointsEntry], points: int, today: date, *,
                     ref: str | None = None, note: str = "",
                     settings: ProgrammeSettings = DEFAULT_SETTINGS,
                     kind: PointsKind = PointsKind.REDEEM) -> list[PointsEntry]:
    """Redeem entries for ``points``, consuming the oldest redeemable lots first (FIFO).

    InsufficientPoints if ``points`` exceeds ``available_to_redeem``; windows are checked by
    ``redeem_item``, not here. ``kind``: redeem, or payment / cash for points used as money.
    """
    if PointsKind(kind) not in (PointsKind.REDEEM, PointsKind.PAYMENT, PointsKind.CASH):
        raise ValueError("apply_redemption writes redeem, payment or cash entries")
    points = positive(points, "points")
    candidates = _redeemable(entries, today, settings)
    available = sum(lot.remaining for lot in candidates)
    if points > available:
        raise InsufficientPoints(points, available)
    return _draw(candidates, points, PointsKind(kind), today, ref, note)


def redeem_item(entries: Sequence[PointsEntry], item_code: str, today: date, *,
                ref: str | None = None, settings: ProgrammeSettings = DEFAULT_SETTINGS) -> list[PointsEntry]:
    """Redeem a catalogue item: the window must be open, the item must exist, the points available."""
    if not redemption_open(today, settings):
        raise RedemptionClosed(today)
    item = catalogue_item(item_code, settings)
    return apply_redemption(entries, item.points, today, ref=ref, note=item.code, settings=settings)


def apply_deduction(entries: Sequence[PointsEntry], points: int, today: date, *,
                    kind: PointsKind = PointsKind.ADJUST, ref: str | None = None, note: str = "",
                    settings: ProgrammeSettings = DEFAULT_SETTINGS) -> list[PointsEntry]:
    """A negative adjustment or an outgoing transfer: FIFO over all unexpired lots (today's too)."""
    points = positive(points, "points")
    if PointsKind(kind) not in (PointsKind.ADJUST, PointsKind.TRANSFER):
        raise ValueError("apply_deduction writes adjust or transfer entries")
    candidates = _fifo([lot for lot in lots(entries, settings)
                        if lot.remaining > 0 and lot.earned_on <= today < lot.expires_on])
    available = sum(lot.remaining for lot in candidates)
    if points > available:
        raise InsufficientPoints(points, available)
    return _draw(candidates, points, PointsKind(kind), today, ref, note)


def expire_due(entries: Sequence[PointsEntry], today: date,
               settings: ProgrammeSettings = DEFAULT_SETTINGS) -> list[PointsEntry]:
    """Expire entries for every lot whose expiry date is on or before ``today``, oldest first.

    Each takes exactly the lot's remainder and is dated on the lot's expiry date (the day the
    points stopped being usable, even if the job runs later). Idempotent: run again, it returns [].
    """
    due = [lot for lot in lots(entries, settings) if lot.remaining > 0 and lot.expires_on <= today]
    return [PointsEntry(PointsKind.EXPIRE, -lot.remaining, lot.expires_on, ref=lot.ref, lot=lot.index)
            for lot in sorted(due, key=lambda lot: (lot.expires_on, lot.index))]


def expiring_within(entries: Sequence[PointsEntry], today: date, days: int | None = None,
                    settings: ProgrammeSettings = DEFAULT_SETTINGS) -> list[Lot]:
    """Lots with points left that expire after today and within ``days`` (default 30), soonest first."""
    return expiring_of(lots(entries, settings), today, settings.expiry_warning_days if days is None else days)


def expiring_of(ledger_lots: Sequence[Lot], today: date, days: int) -> list[Lot]:
    """``expiring_within`` from the ledger's lots (``lots()``) already replayed."""
    horizon = today + timedelta(days=days)
    return sorted((lot for lot in ledger_lots if lot.remaining > 0 and today < lot.expires_on <= horizon),
                  key=lambda lot: (lot.expires_on, lot.index))


@dataclass(frozen=True)
class PurchaseReversal:
    entries: list[PointsEntry]   # to append (may be empty)
    reversed_points: int         # taken back now
    shortfall: int               # owed but not there: already spent; for staff to settle


def reverse_purchase(entries: Sequence[PointsEntry], purchase_ref: str, today: date, *,
                     points: int | None = None,
                     settings: ProgrammeSettings = DEFAULT_SETTINGS) -> PurchaseReversal:
    """Take back the points a purchase earned (its ``earn`` entries with ``ref=purchase_ref``).

    Policy: the amount owed is what the purchase earned, less what already expired from its own
    lots (the member never had the use of those) and less earlier reversals of the same
    purchase; ``points`` caps it for a partial return. The purchase's own lots are taken first,
    then any other lots oldest first. The balance never goes negative: if the points were
    already spent, the reversal takes what is left and reports the rest as ``shortfall``
    (nothing is written for it). Calling again later collects an outstanding shortfall if points
    have arrived since; a fully reversed purchase yields no entries.
    """
    if points is not None and (isinstance(points, bool) or not isinstance(points, int) or points < 0):
        raise InvalidField("points", "points.invalid", "points must be a whole number, zero or more.")
    all_lots = lots(entries, settings)
    own = [lot for lot in all_lots if lot.kind is PointsKind.EARN and lot.ref == purchase_ref]
    own_index = {lot.index for lot in own}
    earned = sum(lot.points for lot in own)
    expired = -sum(e.points for e in entries if e.kind is PointsKind.EXPIRE and e.lot in own_index)
    reversed_ = -sum(e.points for e in entries if e.kind is PointsKind.REVERSAL and e.ref == purchase_ref)
    owed = max(0, earned - expired - reversed_)
    if points is not None:
        owed = min(owed, points)
    others = _fifo([lot for lot in all_lots if lot.index not in own_index])
    new = _draw(_fifo(own) + others, owed, PointsKind.REVERSAL, today, purchase_ref, "")
    taken = -sum(e.points for e in new)
    return PurchaseReversal(entries=new, reversed_points=taken, shortfall=owed - taken)
