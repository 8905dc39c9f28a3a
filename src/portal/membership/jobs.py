"""The daily job (`portal jobs daily`): expire points, end lapsed memberships, re-evaluate tiers.

It visits only the members with something to do since its last run to the end (daily_due.py: found
in SQL; every active member on the first run, after new programme settings, or with ``full``).
Members are handled in small batches, each one short write transaction (SQLite: at most ``BATCH``
members or about ``BATCH_SECONDS``; PostgreSQL: one member), so the job holds no lock for long, can be interrupted and rerun (every
step is idempotent), and one bad record does not stop the rest: a batch that fails is rolled back
and its members retried one per transaction. Then the class window summary is rebuilt as of the
day in chunks (reports/class_build.py).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Callable

from sqlalchemy import select

from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..db import Database
from . import daily_due
from .members import ENDED, event, primary_account, reevaluate, tier_history
from .models import CardAccount, MemberEvent, Membership
from .points import expire_account
from .programme import settings_on
from .rules import membership_lapsed, programme_today

log = logging.getLogger(__name__)

# SQLite: members per write transaction at most, and no more once a batch has taken BATCH_SECONDS
# (one writer at a time: fewer, short commits). PostgreSQL: one member per transaction, as the
# till locks (card account, summary rows, then the audit head): a batch would take the audit head
# for one member and then a summary row for the next, the till those two the other way round.
BATCH = 100
BATCH_SECONDS = 0.1
YIELD_SECONDS = 0.003


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
    full: str | None = None     # why every active member was visited (None: only those due)
    recorded: bool = False      # the run went to the end and the next one starts from its day
    longest_batch_s: float = 0.0     # the longest write transaction of the members' batches ...
    longest_class_s: float = 0.0     # ... and of the class window summary's chunks
    follow_ups_purged: int = 0       # purchase follow-ups older than the visits due's window

    def add(self, other: "DailyReport") -> None:
        for name in ("members", "points_expired", "accounts_expired", "upgrades", "downgrades", "ended"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


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


def _one_batch(db: Database, actor: Actor, ids: list[int], today: date, report: DailyReport) -> int:
    """Members from the head of ``ids`` in one write transaction; how many were taken. On any
    error the batch rolls back and its members are retried one per transaction."""
    got = DailyReport(day=today)
    taken = 0
    t0 = time.perf_counter()
    try:
        with db.write() as s:
            for membership_id in ids[:BATCH if db.sqlite else 1]:
                taken += 1
                daily_for_member(s, actor, membership_id, today, got)
                if time.perf_counter() - t0 >= BATCH_SECONDS:
                    break
    except Exception:
        taken = max(taken, 1)  # the transaction itself may have failed before the first member
        for membership_id in ids[:taken]:
            one = DailyReport(day=today)
            try:
                with db.write() as s:
                    daily_for_member(s, actor, membership_id, today, one)
            except Exception as exc:  # keep going; the next run retries this member
                log.exception("daily job failed for membership %s", membership_id)
                report.failures.append(f"membership {membership_id}: {type(exc).__name__}")
                continue
            report.add(one)
        return taken
    report.longest_batch_s = max(report.longest_batch_s, time.perf_counter() - t0)
    report.add(got)
    return taken


def run_daily(db: Database, today: date | None = None, *, full: bool = False,
              started: Callable[[int], None] | None = None, done: Callable[[int], None] | None = None) -> DailyReport:
    """The members due today (or every active member with ``full``), in small batches. ``started(n)``
    is told how many members there are, ``done(k)`` after each batch (a command's progress bar)."""
    today = today or programme_today()
    actor = Actor.system("jobs.daily")
    report = DailyReport(day=today)
    with db.read() as s:
        plan = daily_due.plan(s, today, full=full)
    report.full = plan.full
    ids = plan.ids
    if started is not None:
        started(len(ids))
    while ids:
        n = _one_batch(db, actor, ids, today, report)
        ids = ids[n:]
        if done is not None:
            done(n)
        if db.sqlite:  # the writer lock is not fair: let a waiting page take it before the next batch
            time.sleep(YIELD_SECONDS)
    # Classes A-D and RFM slide with the day: their summary is rebuilt as of today (reports/class_build.py).
    from ..reports import class_build  # reports read membership: imported at call time
    try:
        report.longest_class_s = class_build.build_in_steps(db, today).longest_s
    except Exception as exc:  # the classes page reads the facts until the next run
        log.exception("daily job: the class window summary failed")
        report.failures.append(f"class window: {type(exc).__name__}")
    from ..service import follow_ups  # the visits due's table: imported at call time
    try:
        report.follow_ups_purged = follow_ups.purge_old(db, today)
    except Exception as exc:  # left for the next run: the visits due never read them
        log.exception("daily job: purging old purchase follow-ups failed")
        report.failures.append(f"follow-ups: {type(exc).__name__}")
    if not any(f.startswith("membership ") for f in report.failures):
        with db.write() as s:
            report.recorded = daily_due.finish(s, plan)
    return report
