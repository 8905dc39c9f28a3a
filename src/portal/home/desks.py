"""The home pages of the roles that hold no customer files: customer service, auditor, admin.

Counts only, each one SQL statement; the auditor's and the admin's pages carry no personal
data at all (no names, numbers or file numbers), customer service's only counts and times.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..accounts.models import User
from ..accounts.setup_models import PasswordHelp
from ..audit import alerts
from ..audit.models import AuditCheckpoint, AuditEvent, AuditHead
from ..customers.models import CustomerFile
from ..membership.models import MemberEvent, MembershipApplication, Purchase
from ..membership.programme import settings_on
from ..org.models import OrgUnit
from ..driver_sql import Prebuilt
from ..policy import Action
from ..policy.scoped import Scoped

RECENT_LOSS_DAYS = 7


def _count(s: Session, stmt) -> int:
    return s.scalar(stmt) or 0


@dataclass
class ServiceHome:
    applications_waiting: int
    claimable_sales: int  # sales without a card, still within the claim period
    claim_days: int
    losses_recent: int  # cards reported lost in the last RECENT_LOSS_DAYS days
    loss_days: int = RECENT_LOSS_DAYS


# Customer service's figures, prebuilt (the applications per scope shape: policy.scoped) and run
# on the driver: each built through the ORM per request cost ten times its SQL.
_WAITING = Scoped(Action.MEMBER_REVIEW, lambda scope: (
    select(func.count()).select_from(MembershipApplication)
    .join(CustomerFile, CustomerFile.id == MembershipApplication.customer_id)
    .where(MembershipApplication.status == "pending", scope.any(file_id=MembershipApplication.customer_id))))
_CLAIMABLE = Prebuilt(select(func.count()).select_from(Purchase).where(
    Purchase.customer_id.is_(None), Purchase.claimed_at.is_(None), Purchase.status == "complete",
    Purchase.purchased_on >= bindparam("since", required=True)))
_LOSSES = Prebuilt(select(func.count()).select_from(MemberEvent).where(
    MemberEvent.kind == "loss", MemberEvent.at >= bindparam("since", required=True)))


def service_home(s: Session, actor: Actor, today: date) -> ServiceHome:
    settings = settings_on(s, today)
    conn = s.connection()
    claim_from = today - timedelta(days=settings.missed_points_claim_days)
    ((claimable,),) = _CLAIMABLE.all(conn, {"since": claim_from})
    ((losses,),) = _LOSSES.all(conn, {"since": clock.now() - timedelta(days=RECENT_LOSS_DAYS)})
    return ServiceHome(applications_waiting=int(_WAITING.scalar(conn, actor) or 0), claimable_sales=claimable,
                       claim_days=settings.missed_points_claim_days, losses_recent=losses)


@dataclass
class AuditorHome:
    alerts: int
    alert_days: int
    denied_today: int
    chain_entries: int  # the head's sequence number
    chain_head: str  # the head's hash (first 16 hex digits shown)
    chain_consistent: bool  # the head matches the newest entry (a cheap check, not a full verify)
    checkpoint_at: datetime | None
    checkpoint_age: timedelta | None
    checkpoint_seq: int | None
    unsigned_entries: int  # entries after the newest checkpoint


def auditor_home(s: Session, thresholds: alerts.Thresholds, day_start: datetime, *, alert_days: int = 1) -> AuditorHome:
    head = s.get(AuditHead, 1)
    seq, hash_ = (head.seq, head.hash) if head else (0, "0" * 64)
    last = s.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    consistent = (last is None and seq == 0) or (last is not None and tuple(last) == (seq, hash_))
    cp = s.execute(select(AuditCheckpoint.seq, AuditCheckpoint.at)
                   .order_by(AuditCheckpoint.seq.desc()).limit(1)).first()
    now = clock.now()
    return AuditorHome(
        alerts=len(alerts.compute(s, thresholds, days=alert_days)), alert_days=alert_days,
        denied_today=_count(s, select(func.count()).select_from(AuditEvent).where(
            AuditEvent.outcome == "denied", AuditEvent.at >= day_start)),
        chain_entries=seq, chain_head=hash_, chain_consistent=consistent,
        checkpoint_at=cp.at if cp else None, checkpoint_age=(now - cp.at) if cp else None,
        checkpoint_seq=cp.seq if cp else None, unsigned_entries=seq - (cp.seq if cp else 0))


@dataclass
class AdminHome:
    users_by_role: dict[str, int] = field(default_factory=dict)
    disabled_users: int = 0
    units: int = 0
    waiting_for_setup: int | None = None  # no password chosen yet, or waiting for a leader's approval
    password_help: int = 0                # "forgot password" requests not yet answered


def admin_home(s: Session) -> AdminHome:
    return AdminHome(
        users_by_role=dict(s.execute(select(User.role, func.count()).where(User.is_active.is_(True))
                                     .group_by(User.role).order_by(User.role)).all()),
        disabled_users=_count(s, select(func.count()).select_from(User).where(User.is_active.is_(False))),
        units=_count(s, select(func.count()).select_from(OrgUnit)),
        waiting_for_setup=_count(s, select(func.count()).select_from(User).where(
            User.is_active.is_(True), (User.password_hash == "") | User.awaiting_approval.is_(True))),
        password_help=_count(s, select(func.count()).select_from(PasswordHelp)
                             .where(PasswordHelp.resolved_at.is_(None))),
    )
