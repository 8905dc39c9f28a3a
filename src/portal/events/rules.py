"""The pure rules of member events: kinds, tiers invited, registration windows, check-in days.

Seed 001 (五、会员活动) names the kinds: new product launches, member-only promotions, theme
experiences, a monthly birthday party and member travel. Silver and above register first: their
window opens ``event_priority_days`` (a programme setting) before everyone else's.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from ..membership.rules import PROGRAMME_TZ
from ..membership.settings import Tier

KINDS = ("launch", "promotion", "experience", "birthday_party", "travel")
PRIORITY_FROM = Tier.SILVER          # silver and above register early
STATUSES = ("registered", "waitlisted", "cancelled", "attended")
MIN_GROUP = 3                        # sales figures of fewer buyers than this are not shown
SALES_DAYS = 30                      # the summary counts attendees' sales this many days after


class EventRuleError(ValueError):
    """A rule refused the step; ``field`` names the form field the message belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_tiers(values: list[str] | tuple[str, ...]) -> tuple[Tier, ...]:
    """The tiers invited, in rank order; EventRuleError for none or an unknown one."""
    try:
        tiers = {Tier(v) for v in values if v}
    except ValueError:
        raise EventRuleError("tiers", "Choose the tiers invited.") from None
    if not tiers:
        raise EventRuleError("tiers", "Choose the tiers invited.")
    return tuple(sorted(tiers))


def tiers_text(tiers: tuple[Tier, ...]) -> str:
    return ",".join(t.value for t in tiers)


def tiers_of(text: str) -> tuple[Tier, ...]:
    return tuple(Tier(t) for t in text.split(",") if t)


def has_priority(tier: str) -> bool:
    return Tier(tier) >= PRIORITY_FROM


def priority_opens(opens_at: datetime, priority_days: int) -> datetime:
    return opens_at - timedelta(days=priority_days)


def window_opens_for(tier: str, opens_at: datetime, priority_opens_at: datetime) -> datetime:
    """When a member of ``tier`` may first be registered."""
    return priority_opens_at if has_priority(tier) else opens_at


def check_registration_open(tier: str, now: datetime, *, opens_at: datetime, priority_opens_at: datetime,
                            ends_at: datetime) -> None:
    if now >= ends_at:
        raise EventRuleError("card", "This event is over.")
    if now < window_opens_for(tier, opens_at, priority_opens_at):
        raise EventRuleError("card", "Registration is not open yet for this member's tier.")


def local_day(moment: datetime) -> date:
    return moment.astimezone(PROGRAMME_TZ).date()


def check_in_open(now: datetime, starts_at: datetime, ends_at: datetime) -> bool:
    """Check-in runs from the start of the event's first day to the end of its last (Shanghai)."""
    first = datetime.combine(local_day(starts_at), time.min, PROGRAMME_TZ)
    after = datetime.combine(local_day(ends_at) + timedelta(days=1), time.min, PROGRAMME_TZ)
    return first <= now < after


def sales_window(starts_at: datetime) -> tuple[date, date]:
    """The days whose sales the summary counts: the event's day and the 30 days after it."""
    day = local_day(starts_at)
    return day, day + timedelta(days=SALES_DAYS)
