"""Pure membership-programme rules: dates, joining, cards, lapse, tier evaluation, points helpers.

Everything here is arithmetic on integers and calendar dates: money is integer fen, points are
integers, and every membership date is a calendar date in Asia/Shanghai (``programme_date``
turns a UTC moment into one). Every figure comes from a ``ProgrammeSettings`` passed in by the
caller; the dataclass defaults are the seed document's values.

The settings themselves live in ``settings.py`` and pricing in ``pricing.py``; this module
re-exports their names so ``from portal.membership.rules import X`` keeps working.
"""
from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum

from .. import clock
from ..customers.rules import InvalidField
from .pricing import (
    DiscountReason,
    InvalidPurchase,
    MemberState,
    PricedLine,
    PricedPurchase,
    PurchaseLine,
    birthday_applies,
    discount_for,
    price_purchase,
    round_half_up_div,
)
from .settings import (
    DEFAULT_SETTINGS,
    CardType,
    ProgrammeSettings,
    RedemptionItem,
    Tier,
    settings_in_effect,
)

try:  # the system tz database (Debian ships it); China has had no DST since 1991 anyway
    from zoneinfo import ZoneInfo

    PROGRAMME_TZ = ZoneInfo("Asia/Shanghai")
except Exception:  # pragma: no cover - no tz database on this host
    PROGRAMME_TZ = timezone(timedelta(hours=8), "CST")

__all__ = [
    "CARD_SEQ_MAX",
    "CardType",
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
# Joining, cards, lapse
# ---------------------------------------------------------------------------


def joining_cause(purchase_fen: int, spend_window_fen: int,
                  settings: ProgrammeSettings = DEFAULT_SETTINGS) -> str | None:
    """Why a non-member joins after a purchase: "single_purchase", "cumulative", or None.

    Both figures are *counted* spend (``PricedPurchase.spend_counted_fen``: special-price lines
    excluded; group-buy lines included unless the setting says otherwise); ``spend_window_fen`` includes this purchase and covers the rolling
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


def _earned_tier(points: int, spend_fen: int, settings: ProgrammeSettings, purchase_fen: int = 0) -> Tier:
    earned = Tier.REGULAR
    for tier in (Tier.GOLD, Tier.SILVER):
        if points >= settings.tier_points(tier) or spend_fen >= settings.tier_spend_fen(tier):
            earned = tier
            break
    by_purchase = settings.single_purchase_tier(purchase_fen) if purchase_fen else None
    return max(earned, by_purchase) if by_purchase is not None else earned


def _spend_tier(spend_fen: int, settings: ProgrammeSettings) -> Tier:
    for tier in (Tier.GOLD, Tier.SILVER):
        if spend_fen >= settings.tier_spend_fen(tier):
            return tier
    return Tier.REGULAR


def evaluate_tier(current: Tier, points_12m: int, spend_12m_fen: int, *, at_validity_end: bool,
                  floor: Tier | None = None, ceiling: Tier | None = None,
                  settings: ProgrammeSettings = DEFAULT_SETTINGS, period_spend_fen: int | None = None,
                  purchase_fen: int = 0) -> TierDecision:
    """The tier a member should hold now.

    * Upgrade at once to the highest automatic tier (silver, gold) whose points *or* spend
      threshold the figures reach (``points_12m``: the tier points as the settings count them;
      ``spend_12m_fen``: the rolling window's spend), or that one purchase of ``purchase_fen``
      gives when single-purchase tiers are set (seed 002).
    * Only when ``at_validity_end``: keep the current tier if the validity period's spend
      (``period_spend_fen``; the window's when not given) meets its standard, otherwise fall to the
      highest tier whose spend standard is met, but never below the tier the points/spend would
      earn right now (no downgrade-then-upgrade). Seed 002: "当VIP客户在两年内未达到相应消费标准时,
      将根据实际情况进行降级处理".
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

    review_fen = spend_12m_fen if period_spend_fen is None else period_spend_fen
    if current is Tier.PLATINUM:
        automatic, cause = current, None
    else:
        earned = _earned_tier(points_12m, spend_12m_fen, settings, purchase_fen)
        if earned > current:
            automatic, cause = earned, TierCause.UPGRADE
        elif at_validity_end and review_fen < settings.tier_spend_fen(current):
            automatic = max(_spend_tier(review_fen, settings), earned)
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
