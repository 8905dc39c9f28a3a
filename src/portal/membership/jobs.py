"""The daily job (`portal jobs daily`): expire points, end lapsed memberships, re-evaluate tiers.

Each member is handled in its own short transaction, so the job holds no lock for long, can be
interrupted and rerun (every step is idempotent), and one bad record does not stop the rest.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Callable

from sqlalchemy import select

from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..db import Database
from .members import ENDED, event, primary_account, reevaluate, tier_history
from .models import CardAccount, MemberEvent, Membership
from .points import expire_account
from .programme import settings_on
from .rules import membership_lapsed, programme_today

log = logging.getLogger(__name__)


@dataclass
class DailyReport:
    day: date
    members: int = 0
    points_expired: int = 0
    accounts_expired: int = 0
    upgrades: int = 0
    downgrades: int = 0
    ended: int = 0
    failures: list[str] = field(default_factory=list)


def _validity_reviewed(s, m: Membership, account: CardAccount) -> bool:
    return s.scalar(select(MemberEvent.id).where(
        MemberEvent.membership_id == m.id, MemberEvent.kind == "validity_review",
        MemberEvent.to_value == account.expires_on.isoformat())) is not None


def daily_for_member(s, actor: Actor, membership_id: int, today: date, report: DailyReport) -> None:
    # Lock in the till's order, card accounts then the membership: a purchase locks its account,
    # then references and updates the membership; the opposite order deadlocks with it.
    accounts = list(s.scalars(select(CardAccount).where(CardAccount.membership_id == membership_id)
                              .order_by(CardAccount.id).with_for_update()))
    m = s.get(Membership, membership_id, with_for_update=True)
    if m is None or m.status != "active":
        return
    report.members += 1
    for account in accounts:
        expired = expire_account(s, actor, account, today)
        if expired:
            report.points_expired += expired
            report.accounts_expired += 1
    settings = settings_on(s, today)
    if membership_lapsed(m.last_purchase_on or m.joined_on, today, settings):
        m.status = "ended"
        from ..reports import rollup, summaries  # reports read membership: imported at call time
        summaries.member_restated(s, m.id, rollup.key_of(m), "active", rollup.key_of(m), "ended")
        event(s, m, actor, "ended", from_value=m.tier, cause="no_purchase",
              reason=f"no purchase for {settings.lapse_after_months} months")
        tier_history(s, m, today, m.tier, ENDED, "no_purchase")
        from ..reports import class_window  # reports read membership: imported at call time
        class_window.refresh(s, m.id)
        f = s.get(CustomerFile, m.customer_id)
        audit.record(s, actor, "member.end", object_type="customer", object_id=f.file_no,
                     detail=f"no purchase since {(m.last_purchase_on or m.joined_on).isoformat()}")
        report.ended += 1
        return
    before = m.tier
    account = primary_account(s, m)
    at_end = account is not None and account.expires_on <= today and not _validity_reviewed(s, m, account)
    changed = reevaluate(s, actor, m, today, at_validity_end=at_end)
    if at_end:
        event(s, m, actor, "validity_review", to_value=account.expires_on.isoformat(),
              cause="validity_end", reason=f"tier {before} -> {m.tier}")
    if changed is not None:
        from .rules import Tier
        if Tier(changed) > Tier(before):
            report.upgrades += 1
        else:
            report.downgrades += 1


def run_daily(db: Database, today: date | None = None, *,
              started: Callable[[int], None] | None = None, done: Callable[[int], None] | None = None) -> DailyReport:
    """Every active member once, each in its own transaction. `started(n)` is told how many
    members there are, `done(1)` after each (a command's progress bar)."""
    today = today or programme_today()
    actor = Actor.system("jobs.daily")
    report = DailyReport(day=today)
    with db.read() as s:
        ids = list(s.scalars(select(Membership.id).where(Membership.status == "active").order_by(Membership.id)))
    if started is not None:
        started(len(ids))
    for membership_id in ids:
        try:
            with db.write() as s:
                daily_for_member(s, actor, membership_id, today, report)
        except Exception as exc:  # keep going; the next run retries this member
            log.exception("daily job failed for membership %s", membership_id)
            report.failures.append(f"membership {membership_id}: {type(exc).__name__}")
        if done is not None:
            done(1)
    # Classes A-D and RFM slide with the day: their summary is rebuilt as of today (reports/class_window.py).
    from ..reports import class_window  # reports read membership: imported at call time
    try:
        with db.write() as s:
            class_window.rebuild(s, today)
    except Exception as exc:  # the classes page reads the facts until the next run
        log.exception("daily job: the class window summary failed")
        report.failures.append(f"class window: {type(exc).__name__}")
    return report
