"""Retention of lapsed members' data: a versioned setting (days after the membership ended) and
the job that proposes files past it to the leaders above them, who approve their erasure.

A lapsed member is one whose membership has ended (status "ended"); the clock runs from the
last change of the membership (when it ended) or the last purchase, whichever is later.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from .. import versions as versions_
from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..customers.service import InvalidInput
from ..membership.models import Membership
from ..policy import Action, PermissionDenied, can
from .erasure import propose_erasure
from .models import ErasureRequest, RetentionVersion

DEFAULT_DAYS = 3 * 365  # until an administrator sets one: three years after the membership ended
MAX_DAYS = 30 * 365


@dataclass(frozen=True)
class RetentionSetting:
    lapsed_member_days: int
    effective_from: date | None  # None: the default, never set


def current(s: Session, today: date | None = None) -> RetentionSetting:
    today = today or clock.now().date()
    v = versions_.in_force(s, RetentionVersion, today)
    return RetentionSetting(v.lapsed_member_days, v.effective_from) if v else RetentionSetting(DEFAULT_DAYS, None)


def history(s: Session) -> list[RetentionVersion]:
    return versions_.newest_first(s, RetentionVersion)


def set_retention(s: Session, actor: Actor, days: str, effective_from: str, note: str) -> RetentionVersion:
    """A new version of the setting, in force from a date (today or later); audited."""
    if not can(actor, Action.PRIVACY_RETENTION):
        raise PermissionDenied(Action.PRIVACY_RETENTION)
    errors = {}
    try:
        n = int((days or "").strip())
        if not 30 <= n <= MAX_DAYS:
            raise ValueError
    except ValueError:
        errors["days"] = "A whole number of days from 30 to 10950."
        n = 0
    today = clock.now().date()
    try:
        start = date.fromisoformat((effective_from or "").strip()) if (effective_from or "").strip() else today
        versions_.check_start(s, RetentionVersion, start, today, errors)
    except ValueError:
        errors["effective_from"] = "A date such as 2026-01-31."
        start = today
    note = (note or "").strip()
    if len(note) > 500:
        errors["note"] = "At most 500 characters."
    if errors:
        raise InvalidInput(errors)
    v = RetentionVersion(effective_from=start, lapsed_member_days=n, note=note,
                         created_by_id=actor.user_id, created_at=clock.now())
    versions_.add(s, v)
    audit.record(s, actor, "privacy.retention", object_type="setting", object_id="retention",
                 detail=f"lapsed_member_days={n} from {start.isoformat()}")
    return v


def past_retention(s: Session, today: date | None = None, limit: int = 1000) -> list[CustomerFile]:
    """Files of lapsed members kept longer than the setting allows, not erased, none waiting."""
    today = today or clock.now().date()
    setting = current(s, today)
    cutoff = today - timedelta(days=setting.lapsed_member_days)
    waiting = select(ErasureRequest.customer_id).where(ErasureRequest.status == "pending")
    # The later of the membership's last change (it ended) and its last purchase.
    stmt = (select(CustomerFile).join(Membership, Membership.customer_id == CustomerFile.id)
            .where(Membership.status == "ended", CustomerFile.erased_at.is_(None),
                   Membership.updated_at < datetime.combine(cutoff, time(0), tzinfo=timezone.utc),
                   (Membership.last_purchase_on.is_(None)) | (Membership.last_purchase_on < cutoff),
                   CustomerFile.id.not_in(waiting))
            .order_by(CustomerFile.created_at, CustomerFile.id).limit(limit))
    return list(s.scalars(stmt))


def propose(s: Session, today: date | None = None) -> list[ErasureRequest]:
    """`portal jobs retention`: an erasure request (origin "retention") for each file past
    retention, for a leader above it to approve. Safe to run again: one request per file."""
    setting = current(s, today)
    out = []
    for f in past_retention(s, today):
        req = propose_erasure(s, f, f"past retention: membership ended more than "
                                    f"{setting.lapsed_member_days} days ago")
        if req is not None:
            out.append(req)
    return out
