"""Points as money (seed 001), pure: paying part of a purchase with points, exchanging them for cash, and
giving a returned purchase's points back.

Seed 001: "積分可用於兌換禮品、抵扣消費金額等" (points buy gifts and offset what a purchase costs);
gold: "積分可按一定比例兌換現金使用" (points exchange for cash at a rate); platinum: "積分兌換禮品或
現金的比例更加優惠" (a better rate). Rates are points per yuan from the settings; values are
integer fen, rounded down for the member's points (a point is never worth more than its rate).
Points used as money follow the redemption rules: only points credited before today, only while
redemption is open, never more than there are (``ledger.apply_redemption``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from ..customers.rules import InvalidField
from .ledger import PointsEntry, PointsKind, RedemptionClosed, apply_redemption, lots
from .rules import redemption_open
from .settings import DEFAULT_SETTINGS, ProgrammeSettings, Tier

__all__ = ["PointsTender", "cash_for_points", "fen_for_points", "points_for_fen", "refund_payment",
           "tender_for"]

MAX_POINTS = 100_000_000


def fen_for_points(points: int, points_per_yuan: int) -> int:
    """What ``points`` are worth in fen at ``points_per_yuan`` (rounded down)."""
    return points * 100 // points_per_yuan


def points_for_fen(fen: int, points_per_yuan: int) -> int:
    """The fewest points worth at least ``fen`` (rounded up: the member pays no fraction of a point less)."""
    return -(-fen * points_per_yuan // 100)


@dataclass(frozen=True)
class PointsTender:
    points: int        # taken from the ledger
    value_fen: int     # what they pay of the purchase
    entries: list[PointsEntry]


def _check_points(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_POINTS:
        raise InvalidField(field, "points.invalid", "Enter a whole number of points of at least 1.")
    return value


def tender_for(entries: Sequence[PointsEntry], points: int | None, due_fen: int, today: date, *,
               pay_all: bool, ref: str | None = None,
               settings: ProgrammeSettings = DEFAULT_SETTINGS) -> PointsTender:
    """Points paying ``due_fen`` (the price after discounts and coupon) or part of it.

    ``pay_all`` (payment method "points"): as many points as the whole price needs, unless
    ``points`` says how many (they must then cover it). Otherwise ``points`` pay part, and at
    most what the price needs. Refused (InvalidField on "points_used") when redemption is closed,
    the points are not there to redeem (``InsufficientPoints``) or are more than the price needs.
    """
    rate = settings.points_payment_points_per_yuan
    needed = points_for_fen(due_fen, rate)
    if points is None and pay_all:
        points = needed
    points = _check_points(points, "points_used")
    if not redemption_open(today, settings):
        exc = RedemptionClosed(today)
        raise InvalidField("points_used", exc.code, exc.message)
    if points > needed:
        raise InvalidField("points_used", "points.too_many", "More points than this purchase needs.")
    value = min(fen_for_points(points, rate), due_fen)
    if pay_all and value < due_fen:
        raise InvalidField("points_used", "points.short",
                           "These points do not pay it all: choose another payment method for the rest.")
    if value < 1:
        raise InvalidField("points_used", "points.too_few", "These points are worth less than one fen.")
    new = apply_redemption(entries, points, today, ref=ref, settings=settings, kind=PointsKind.PAYMENT)
    return PointsTender(points=points, value_fen=value, entries=new)


def cash_for_points(points: int, tier: Tier, settings: ProgrammeSettings = DEFAULT_SETTINGS) -> int:
    """The cash in fen ``points`` exchange for at ``tier``; refused below gold or for less than a fen."""
    points = _check_points(points, "points")
    rate = settings.cash_points_per_yuan(Tier(tier))
    if rate is None:
        raise InvalidField("points", "cash.tier", "Only gold and platinum members exchange points for cash.")
    cash = fen_for_points(points, rate)
    if cash < 1:
        raise InvalidField("points", "points.too_few", "These points are worth less than one fen.")
    return cash


def refund_payment(entries: Sequence[PointsEntry], ref: str, today: date,
                   settings: ProgrammeSettings = DEFAULT_SETTINGS) -> list[PointsEntry]:
    """Give back the points a returned purchase ``ref`` was paid with, each part with the expiry
    of the lot it came from (a refund never lengthens a point's life); parts whose lot has
    expired since are not given back. Already refunded points are not given twice."""
    by_index = {lot.index: lot for lot in lots(entries, settings)}
    refunded = sum(e.points for e in entries if e.kind is PointsKind.REFUND and e.ref == ref)
    out: list[PointsEntry] = []
    for e in entries:
        if e.kind is not PointsKind.PAYMENT or e.ref != ref:
            continue
        taken = -e.points
        skip = min(refunded, taken)
        refunded -= skip
        lot = by_index.get(e.lot) if e.lot is not None else None
        expires = lot.expires_on if lot is not None else None
        if taken - skip and (expires is None or today < expires):
            out.append(PointsEntry(PointsKind.REFUND, taken - skip, today, ref=ref, expires_on=expires))
    return out
