"""The salesperson's and the leader's home page: reminders, requests, decisions waiting, team figures.

Every figure is one SQL statement within the policy's scope (customer_scope / member_scope, or
the leader's subtree as the approval queues use it). Birthdays are the one exception: the
birthday is encrypted, so SQL selects the scoped members whose truncated month-day index
(birthday_md_bidx, customers/search.py) is one of today's values, or who have no index yet, and
this module decrypts those candidates' birthdays alone (never the name) to keep today's; the
read is audited.

The page reads in a snapshot (``read_sales_home``) and returns the audit entries its reads call
for; the view appends and commits them, then renders: on SQLite the writer lock is held for the
appends alone, not for the page's counting (tens of milliseconds for a leader at 100k files).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import bindparam, func, literal, select
from sqlalchemy.orm import Session

from .. import clock
from ..access.models import AccessRequest
from ..accounts.actor import Actor
from ..customers.models import CustomerFile
from ..customers.search import birthday_unindexed, birthday_values
from ..customers.service import AuditNote
from ..exports.models import ExportRecord
from ..membership.models import CardAccount, Membership, MembershipApplication, PointsEntryRow
from ..membership.pricing import birthday_applies, birthday_days
from ..membership.programme import settings_on
from ..driver_sql import Prebuilt
from ..policy import Action, count_in_scope
from ..policy.scoped import Scoped, ScopeArms
from ..subject_keys import CustomerKey
from ..policy.actions import Relation
from ..policy.scope import member_scope, scope_shape, subtree_range
from ..reports.filters import month_period
from ..reports.models import ReportFlow as RF
from ..reports.models import ReportMember as RMB
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


_MEMBER_COLUMNS = dict(owner=Membership.owner_id, unit_path=Membership.unit_path, file_id=Membership.customer_id)
_EXPIRING = Scoped(Action.MEMBER_LISTS, lambda scope: (
    select(func.count(func.distinct(CardAccount.membership_id)))
    .join(Membership, Membership.id == CardAccount.membership_id)
    .where(scope.any(**_MEMBER_COLUMNS), Membership.status == "active",
           CardAccount.status != "cancelled", CardAccount.points_balance > 0,
           CardAccount.id.in_(select(PointsEntryRow.account_id).where(
               PointsEntryRow.points > 0, PointsEntryRow.expires_on > bindparam("today", required=True),
               PointsEntryRow.expires_on <= bindparam("horizon", required=True))))))


def _birthday_members(scope: ScopeArms, values: int | None):
    """Active members with today's birthday index values (``values`` of them: md0, md1, ...),
    or (None) not indexed yet; each with its customer's wrapped data key, read in the same
    statement (not one read per file)."""
    members = (select(CustomerFile.id, CustomerFile.birthday_ct, CustomerKey.customer_id, CustomerKey.key_ct)
               .join(Membership, Membership.customer_id == CustomerFile.id)
               .outerjoin(CustomerKey, CustomerKey.customer_id == CustomerFile.id)
               .where(scope.any(**_MEMBER_COLUMNS), Membership.status == "active"))
    if values is None:
        return members.where(birthday_unindexed())
    md = CustomerFile.birthday_md_bidx
    return members.where(md.in_([bindparam(f"md{i}", type_=md.type, required=True) for i in range(values)]),
                         CustomerFile.birthday_ct.is_not(None))


_BIRTHDAYS = Scoped(Action.MEMBER_LISTS, _birthday_members)
_UNINDEXED = Prebuilt(select(CustomerFile.id).where(birthday_unindexed()).limit(1))
_MINE = AccessRequest.requester_id == bindparam("me", required=True)
_PENDING = Prebuilt(select(func.count()).select_from(AccessRequest).where(_MINE, AccessRequest.status == "pending"))
_ANSWERED = Prebuilt(select(func.count()).select_from(AccessRequest).where(
    _MINE, AccessRequest.status.in_([literal("approved"), literal("denied")]), AccessRequest.decided_at >= bindparam("since", required=True)))
_LO, _HI = bindparam("lo", required=True), bindparam("hi", required=True)
_ACCESS_WAITING = Prebuilt(select(func.count()).select_from(AccessRequest).where(
    AccessRequest.status == "pending", AccessRequest.unit_path >= _LO, AccessRequest.unit_path < _HI,
    AccessRequest.requester_id != bindparam("me", required=True)))
_EXPORTS_WAITING = Prebuilt(select(func.count()).select_from(ExportRecord).where(
    ExportRecord.status == "pending", ExportRecord.unit_path >= _LO, ExportRecord.unit_path < _HI,
    ExportRecord.actor_id != bindparam("me", required=True)))
_APPLICATIONS_WAITING = Scoped(Action.CUSTOMER_LIST, lambda scope: (
    select(func.count()).select_from(MembershipApplication)
    .join(CustomerFile, CustomerFile.id == MembershipApplication.customer_id)
    .where(MembershipApplication.status == "pending", scope.any())))


# A leader's team from the reports' summaries (reports.summaries: the same rows, the same scope).
_TEAM_BY_TIER = Scoped(Action.REPORT_VIEW, lambda scope: (
    select(RMB.tier, func.coalesce(func.sum(RMB.members), 0))
    .where(RMB.status == "active", scope.any(owner=RMB.owner_id, unit_path=RMB.unit_path)).group_by(RMB.tier)))
_TEAM_JOINED = Scoped(Action.REPORT_VIEW, lambda scope: (
    select(func.coalesce(func.sum(RF.n), 0)).where(
        RF.kind == "join", RF.month >= bindparam("first", required=True), RF.month <= bindparam("last", required=True),
        scope.any(owner=RF.owner_id, unit_path=RF.unit_path))))


def _one(conn, stmt: Prebuilt, params: dict) -> int:
    rows = stmt.all(conn, params)
    return int(rows[0][0] or 0) if rows else 0


def _count(s: Session, stmt) -> int:
    return s.scalar(stmt) or 0


def reminders(s: Session, vault: Vault, actor: Actor, today: date) -> Reminders:
    """read_reminders() with its audit entry recorded in the caller's (write) transaction."""
    found, note = read_reminders(s, vault, actor, today)
    if note is not None:
        note.record(s, actor)
    return found


def read_reminders(s: Session, vault: Vault, actor: Actor, today: date) -> tuple[Reminders, AuditNote | None]:
    """Birthdays today and points about to expire, over the members the actor's lists cover, and
    the audit entry of the birthdays read (None when none was read), which the caller appends and
    commits before showing the figures. Reads only."""
    days = settings_on(s, today).expiry_warning_days
    conn = s.connection()
    expiring = _EXPIRING.scalar(conn, actor, {"today": today, "horizon": today + timedelta(days=days)}) or 0
    # Today's index values (about 1/128 of all files each, ix_customer_birthday_md), then their
    # memberships by customer id. Files not indexed yet (none once `portal customers reindex`
    # ran: a probe of the small ix_customer_birthday_unindexed says so) are candidates too.
    values = birthday_values(vault, birthday_days(today))
    rows = _BIRTHDAYS.all(conn, actor, {f"md{i}": v for i, v in enumerate(values)}, variant=(len(values),))
    if _UNINDEXED.all(conn):
        rows += _BIRTHDAYS.all(conn, actor, variant=(None,))
    note = (AuditNote("home.view", object_type="list", object_id="birthdays_today", fields=("birthday",),
                      detail=f"{len(rows)} birthdays read to count today's") if rows else None)
    today_count = 0
    for fid, blob, key_row, key_ct in rows:
        try:
            (raw,) = vault.open_row("customer_file", fid, ("birthday",), (blob,), key_read=key_row is not None,
                                    wrapped_key=key_ct)
            born = date.fromisoformat(raw) if raw else None
        except (VaultError, ValueError):
            continue
        today_count += birthday_applies(born, today)
    return Reminders(birthdays_today=today_count, points_expiring=expiring, expiry_days=days), note


def read_sales_home(s: Session, vault: Vault, actor: Actor, today: date) -> tuple[SalesHome, list[AuditNote]]:
    """The figures of a salesperson's or leader's home page, and the audit entries their reads
    call for (to append and commit before showing them). Reads only: run it in a snapshot."""
    now = clock.now()
    conn = s.connection()
    found, note = read_reminders(s, vault, actor, today)
    home = SalesHome(
        reminders=found,
        requests_pending=_one(conn, _PENDING, {"me": actor.user_id}),
        requests_answered=_one(conn, _ANSWERED, {"me": actor.user_id, "since": now - timedelta(days=ANSWERED_DAYS)}),
        files=count_in_scope(s, actor, Action.CUSTOMER_LIST),
    )
    from ..credit.board import overdue_count  # sales on credit
    home.orders_overdue = overdue_count(s, actor, today)
    if actor.role == "leader" and actor.unit_path:
        _leader_figures(s, actor, home, today, now)
    return home, [note] if note is not None else []


def _leader_figures(s: Session, actor: Actor, home: SalesHome, today: date, now: datetime) -> None:
    lo, hi = subtree_range(actor.unit_path)
    conn = s.connection()
    home.is_leader = True
    # The same rows as the approval queues (access.approval_queue, exports.exports_to_decide).
    waiting = {"lo": lo, "hi": hi, "me": actor.user_id}
    home.access_waiting = _one(conn, _ACCESS_WAITING, waiting)
    home.exports_waiting = _one(conn, _EXPORTS_WAITING, waiting)
    home.applications_waiting = int(_APPLICATIONS_WAITING.scalar(conn, actor) or 0)
    members_by_tier, new_members = _team_members(s, actor, today)
    home.members_by_tier = {t: members_by_tier.get(t, 0) for t in TIERS}
    home.new_members_this_month = new_members


def _team_members(s: Session, actor: Actor, today: date) -> tuple[dict[str, int], int]:
    """A leader's team's active members by tier and how many joined this month: the reports'
    figures (the leader's own clients and the units led, Action.REPORT_VIEW), read from the
    summaries kept in each membership's transaction (report_member, report_flow): a few rows per
    salesperson and tier instead of every member of the subtree (tens of milliseconds at 100k
    files, growing with the team). The live count answers when the summaries cannot."""
    shape = scope_shape(actor, Action.REPORT_VIEW)
    if shape is None or Relation.GRANTED not in shape[0]:  # the summaries are keyed by owner and unit
        conn = s.connection()
        months = month_period(today.year, today.month).months()
        by_tier = {tier: int(n) for tier, n in _TEAM_BY_TIER.all(conn, actor)}
        return by_tier, int(_TEAM_JOINED.scalar(conn, actor, {"first": months[0], "last": months[-1]}) or 0)
    scope = member_scope(actor, Action.REPORT_VIEW)
    by_tier = dict(s.execute(select(Membership.tier, func.count()).where(scope, Membership.status == "active")
                             .group_by(Membership.tier)).all())
    return by_tier, _count(s, select(func.count()).select_from(Membership).where(
        scope, Membership.joined_on >= today.replace(day=1)))


def utc_midnight(day: date, tz) -> datetime:
    """The UTC instant at which `day` begins in the time zone `tz` (a ZoneInfo)."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(timezone.utc)
