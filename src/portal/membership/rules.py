"""Pure membership-programme rules: settings, joining, cards, tiers, discounts, points, redemption windows.

Everything here is arithmetic on integers and calendar dates: money is integer fen, points are
integers, and every membership date is a calendar date in Asia/Shanghai (``programme_date``
turns a UTC moment into one). Every figure comes from a ``ProgrammeSettings`` passed in by the
caller; the dataclass defaults are the seed document's values.
"""
from __future__ import annotations

import calendar
import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum

from .. import clock
from ..customers.rules import InvalidField

try:  # the system tz database (Debian ships it); China has had no DST since 1991 anyway
    from zoneinfo import ZoneInfo

    PROGRAMME_TZ = ZoneInfo("Asia/Shanghai")
except Exception:  # pragma: no cover - no tz database on this host
    PROGRAMME_TZ = timezone(timedelta(hours=8), "CST")

__all__ = [
    "CARD_SEQ_MAX",
    "DEFAULT_SETTINGS",
    "DiscountReason",
    "InvalidPurchase",
    "MemberState",
    "PROGRAMME_TZ",
    "PricedLine",
    "PricedPurchase",
    "ProgrammeSettings",
    "PurchaseLine",
    "RedemptionItem",
    "Tier",
    "TierCause",
    "TierDecision",
    "add_months",
    "add_years",
    "birthday_applies",
    "card_expires_on",
    "card_is_active",
    "catalogue_item",
    "discount_for",
    "evaluate_tier",
    "format_card_number",
    "joining_cause",
    "membership_lapsed",
    "missed_points_claimable",
    "parse_card_number",
    "points_expire_on",
    "price_purchase",
    "programme_date",
    "programme_today",
    "redemption_open",
    "referral_points",
    "renew_card",
    "round_half_up_div",
    "settings_in_effect",
    "spend_in_window",
    "window_start",
]


# ---------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------


def programme_date(moment: datetime) -> date:
    """The Asia/Shanghai calendar date of a timezone-aware moment (naive datetimes are refused)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("programme_date needs a timezone-aware datetime")
    return moment.astimezone(PROGRAMME_TZ).date()


def programme_today() -> date:
    """Today in Asia/Shanghai according to ``portal.clock``."""
    return programme_date(clock.now())


def add_months(d: date, months: int) -> date:
    """Calendar month arithmetic, clamping to the month's last day (Jan 31 + 1 month = Feb 28/29).

    The clamp is the programme's one convention for short months: it is the same rule as
    "a Feb 29 birthday counts on Feb 28", so Feb 29 + 2 years = Feb 28.
    """
    index = d.year * 12 + (d.month - 1) + months
    year, month0 = divmod(index, 12)
    day = min(d.day, calendar.monthrange(year, month0 + 1)[1])
    return date(year, month0 + 1, day)


def add_years(d: date, years: int) -> date:
    """``add_months(d, 12 * years)``."""
    return add_months(d, 12 * years)


def window_start(today: date, months: int) -> date:
    """Exclusive start of the rolling window of ``months`` ending on ``today`` (inclusive).

    A purchase on day ``d`` is inside the window when ``window_start(today, m) < d <= today``:
    for 12 months ending 2025-03-10 that is 2024-03-11 .. 2025-03-10.
    """
    return add_months(today, -months)


def spend_in_window(purchases: Iterable[tuple[date, int]], today: date, months: int) -> int:
    """Sum of counted spend (fen) of ``(date, fen)`` purchases inside the rolling window."""
    start = window_start(today, months)
    return sum(fen for on, fen in purchases if start < on <= today)


# ---------------------------------------------------------------------------
# Tiers and settings
# ---------------------------------------------------------------------------


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


def _default_catalogue() -> tuple[RedemptionItem, ...]:
    return (
        RedemptionItem("gift-100", "¥100 gift", 1_000, 10_000),
        RedemptionItem("coupon-50", "¥50 coupon", 500, 5_000),
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
    gold_spend_fen: int = 5_000_000               # ¥50,000
    tier_window_months: int = 12
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
    catalogue: tuple[RedemptionItem, ...] = field(default_factory=_default_catalogue)

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
        for name in ("join_window_months", "tier_window_months", "lapse_after_months",
                     "card_validity_years", "points_validity_years"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        months = tuple(self.redemption_months)
        if any(isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 12 for m in months) \
                or len(set(months)) != len(months):
            raise ValueError(f"redemption_months must be distinct months 1..12, got {months!r}")
        object.__setattr__(self, "redemption_months", months)
        catalogue = tuple(self.catalogue)
        codes = [item.code for item in catalogue]
        if len(set(codes)) != len(codes):
            raise ValueError("catalogue item codes must be unique")
        for item in catalogue:
            if isinstance(item.points, bool) or not isinstance(item.points, int) or item.points < 1:
                raise ValueError(f"catalogue item {item.code!r} must cost at least 1 point")
            if isinstance(item.value_fen, bool) or not isinstance(item.value_fen, int) or item.value_fen < 0:
                raise ValueError(f"catalogue item {item.code!r} needs a value in whole fen")
        object.__setattr__(self, "catalogue", catalogue)

    def discount_per_mille(self, tier: Tier) -> int:
        return getattr(self, f"{Tier(tier).value}_discount_per_mille")

    def points_per_yuan(self, tier: Tier) -> int:
        return getattr(self, f"{Tier(tier).value}_points_per_yuan")

    def referral_points(self, tier: Tier) -> int:
        return getattr(self, f"referral_points_{Tier(tier).value}")

    def tier_points(self, tier: Tier) -> int | None:
        """Points (12 months) that qualify for ``tier``; None for tiers not reached automatically."""
        return {Tier.REGULAR: 0, Tier.SILVER: self.silver_points, Tier.GOLD: self.gold_points}.get(tier)

    def tier_spend_fen(self, tier: Tier) -> int | None:
        """Spend standard (fen, 12 months) of ``tier``; None for tiers not reached automatically."""
        return {Tier.REGULAR: 0, Tier.SILVER: self.silver_spend_fen, Tier.GOLD: self.gold_spend_fen}.get(tier)


DEFAULT_SETTINGS = ProgrammeSettings()


def settings_in_effect(versions: Iterable[ProgrammeSettings], on: date) -> ProgrammeSettings:
    """The version with the latest ``effective_from`` on or before ``on`` (ValueError if none)."""
    candidates = [v for v in versions if v.effective_from <= on]
    if not candidates:
        raise ValueError(f"no programme settings in effect on {on.isoformat()}")
    return max(candidates, key=lambda v: v.effective_from)


# ---------------------------------------------------------------------------
# Joining, cards, lapse
# ---------------------------------------------------------------------------


def joining_cause(purchase_fen: int, spend_window_fen: int,
                  settings: ProgrammeSettings = DEFAULT_SETTINGS) -> str | None:
    """Why a non-member joins after a purchase: "single_purchase", "cumulative", or None.

    Both figures are *counted* spend (``PricedPurchase.spend_counted_fen``: special-price and
    group-buy lines excluded); ``spend_window_fen`` includes this purchase and covers the rolling
    ``join_window_months`` (see ``spend_in_window``).
    """
    if purchase_fen >= settings.join_single_purchase_fen:
        return "single_purchase"
    if spend_window_fen >= settings.join_cumulative_fen:
        return "cumulative"
    return None


CARD_SEQ_MAX = 99_999
_CARD_REGION = re.compile(r"[0-9]{1,6}")
_CARD_NUMBER = re.compile(r"([0-9]{1,6})(?:\s*-\s*|\s+)?([0-9]{5})")


def format_card_number(region_code: str, seq: int) -> str:
    """("755", 243) -> "755 00243". Region code 1..6 digits, sequence 1..99999; else ValueError."""
    if not isinstance(region_code, str) or not _CARD_REGION.fullmatch(region_code):
        raise ValueError(f"region code must be 1 to 6 digits, got {region_code!r}")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= CARD_SEQ_MAX:
        raise ValueError(f"card sequence must be an integer 1..{CARD_SEQ_MAX}, got {seq!r}")
    return f"{region_code} {seq:05d}"


def parse_card_number(raw: str) -> tuple[str, int] | None:
    """"755 00243", "75500243", "755-00243" (full-width digits too) -> ("755", 243); None otherwise."""
    if not isinstance(raw, str):
        return None
    m = _CARD_NUMBER.fullmatch(unicodedata.normalize("NFKC", raw).strip())
    if not m or int(m.group(2)) < 1:
        return None
    return m.group(1), int(m.group(2))


def card_expires_on(issued_on: date, settings: ProgrammeSettings = DEFAULT_SETTINGS) -> date:
    """First day a card issued on ``issued_on`` is no longer valid (issue + validity years)."""
    return add_years(issued_on, settings.card_validity_years)


def card_is_active(expires_on: date, today: date) -> bool:
    """A card is valid up to and including the day before ``expires_on``."""
    return today < expires_on


def renew_card(expires_on: date, today: date, settings: ProgrammeSettings = DEFAULT_SETTINGS) -> date:
    """New ``expires_on`` after a renewal on ``today``.

    An expired card is reactivated for a full validity period from today; a card renewed while
    still valid is extended from its current expiry, so early renewal never loses days.
    """
    return add_years(max(expires_on, today), settings.card_validity_years)


def membership_lapsed(last_purchase: date | None, today: date,
                      settings: ProgrammeSettings = DEFAULT_SETTINGS) -> bool:
    """True from the day ``lapse_after_months`` after the last purchase (24 months by default).

    ``None`` (no purchase on record) is not lapsed: the caller passes the joining date instead
    when a member has never bought anything.
    """
    if last_purchase is None:
        return False
    return today >= add_months(last_purchase, settings.lapse_after_months)


# ---------------------------------------------------------------------------
# Tier evaluation
# ---------------------------------------------------------------------------


class TierCause(StrEnum):
    UPGRADE = "upgrade"      # a points or spend threshold was crossed
    DOWNGRADE = "downgrade"  # validity ended with spend below the tier's standard
    FLOOR = "floor"          # a leader's floor raised the tier or stopped a downgrade
    CEILING = "ceiling"      # a leader's ceiling lowered the tier or capped an upgrade


@dataclass(frozen=True)
class TierDecision:
    tier: Tier
    changed: bool
    cause: TierCause | None  # None: the rules leave the tier as it is and no bound intervened


def _earned_tier(points: int, spend_fen: int, settings: ProgrammeSettings) -> Tier:
    for tier in (Tier.GOLD, Tier.SILVER):
        if points >= settings.tier_points(tier) or spend_fen >= settings.tier_spend_fen(tier):
            return tier
    return Tier.REGULAR


def _spend_tier(spend_fen: int, settings: ProgrammeSettings) -> Tier:
    for tier in (Tier.GOLD, Tier.SILVER):
        if spend_fen >= settings.tier_spend_fen(tier):
            return tier
    return Tier.REGULAR


def evaluate_tier(current: Tier, points_12m: int, spend_12m_fen: int, *, at_validity_end: bool,
                  floor: Tier | None = None, ceiling: Tier | None = None,
                  settings: ProgrammeSettings = DEFAULT_SETTINGS) -> TierDecision:
    """The tier a member should hold now.

    * Upgrade at once to the highest automatic tier (silver, gold) whose points *or* spend
      threshold the 12-month figures reach.
    * Only when ``at_validity_end``: keep the current tier if the period's spend meets its
      standard, otherwise fall to the highest tier whose spend standard is met, but never below
      the tier the points/spend would earn right now (no downgrade-then-upgrade).
    * Platinum is a leader's decision: never reached, never left, automatically.
    * Finally clamp into [floor, ceiling]; the cause then names the bound if it changed the result.
    """
    current = Tier(current)
    for name, value in (("points_12m", points_12m), ("spend_12m_fen", spend_12m_fen)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    floor = Tier(floor) if floor is not None else None
    ceiling = Tier(ceiling) if ceiling is not None else None
    if floor is not None and ceiling is not None and floor > ceiling:
        raise ValueError(f"floor {floor} is above ceiling {ceiling}")

    if current is Tier.PLATINUM:
        automatic, cause = current, None
    else:
        earned = _earned_tier(points_12m, spend_12m_fen, settings)
        if earned > current:
            automatic, cause = earned, TierCause.UPGRADE
        elif at_validity_end and spend_12m_fen < settings.tier_spend_fen(current):
            automatic = max(_spend_tier(spend_12m_fen, settings), earned)
            cause = TierCause.DOWNGRADE if automatic < current else None
        else:
            automatic, cause = current, None

    tier = automatic
    if floor is not None and tier < floor:
        tier, cause = floor, TierCause.FLOOR
    if ceiling is not None and tier > ceiling:
        tier, cause = ceiling, TierCause.CEILING
    return TierDecision(tier=tier, changed=tier != current, cause=cause)


# ---------------------------------------------------------------------------
# Discounts and pricing
# ---------------------------------------------------------------------------


def birthday_applies(birthday: date | None, on: date) -> bool:
    """Same month and day (Asia/Shanghai date); a Feb 29 birthday counts on Feb 28 in other years."""
    if birthday is None:
        return False
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(on.year):
        return on.month == 2 and on.day == 28
    return (on.month, on.day) == (birthday.month, birthday.day)


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
    earns: bool         # counts toward points and tier spend (not special-price, not group-buy)


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


class InvalidPurchase(InvalidField):
    """A purchase was rejected; ``field`` is e.g. "lines" or "lines[2].quantity"."""


def _check_int(value: object, field_name: str, minimum: int, code: str, message: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidPurchase(field_name, code, message)


def price_purchase(lines: Sequence[PurchaseLine], member: MemberState, purchase_date: date,
                   settings: ProgrammeSettings = DEFAULT_SETTINGS) -> PricedPurchase:
    """Price a purchase: per-line discount, totals, points earned and counted spend.

    * Each discountable line pays ``round_half_up(list_fen x rate / 1000)`` fen (integers only).
      Special-price lines are never discounted (group-buy lines are unless
      ``settings.discount_group_buy`` is off).
    * Points: floor(eligible paid total / 100) x the tier's rate per yuan, where the eligible
      total sums the paid amounts of lines that are neither special-price nor group-buy. The
      flooring is on the eligible *total*, not per line, so two ¥0.60 lines earn 1 point.
    * Counted spend: the same eligible total. Frozen members earn nothing and get no discount;
      their spend counts only if ``member.frozen_spend_counts``. Non-members (``tier=None``) pay
      list price, earn nothing, and their spend counts (toward joining).
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

    rate, reason = discount_for(member, purchase_date, settings)
    priced: list[PricedLine] = []
    for line in lines:
        list_fen = line.unit_price_fen * line.quantity
        discounted = rate < 1000 and not line.special_price and (
            settings.discount_group_buy or not line.group_buy)
        paid = round_half_up_div(list_fen * rate, 1000) if discounted else list_fen
        priced.append(PricedLine(line=line, list_fen=list_fen, discount_fen=list_fen - paid,
                                 paid_fen=paid, discounted=discounted,
                                 earns=not (line.special_price or line.group_buy)))

    eligible_fen = sum(p.paid_fen for p in priced if p.earns)
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
        spend_counted_fen=eligible_fen if counts else 0,
    )


# ---------------------------------------------------------------------------
# Points: referral, expiry, redemption windows, missed points
# ---------------------------------------------------------------------------


def referral_points(referred_tier: Tier, settings: ProgrammeSettings = DEFAULT_SETTINGS) -> int:
    """Points for the referrer, by the referred member's tier (100/300/500/800 by default)."""
    return settings.referral_points(Tier(referred_tier))


def points_expire_on(earned_on: date, settings: ProgrammeSettings = DEFAULT_SETTINGS) -> date:
    """First day points earned on ``earned_on`` are no longer usable (earned + 2 years)."""
    return add_years(earned_on, settings.points_validity_years)


def redemption_open(on: date, settings: ProgrammeSettings = DEFAULT_SETTINGS) -> bool:
    """Whether redemption is allowed on ``on``: always, unless windows (months) are configured."""
    return not settings.redemption_months or on.month in settings.redemption_months


def catalogue_item(code: str, settings: ProgrammeSettings = DEFAULT_SETTINGS) -> RedemptionItem:
    """The catalogue item with ``code``; InvalidField("item") if there is none."""
    for item in settings.catalogue:
        if item.code == code:
            return item
    raise InvalidField("item", "item.unknown", "No such item in the redemption catalogue.")


def missed_points_claimable(purchase_date: date, today: date,
                            settings: ProgrammeSettings = DEFAULT_SETTINGS) -> bool:
    """Missed points may be claimed from the purchase day up to and including day 30 after it."""
    return purchase_date <= today <= purchase_date + timedelta(days=settings.missed_points_claim_days)
