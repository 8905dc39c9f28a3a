"""The programme's figures as one validated value (``ProgrammeSettings``), its parts, and its JSON form.

Money is integer fen, discount rates are per mille of the list price (950 = 9.5折), durations
are months/years/days. ``DEFAULT_SETTINGS`` holds the seed document's values; stored versions
are JSON (``settings_to_json`` / ``settings_from_json``) that keep loading after new fields
are added, because missing keys take their defaults and unknown keys are ignored.
"""
from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from ..customers.rules import InvalidField

__all__ = [
    "CARD_KINDS",
    "CASH_ITEM",
    "CardType",
    "DEFAULT_SETTINGS",
    "ProgrammeSettings",
    "RedemptionItem",
    "Tier",
    "settings_from_json",
    "settings_in_effect",
    "settings_to_json",
]


class Tier(StrEnum):
    """Membership tiers; they compare by rank (regular < silver < gold < platinum)."""

    REGULAR = "regular"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"

    @property
    def rank(self) -> int:
        return _TIER_RANK[self]

    def __lt__(self, other: object) -> bool:
        return self.rank < other.rank if isinstance(other, Tier) else NotImplemented

    def __le__(self, other: object) -> bool:
        return self.rank <= other.rank if isinstance(other, Tier) else NotImplemented

    def __gt__(self, other: object) -> bool:
        return self.rank > other.rank if isinstance(other, Tier) else NotImplemented

    def __ge__(self, other: object) -> bool:
        return self.rank >= other.rank if isinstance(other, Tier) else NotImplemented


_TIER_RANK = {Tier.REGULAR: 0, Tier.SILVER: 1, Tier.GOLD: 2, Tier.PLATINUM: 3}


@dataclass(frozen=True)
class RedemptionItem:
    """A catalogue item: ``points`` buys something worth ``value_fen``."""

    code: str
    name: str
    points: int
    value_fen: int


# The item code a points-for-cash exchange is recorded under (never a catalogue item).
CASH_ITEM = "cash"

CARD_KINDS = ("tier", "service", "co_branded", "family")
_CARD_CODE = re.compile(r"[a-z0-9-]{1,32}")


@dataclass(frozen=True)
class CardType:
    """A kind of card the programme issues: ``code`` (a-z, 0-9, "-"), display ``name``, ``kind``."""

    code: str
    name: str
    kind: str = "tier"  # one of CARD_KINDS
    named: bool = True  # False: a bearer card, whose stored value is spent without PIN or ID check

    def __post_init__(self) -> None:
        if not isinstance(self.named, bool):
            raise ValueError(f"card type {self.code!r}: named must be true or false")
        if not isinstance(self.code, str) or not _CARD_CODE.fullmatch(self.code):
            raise ValueError(f"card type code must be 1 to 32 of a-z, 0-9 and '-', got {self.code!r}")
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"card type {self.code!r} needs a name")
        if self.kind not in CARD_KINDS:
            raise ValueError(f"card type {self.code!r}: kind must be one of {', '.join(CARD_KINDS)}")


def _default_catalogue() -> tuple[RedemptionItem, ...]:
    return (
        RedemptionItem("gift-100", "¥100 gift", 1_000, 10_000),
        RedemptionItem("coupon-50", "¥50 coupon", 500, 5_000),
    )


def _default_card_types() -> tuple[CardType, ...]:
    return (
        CardType("standard", "Standard card", "tier"),
        CardType("dining", "Dining card", "service"),
        CardType("cosmetics", "Cosmetics card", "service"),
        CardType("co-branded", "Co-branded card", "co_branded"),
        CardType("family", "Family card", "family"),
        CardType("gift", "Gift card (anonymous)", "service", named=False),
    )


@dataclass(frozen=True)
class ProgrammeSettings:
    """Every figure of the programme, defaulting to the seed document's values.

    Amounts are fen, rates are per mille of the list price (950 = 9.5折), durations are
    months/years/days. A new version is ``dataclasses.replace(old, effective_from=..., ...)``;
    construction validates the whole object, so a bad edit never becomes a version.
    """

    # "The seed values have always applied"; a stored version sets its own date.
    effective_from: date = date(2000, 1, 1)
    # Joining
    join_single_purchase_fen: int = 68_000        # ¥680 in one purchase
    join_cumulative_fen: int = 100_000            # ¥1,000 ...
    join_window_months: int = 12                  # ... within 12 months
    joining_fee_fen: int = 0
    # Cards
    card_validity_years: int = 2
    # Tiers (platinum: a leader's decision only)
    silver_points: int = 10_000
    silver_spend_fen: int = 1_000_000             # ¥10,000
    gold_points: int = 50_000
    gold_spend_fen: int = 2_000_000               # ¥20,000 (seed 002, 始祖鸟: 一年消费累计满20000元)
    tier_window_months: int = 12
    tier_points_accumulated: bool = True          # tier points: all since joining (004), else the window
    single_purchase_silver_fen: int = 0           # one purchase this large gives silver (002); 0 = off
    single_purchase_gold_fen: int = 0             # ... gold; 0 = off
    group_buy_counts_toward_tiers: bool = True    # group-buy spend joins and upgrades (004 excludes points only)
    cancelled_spend_counts: bool = False          # spend while a card is cancelled (003: management decides)
    lapse_after_months: int = 24
    # Discounts, per mille of list price (1000 = no discount)
    regular_discount_per_mille: int = 1000
    silver_discount_per_mille: int = 950
    gold_discount_per_mille: int = 880
    platinum_discount_per_mille: int = 750
    birthday_discount_per_mille: int = 850
    discount_group_buy: bool = True               # the seed only excludes special-price lines
    frozen_spend_counts: bool = False             # does a frozen member's spend count toward tiers?
    # Points per whole yuan paid on eligible lines
    regular_points_per_yuan: int = 1
    silver_points_per_yuan: int = 2
    gold_points_per_yuan: int = 3
    platinum_points_per_yuan: int = 4
    # Referral points by the referred member's tier
    referral_points_regular: int = 100
    referral_points_silver: int = 300
    referral_points_gold: int = 500
    referral_points_platinum: int = 800
    # Points life cycle
    points_validity_years: int = 2
    expiry_warning_days: int = 30
    missed_points_claim_days: int = 30
    redemption_months: tuple[int, ...] = ()       # e.g. (3, 8); empty = always open
    # Company rules (seed 000): the fine for each leak of customer files
    leak_penalty_fen: int = 500_000               # ¥5,000 each time
    # Customer classes A/B/C/D (seed 002: X, X1, X2 yuan of average annual spend; A also buys X times a
    # year). The seed gives no figures: these defaults sit at the tier thresholds (¥20,000 gold, ¥10,000
    # silver) and ¥3,000, with A buying at least 6 times a year; averages over the class window.
    class_a_spend_fen: int = 2_000_000            # X: ¥20,000 a year
    class_b_spend_fen: int = 1_000_000            # X1: ¥10,000 a year
    class_c_spend_fen: int = 300_000              # X2: ¥3,000 a year
    class_a_purchases: int = 6                    # A buys at least this often a year
    class_window_months: int = 24                 # the average is taken over this many months
    # Member events (seed 001, 五): silver and above may be registered this many days earlier
    event_priority_days: int = 7
    # Points as money (seed 001: 積分可用於兌換禮品、抵扣消費金額): points pay part of a purchase at
    # the redemption rate of the seed's examples (1000積分 for a ¥100 gift, 500積分 for a ¥50 coupon) ...
    points_payment_points_per_yuan: int = 10
    # ... and gold and above exchange them for cash (積分可按一定比例兌換現金使用), platinum at a
    # better rate (積分兌換禮品或現金的比例更加優惠): fewer points per yuan.
    gold_cash_points_per_yuan: int = 10
    platinum_cash_points_per_yuan: int = 8
    # Coupons (seed 001): the birthday coupon of each tier (生日福利 ... 根據會員等級 ... 專屬優惠券),
    # an amount off in fen (0 = none), valid this many days from the birthday.
    birthday_coupon_regular_fen: int = 0
    birthday_coupon_silver_fen: int = 2_000
    birthday_coupon_gold_fen: int = 5_000
    birthday_coupon_platinum_fen: int = 10_000
    birthday_coupon_days: int = 30
    catalogue: tuple[RedemptionItem, ...] = field(default_factory=_default_catalogue)
    card_types: tuple[CardType, ...] = field(default_factory=_default_card_types)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"{f.name} must be a non-negative integer, got {value!r}")
            elif f.type in ("bool", bool) and not isinstance(value, bool):
                raise ValueError(f"{f.name} must be true or false, got {value!r}")
        if not isinstance(self.effective_from, date) or isinstance(self.effective_from, datetime):
            raise ValueError("effective_from must be a date")
        for tier in Tier:
            if not 0 <= self.discount_per_mille(tier) <= 1000:
                raise ValueError(f"{tier}_discount_per_mille must be 0..1000")
        if not 0 <= self.birthday_discount_per_mille <= 1000:
            raise ValueError("birthday_discount_per_mille must be 0..1000")
        if self.silver_points > self.gold_points or self.silver_spend_fen > self.gold_spend_fen:
            raise ValueError("silver thresholds must not exceed gold thresholds")
        if self.single_purchase_silver_fen and self.single_purchase_gold_fen \
                and self.single_purchase_silver_fen > self.single_purchase_gold_fen:
            raise ValueError("the single-purchase silver threshold must not exceed gold's")
        if not self.class_a_spend_fen >= self.class_b_spend_fen >= self.class_c_spend_fen:
            raise ValueError("class thresholds must fall from A to C (X >= X1 >= X2)")
        for name in ("join_window_months", "tier_window_months", "lapse_after_months",
                     "card_validity_years", "points_validity_years", "class_window_months",
                     "points_payment_points_per_yuan", "gold_cash_points_per_yuan",
                     "platinum_cash_points_per_yuan", "birthday_coupon_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.platinum_cash_points_per_yuan > self.gold_cash_points_per_yuan:
            raise ValueError("platinum's cash rate must be at least as good as gold's (seed 001: 更加優惠)")
        months = tuple(self.redemption_months)
        if any(isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 12 for m in months) \
                or len(set(months)) != len(months):
            raise ValueError(f"redemption_months must be distinct months 1..12, got {months!r}")
        object.__setattr__(self, "redemption_months", months)
        catalogue = tuple(self.catalogue)
        codes = [item.code for item in catalogue]
        if len(set(codes)) != len(codes):
            raise ValueError("catalogue item codes must be unique")
        if CASH_ITEM in codes:
            raise ValueError(f"the catalogue code {CASH_ITEM!r} is kept for points exchanged for cash")
        for item in catalogue:
            if isinstance(item.points, bool) or not isinstance(item.points, int) or item.points < 1:
                raise ValueError(f"catalogue item {item.code!r} must cost at least 1 point")
            if isinstance(item.value_fen, bool) or not isinstance(item.value_fen, int) or item.value_fen < 0:
                raise ValueError(f"catalogue item {item.code!r} needs a value in whole fen")
        object.__setattr__(self, "catalogue", catalogue)
        card_types = tuple(self.card_types)
        if not card_types:
            raise ValueError("the programme needs at least one card type")
        if not all(isinstance(c, CardType) for c in card_types):
            raise ValueError("card_types must be CardType values")
        card_codes = [c.code for c in card_types]
        if len(set(card_codes)) != len(card_codes):
            raise ValueError("card type codes must be unique")
        object.__setattr__(self, "card_types", card_types)

    def discount_per_mille(self, tier: Tier) -> int:
        return getattr(self, f"{Tier(tier).value}_discount_per_mille")

    def points_per_yuan(self, tier: Tier) -> int:
        return getattr(self, f"{Tier(tier).value}_points_per_yuan")

    def referral_points(self, tier: Tier) -> int:
        return getattr(self, f"referral_points_{Tier(tier).value}")

    def cash_points_per_yuan(self, tier: Tier) -> int | None:
        """Points for ¥1 in cash at ``tier``; None below gold (seed 001: gold and above only)."""
        return {Tier.GOLD: self.gold_cash_points_per_yuan,
                Tier.PLATINUM: self.platinum_cash_points_per_yuan}.get(Tier(tier))

    def birthday_coupon_fen(self, tier: Tier) -> int:
        return getattr(self, f"birthday_coupon_{Tier(tier).value}_fen")

    def tier_points(self, tier: Tier) -> int | None:
        """Points (12 months) that qualify for ``tier``; None for tiers not reached automatically."""
        return {Tier.REGULAR: 0, Tier.SILVER: self.silver_points, Tier.GOLD: self.gold_points}.get(tier)

    def tier_spend_fen(self, tier: Tier) -> int | None:
        """Spend standard (fen, 12 months) of ``tier``; None for tiers not reached automatically."""
        return {Tier.REGULAR: 0, Tier.SILVER: self.silver_spend_fen, Tier.GOLD: self.gold_spend_fen}.get(tier)

    def single_purchase_tier(self, purchase_fen: int) -> Tier | None:
        """The tier one purchase of ``purchase_fen`` (counted spend) gives at once, if any (seed 002)."""
        for tier, threshold in ((Tier.GOLD, self.single_purchase_gold_fen),
                                (Tier.SILVER, self.single_purchase_silver_fen)):
            if threshold and purchase_fen >= threshold:
                return tier
        return None

    def card_type(self, code: str) -> CardType:
        """The card type with ``code``; InvalidField("card_type") if the programme has none."""
        for card_type in self.card_types:
            if card_type.code == code:
                return card_type
        raise InvalidField("card_type", "card_type.unknown", "No such card type in the programme.")


DEFAULT_SETTINGS = ProgrammeSettings()


def settings_in_effect(versions: Iterable[ProgrammeSettings], on: date) -> ProgrammeSettings:
    """The version with the latest ``effective_from`` on or before ``on`` (ValueError if none)."""
    candidates = [v for v in versions if v.effective_from <= on]
    if not candidates:
        raise ValueError(f"no programme settings in effect on {on.isoformat()}")
    return max(candidates, key=lambda v: v.effective_from)


# ---------------------------------------------------------------------------
# JSON form of a stored version
# ---------------------------------------------------------------------------

# Fields holding tuples of records, and the record each item becomes.
_RECORD_FIELDS: dict[str, type] = {"catalogue": RedemptionItem, "card_types": CardType}


def settings_to_json(settings: ProgrammeSettings) -> str:
    """A stable JSON text (sorted keys): dates ISO, tuples of records as lists of objects."""
    body: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.name == "effective_from":
            body[f.name] = value.isoformat()
        elif f.name in _RECORD_FIELDS:
            body[f.name] = [dataclasses.asdict(item) for item in value]
        elif isinstance(value, tuple):
            body[f.name] = list(value)
        else:
            body[f.name] = value
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _record(cls: type, raw: object, name: str) -> Any:
    if not isinstance(raw, dict):
        raise ValueError(f"{name} items must be objects")
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in raw.items() if k in known})


def settings_from_json(text: str) -> ProgrammeSettings:
    """The settings stored as ``text``; missing keys take defaults, unknown keys are ignored.

    Raises ValueError (json.JSONDecodeError is one) for text that is not a valid version.
    """
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("programme settings JSON must be an object")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(ProgrammeSettings):
        if f.name not in raw:
            continue
        value = raw[f.name]
        if f.name == "effective_from":
            if not isinstance(value, str):
                raise ValueError("effective_from must be an ISO date")
            value = date.fromisoformat(value)
        elif f.name in _RECORD_FIELDS:
            if not isinstance(value, list):
                raise ValueError(f"{f.name} must be a list")
            try:
                value = tuple(_record(_RECORD_FIELDS[f.name], item, f.name) for item in value)
            except TypeError as exc:  # a record missing a required key
                raise ValueError(f"{f.name}: {exc}") from exc
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return ProgrammeSettings(**values)
