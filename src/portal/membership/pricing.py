"""Discounts and purchase pricing: the member's rate, per-line amounts, points earned, counted spend.

Integers only: money is fen, rates are per mille of the list price, points are whole. Every
figure comes from the ``ProgrammeSettings`` passed in (the seed document's values by default).
"""
from __future__ import annotations

import calendar
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from ..customers.rules import InvalidField
from .coupon_rules import CouponTerms, allocate, coupon_off
from .settings import DEFAULT_SETTINGS, ProgrammeSettings, Tier

__all__ = [
    "DiscountReason",
    "InvalidPurchase",
    "MemberState",
    "apply_points_tender",
    "PricedLine",
    "PricedPurchase",
    "PurchaseLine",
    "birthday_applies",
    "discount_for",
    "line_counts",
    "line_earns",
    "price_purchase",
    "round_half_up_div",
]

def birthday_applies(birthday: date | None, on: date) -> bool:
    """Same month and day (Asia/Shanghai date); a Feb 29 birthday counts on Feb 28 in other years."""
    if birthday is None:
        return False
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(on.year):
        return on.month == 2 and on.day == 28
    return (on.month, on.day) == (birthday.month, birthday.day)


def birthday_days(on: date) -> list[tuple[int, int]]:
    """The (month, day) of every birthday that birthday_applies() on ``on``: that day, and
    29 February as well on 28 February of a year that has none."""
    days = [(on.month, on.day)]
    if (on.month, on.day) == (2, 28) and not calendar.isleap(on.year):
        days.append((2, 29))
    return days


class DiscountReason(StrEnum):
    TIER = "tier"
    BIRTHDAY = "birthday"
    NONE = "none"


@dataclass(frozen=True)
class MemberState:
    """What pricing needs to know about the buyer. ``tier=None`` is a non-member.

    ``frozen_spend_counts`` is resolved by the caller from ``ProgrammeSettings.frozen_spend_counts``
    (see ``for_member``); it decides whether a frozen member's spend still counts toward tiers.
    """

    tier: Tier | None
    frozen: bool = False
    birthday: date | None = None
    frozen_spend_counts: bool = False

    @classmethod
    def for_member(cls, tier: Tier | None, *, frozen: bool = False, birthday: date | None = None,
                   settings: ProgrammeSettings = DEFAULT_SETTINGS) -> MemberState:
        return cls(tier=tier, frozen=frozen, birthday=birthday,
                   frozen_spend_counts=settings.frozen_spend_counts)


def discount_for(member: MemberState, on: date,
                 settings: ProgrammeSettings = DEFAULT_SETTINGS) -> tuple[int, DiscountReason]:
    """(rate per mille, reason) for discountable lines: the better of tier and birthday rates.

    Non-members and frozen members get no discount. A tie goes to the birthday (the tier's
    rate is not *better*).
    """
    if member.tier is None or member.frozen:
        return 1000, DiscountReason.NONE
    tier_rate = settings.discount_per_mille(member.tier)
    if birthday_applies(member.birthday, on) and settings.birthday_discount_per_mille <= tier_rate:
        return settings.birthday_discount_per_mille, DiscountReason.BIRTHDAY
    if tier_rate < 1000:
        return tier_rate, DiscountReason.TIER
    return 1000, DiscountReason.NONE


def round_half_up_div(numerator: int, denominator: int) -> int:
    """Integer division of non-negative integers, rounding halves up (9.5 -> 10)."""
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(frozen=True)
class PurchaseLine:
    product: str
    quantity: int
    unit_price_fen: int
    special_price: bool = False
    group_buy: bool = False


@dataclass(frozen=True)
class PricedLine:
    line: PurchaseLine
    list_fen: int       # unit price x quantity
    discount_fen: int   # list - paid
    paid_fen: int
    discounted: bool    # the member's rate applied to this line
    earns: bool         # earns points (not special-price, not group-buy)
    counts: bool = True  # counts as spend toward joining and tiers (see ``line_counts``)


@dataclass(frozen=True)
class PricedPurchase:
    lines: tuple[PricedLine, ...]
    list_total_fen: int
    discount_total_fen: int
    paid_total_fen: int
    rate_per_mille: int
    discount_reason: DiscountReason
    points_earned: int
    spend_counted_fen: int  # toward joining and tier thresholds
    coupon_discount_fen: int = 0   # part of discount_total_fen: the coupon's share (seed 001)
    points_tender_fen: int = 0     # part of paid_total_fen paid with points (earns no points)


def line_earns(special_price: bool, group_buy: bool) -> bool:
    """Seed 004: "团购业务、特例商品不参与积分" (group buys and special-price goods earn no points)."""
    return not (special_price or group_buy)


def line_counts(special_price: bool, group_buy: bool, settings: ProgrammeSettings = DEFAULT_SETTINGS) -> bool:
    """Whether a line's paid amount counts as spend toward joining and tiers.

    Seed 004 excludes group buys from *points* only, and seed 000's programme exists to manage
    group-buying customers: group-buy spend counts unless ``group_buy_counts_toward_tiers`` is off.
    Special-price goods never count.
    """
    return not special_price and (not group_buy or settings.group_buy_counts_toward_tiers)


class InvalidPurchase(InvalidField):
    """A purchase was rejected; ``field`` is e.g. "lines" or "lines[2].quantity"."""


def _check_int(value: object, field_name: str, minimum: int, code: str, message: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidPurchase(field_name, code, message)


MAX_PURCHASE_FEN = 1_000_000_000  # ¥10,000,000: far above any sale, well inside a 32-bit column


def price_purchase(lines: Sequence[PurchaseLine], member: MemberState, purchase_date: date,
                   settings: ProgrammeSettings = DEFAULT_SETTINGS,
                   coupon: CouponTerms | None = None) -> PricedPurchase:
    """Price a purchase: per-line discount, totals, points earned and counted spend.

    * Each discountable line pays ``round_half_up(list_fen x rate / 1000)`` fen (integers only).
      Special-price lines are never discounted (group-buy lines are unless
      ``settings.discount_group_buy`` is off).
    * Points: floor(eligible paid total / 100) x the tier's rate per yuan, where the eligible
      total sums the paid amounts of lines that are neither special-price nor group-buy. The
      flooring is on the eligible *total*, not per line, so two ¥0.60 lines earn 1 point.
    * Counted spend: the paid total of lines that count (``line_counts``: group buys do unless
      the setting says otherwise; special-price lines never). Frozen members earn nothing and get no discount;
      their spend counts only if ``member.frozen_spend_counts``. Non-members (``tier=None``) pay
      list price, earn nothing, and their spend counts (toward joining).
    * A ``coupon`` (seed 001: 會員專屬優惠券) applies after the member's discount to the lines a
      discount may touch (never special-price lines; group buys as ``discount_group_buy`` says):
      their price must reach its minimum spend; what it takes off is shared over those lines in
      proportion (exact fen), so points and counted spend follow the price actually paid. The
      caller has checked the coupon's owner, state, validity and tier.
    """
    if not isinstance(lines, (list, tuple)) or not lines:
        raise InvalidPurchase("lines", "lines.empty", "A purchase needs at least one line.")
    for i, line in enumerate(lines):
        if not isinstance(line, PurchaseLine):
            raise InvalidPurchase(f"lines[{i}]", "line.invalid", "Not a purchase line.")
        if not isinstance(line.product, str) or not line.product.strip():
            raise InvalidPurchase(f"lines[{i}].product", "product.required", "Name the product.")
        _check_int(line.quantity, f"lines[{i}].quantity", 1, "quantity.invalid",
                   "Quantity must be a whole number of at least 1.")
        _check_int(line.unit_price_fen, f"lines[{i}].unit_price_fen", 0, "price.invalid",
                   "Price must be a whole number of fen, zero or more.")

    if sum(line.unit_price_fen * line.quantity for line in lines) > MAX_PURCHASE_FEN:
        raise InvalidPurchase("lines", "total.too_large",
                              "A purchase of more than ¥10,000,000 cannot be recorded; split it.")
    rate, reason = discount_for(member, purchase_date, settings)
    priced: list[PricedLine] = []
    for line in lines:
        list_fen = line.unit_price_fen * line.quantity
        discounted = rate < 1000 and _discountable(line, settings)
        paid = round_half_up_div(list_fen * rate, 1000) if discounted else list_fen
        priced.append(PricedLine(line=line, list_fen=list_fen, discount_fen=list_fen - paid,
                                 paid_fen=paid, discounted=discounted,
                                 earns=line_earns(line.special_price, line.group_buy),
                                 counts=line_counts(line.special_price, line.group_buy, settings)))
    coupon_fen = 0
    if coupon is not None:
        takes = [i for i, p in enumerate(priced) if _discountable(p.line, settings)]
        coupon_fen = coupon_off(coupon, sum(priced[i].paid_fen for i in takes))
        for i, share in zip(takes, allocate(coupon_fen, [priced[i].paid_fen for i in takes])):
            p = priced[i]
            priced[i] = dataclasses.replace(p, paid_fen=p.paid_fen - share, discount_fen=p.discount_fen + share)

    eligible_fen = sum(p.paid_fen for p in priced if p.earns)
    counted_fen = sum(p.paid_fen for p in priced if p.counts)
    earning = member.tier is not None and not member.frozen
    points = (eligible_fen // 100) * settings.points_per_yuan(member.tier) if earning else 0
    counts = not member.frozen or member.frozen_spend_counts
    if not any(p.discounted for p in priced):
        rate, reason = 1000, DiscountReason.NONE
    return PricedPurchase(
        lines=tuple(priced),
        list_total_fen=sum(p.list_fen for p in priced),
        discount_total_fen=sum(p.discount_fen for p in priced),
        paid_total_fen=sum(p.paid_fen for p in priced),
        rate_per_mille=rate,
        discount_reason=reason,
        points_earned=points,
        spend_counted_fen=counted_fen if counts else 0,
        coupon_discount_fen=coupon_fen,
    )


def _discountable(line: PurchaseLine, settings: ProgrammeSettings) -> bool:
    """Special-price lines are never discounted (seed 002: 特价产品不参与折让); group buys unless
    ``discount_group_buy`` is off."""
    return not line.special_price and (settings.discount_group_buy or not line.group_buy)


def apply_points_tender(priced: PricedPurchase, tender_fen: int, member: MemberState,
                        settings: ProgrammeSettings = DEFAULT_SETTINGS) -> PricedPurchase:
    """The purchase with ``tender_fen`` of its price paid with points (seed 001: 積分可用於...抵扣消費金額).

    The price and the counted spend do not change: points are a way to pay. The part paid with
    points earns no points: the earning lines' share of it (in proportion to the price) comes
    off their total before it is floored to whole yuan.
    """
    if isinstance(tender_fen, bool) or not isinstance(tender_fen, int) or not 0 <= tender_fen <= priced.paid_total_fen:
        raise ValueError("points pay between nothing and the whole price")
    eligible_fen = sum(p.paid_fen for p in priced.lines if p.earns)
    share = round_half_up_div(tender_fen * eligible_fen, priced.paid_total_fen) if priced.paid_total_fen else 0
    earning = member.tier is not None and not member.frozen
    points = ((eligible_fen - share) // 100) * settings.points_per_yuan(member.tier) if earning else 0
    return dataclasses.replace(priced, points_earned=points, points_tender_fen=tender_fen)

