"""The sending rules (quiet hours, rate limits, retries) as versioned settings, and their pure logic.

The rules are business settings, kept like the programme's figures: each change is a new
version in force from a moment (``message_settings_version``), audited, never edited. Until
an administrator saves one, the defaults below apply (seed rule: no SMS 21:00–08:00).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from .. import clock
from .. import versions as versions_
from ..audit import service as audit
from ..accounts.actor import Actor
from .models import MessageSettingsVersion

TZ = ZoneInfo("Asia/Shanghai")
CHANNELS = ("sms", "email")
PURPOSES = ("service", "marketing")


@dataclass(frozen=True)
class MessageRules:
    quiet_start: str = "21:00"          # no SMS from (local time) ...
    quiet_end: str = "08:00"            # ... until
    sms_per_minute: int = 60            # messages a gateway gets per minute, all senders together
    email_per_minute: int = 120
    max_attempts: int = 6               # then the message is failed
    backoff_seconds: int = 60           # first retry after this, doubling each time
    backoff_max_seconds: int = 6 * 3600
    lease_seconds: int = 600            # a claim older than this (a crashed sender) is taken again
    expiry_notice_days: int = 30        # points-expiry reminder: a month before

    def __post_init__(self) -> None:
        for name in ("quiet_start", "quiet_end"):
            _parse_hhmm(getattr(self, name), name)
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("int", int) and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"{f.name} must be a whole number of at least 1")

    def per_minute(self, channel: str) -> int:
        return self.sms_per_minute if channel == "sms" else self.email_per_minute

    def quiet(self, channel: str, at: datetime) -> bool:
        """Whether ``at`` (UTC) falls in the quiet hours for this channel (SMS only)."""
        if channel != "sms":
            return False
        start, end = _parse_hhmm(self.quiet_start, "quiet_start"), _parse_hhmm(self.quiet_end, "quiet_end")
        local = at.astimezone(TZ).time()
        if start == end:
            return False
        if start < end:
            return start <= local < end
        return local >= start or local < end

    def quiet_over(self, at: datetime) -> datetime:
        """The first moment (UTC) after ``at`` when the quiet hours end."""
        end = _parse_hhmm(self.quiet_end, "quiet_end")
        local = at.astimezone(TZ)
        candidate = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        if candidate <= local:
            candidate += timedelta(days=1)
        return candidate.astimezone(at.tzinfo)

    def backoff(self, attempts: int) -> timedelta:
        """Wait before the next try after ``attempts`` failed tries (1, 2, ...): doubling, capped."""
        return timedelta(seconds=min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1)))


def _parse_hhmm(raw: str, name: str) -> time:
    try:
        h, m = raw.split(":")
        return time(int(h), int(m))
    except (ValueError, AttributeError):
        raise ValueError(f"{name} must be HH:MM") from None


DEFAULT_RULES = MessageRules()


def rules_at(s: Session, at: datetime | None = None) -> MessageRules:
    at = at or clock.now()
    row = versions_.in_force(s, MessageSettingsVersion, at)
    if row is None:
        return DEFAULT_RULES
    known = {f.name for f in fields(MessageRules)}
    return replace(DEFAULT_RULES, **{k: v for k, v in json.loads(row.body).items() if k in known})


def save_rules(s: Session, actor: Actor, rules: MessageRules, *, note: str,
               effective_from: datetime | None = None) -> MessageSettingsVersion:
    """A new version of the sending rules, in force from ``effective_from`` (default now); audited."""
    now = clock.now()
    row = MessageSettingsVersion(effective_from=effective_from or now, body=json.dumps(asdict(rules)),
                                 note=note[:500], created_by_id=actor.user_id, created_at=now)
    versions_.add(s, row)
    audit.record(s, actor, "messages.settings", object_type="message_settings", object_id=str(row.id),
                 detail=json.dumps(asdict(rules), sort_keys=True)[:1000])
    return row
