"""The salesperson's and the leader's home page: reminders, requests, decisions waiting, team figures.

Every figure is one SQL statement within the policy's scope (customer_scope / member_scope, or
the leader's subtree as the approval queues use it). Birthdays are the one exception: the
birthday is encrypted, so SQL selects the scoped members whose truncated month-day index
(birthday_md_bidx, customers/search.py) is one of today's values, or who have no index yet, and
this module decrypts those candidates' birthdays alone (never the name) to keep today's; the
read is audited.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import clock
from ..access.models import AccessRequest
from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..customers.search import birthday_unindexed, birthday_values
from ..exports.models import ExportRecord
from ..membership.models import CardAccount, Membership, MembershipApplication, PointsEntryRow
from ..membership.pricing import birthday_applies, birthday_days
from ..membership.programme import settings_on
from ..policy import Action, customer_scope
from ..policy.scope import member_scope, subtree_range
from ..vault import Vault, VaultError

TIERS = ("regular", "silver", "gold", "platinum")
ANSWERED_DAYS = 7  # answered access requests stay on the home page for a week


@dataclass
class Reminders:
    birthdays_today: int = 0
    points_expiring: int = 0  # members whose points (some of them) expire within the warning days
    expiry_days: int = 30


@dataclass
class SalesHome:
    reminders: Reminders
    requests_pending: int = 0
    requests_answered: int = 0  # decided within ANSWERED_DAYS
    files: int = 0
    orders_overdue: int = 0  # orders on terms past their due date (own customers; a leader's units)
    # Leaders only
    is_leader: bool = False
    access_waiting: int = 0
    exports_waiting: int = 0
    applications_waiting: int = 0  # the team's applications waiting at customer service
    members_by_tier: dict[str, int] = field(default_factory=dict)
    new_members_this_month: int = 0


def _count(s: Session, stmt) -> int:
    return s.scalar(stmt) or 0


def reminders(s: Session, vault: Vault, actor: Actor, today: date) -> Reminders:
    """Birthdays today and points about to expire, over the members the actor's lists cover."""
    days = settings_on(s, today).expiry_warning_days
    horizon = today + timedelta(days=days)
    expiring = _count(s, select(func.count(func.distinct(CardAccount.membership_id)))
                      .join(Membership, Membership.id == CardAccount.membership_id)
                      .where(member_scope(actor, Action.MEMBER_LISTS), Membership.status == "active",
                             CardAccount.status != "cancelled", CardAccount.points_balance > 0,
                             CardAccount.id.in_(select(PointsEntryRow.account_id).where(
                                 PointsEntryRow.points > 0, PointsEntryRow.expires_on > today,
                                 PointsEntryRow.expires_on <= horizon))))
    members = (select(CustomerFile.id, CustomerFile.birthday_ct)
               .join(Membership, Membership.customer_id == CustomerFile.id)
               .where(member_scope(actor, Action.MEMBER_LISTS), Membership.status == "active"))
    # Today's index values (about 1/128 of all files each, ix_customer_birthday_md), then their
    # memberships by customer id. Files not indexed yet (none once `portal customers reindex`
    # ran: a probe of the small ix_customer_birthday_unindexed says so) are candidates too.
    rows = s.execute(members.where(CustomerFile.birthday_md_bidx.in_(birthday_values(vault, birthday_days(today))),
                                   CustomerFile.birthday_ct.is_not(None))).all()
    if s.scalar(select(CustomerFile.id).where(birthday_unindexed()).limit(1)) is not None:
        rows += s.execute(members.where(birthday_unindexed())).all()
    if rows:
        audit.record(s, actor, "home.view", object_type="list", object_id="birthdays_today",
                     fields=["birthday"], detail=f"{len(rows)} birthdays read to count today's")
    today_count = 0
    for fid, blob in rows:
        try:
            raw = vault.decrypt(blob, table="customer_file", column="birthday", row_id=fid)
            born = date.fromisoformat(raw) if raw else None
        except (VaultError, ValueError):
            continue
        today_count += birthday_applies(born, today)
    return Reminders(birthdays_today=today_count, points_expiring=expiring, expiry_days=days)


def sales_home(s: Session, vault: Vault, actor: Actor, today: date) -> SalesHome:
    now = clock.now()
    mine = AccessRequest.requester_id == actor.user_id
    home = SalesHome(
        reminders=reminders(s, vault, actor, today),
        requests_pending=_count(s, select(func.count()).select_from(AccessRequest)
                                .where(mine, AccessRequest.status == "pending")),
        requests_answered=_count(s, select(func.count()).select_from(AccessRequest).where(
            mine, AccessRequest.status.in_(("approved", "denied")),
            AccessRequest.decided_at >= now - timedelta(days=ANSWERED_DAYS))),
        files=_count(s, select(func.count()).select_from(CustomerFile)
                     .where(customer_scope(actor, Action.CUSTOMER_LIST))),
    )
    from ..credit.board import overdue_count  # sales on credit
    home.orders_overdue = overdue_count(s, actor, today)
    if actor.role == "leader" and actor.unit_path:
        _leader_figures(s, actor, home, today, now)
    return home


def _leader_figures(s: Session, actor: Actor, home: SalesHome, today: date, now: datetime) -> None:
    lo, hi = subtree_range(actor.unit_path)
    home.is_leader = True
    # The same rows as the approval queues (access.approval_queue, exports.exports_to_decide).
    home.access_waiting = _count(s, select(func.count()).select_from(AccessRequest).where(
        AccessRequest.status == "pending", AccessRequest.unit_path >= lo, AccessRequest.unit_path < hi,
        AccessRequest.requester_id != actor.user_id))
    home.exports_waiting = _count(s, select(func.count()).select_from(ExportRecord).where(
        ExportRecord.status == "pending", ExportRecord.unit_path >= lo, ExportRecord.unit_path < hi,
        ExportRecord.actor_id != actor.user_id))
    home.applications_waiting = _count(s, select(func.count()).select_from(MembershipApplication)
                                       .join(CustomerFile, CustomerFile.id == MembershipApplication.customer_id)
                                       .where(MembershipApplication.status == "pending",
                                              customer_scope(actor, Action.CUSTOMER_LIST)))
    scope = member_scope(actor, Action.MEMBER_VIEW)
    by_tier = dict(s.execute(select(Membership.tier, func.count()).where(scope, Membership.status == "active")
                             .group_by(Membership.tier)).all())
    home.members_by_tier = {t: by_tier.get(t, 0) for t in TIERS}
    home.new_members_this_month = _count(s, select(func.count()).select_from(Membership).where(
        scope, Membership.joined_on >= today.replace(day=1)))


def utc_midnight(day: date, tz) -> datetime:
    """The UTC instant at which `day` begins in the time zone `tz` (a ZoneInfo)."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(timezone.utc)
