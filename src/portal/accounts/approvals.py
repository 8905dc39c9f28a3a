"""Two people for every grant of reach over customer files: an administrator asks, a leader
above the target unit approves (never the one who asked, never the user concerned).

A "privileged" role is one the policy lets see customer files (today salesperson and leader;
any later role with that power counts by itself). Creating such an account, raising a user's
reach (a role that sees more, a unit outside their current subtree) and resetting such an
account's password wait here; until approved, the account cannot sign in / the change does
not take effect. Every request and approval is audited and told to the auditors.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, aliased

from .. import clock
from ..audit import service as audit
from ..inbox.service import notify
from ..org.models import OrgUnit
from ..org.service import unit_by_code
from ..policy import Action, PermissionDenied, can, may_perform
from ..policy.enforcer import allowed_relations
from . import setup
from .actor import Actor
from .models import Role, User, WebSession
from .service import AccountError, add_user, leaders_above
from .setup_models import AccountChange

# What "seeing files" means: any of these on any relation.
FILE_ACTIONS = (Action.CUSTOMER_VIEW, Action.CUSTOMER_LIST, Action.CUSTOMER_EXPORT)
# Audit actions the auditors are alerted to (audit/alerts.py reads the same names).
REQUESTED, APPROVED, DENIED, DIRECT = ("user.reach_request", "user.reach_approve",
                                       "user.reach_deny", "user.reach_direct")
REASON_MIN = 5


class ApprovalError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def reach(role: str) -> set[tuple[str, str]]:
    """The (action, relation) pairs on customer files the role has, from the policy."""
    return {(a.value, r.value) for a in FILE_ACTIONS for r in allowed_relations(role, a)}


def sees_files(role: str) -> bool:
    return bool(reach(role))


def raises_reach(old_role: str, old_path: str, new_role: str, new_path: str) -> bool:
    """Whether moving a user from (old role, old unit) to (new role, new unit) lets them see
    files they could not before: a role with more reach, or a unit outside the old subtree."""
    new = reach(new_role)
    if not new:
        return False
    old = reach(old_role)
    old_any = {a for a, r in old if r == "any"}
    if any(a not in old_any and (a, r) not in old for a, r in new):
        return True
    return not new_path.startswith(old_path)


def approvers(s: Session, unit_path: str, *, exclude: set[int]) -> list[User]:
    """Active leaders whose unit contains the target unit (at the root: the root's leaders)."""
    return leaders_above(s, unit_path, exclude=exclude)


def _auditors(s: Session) -> list[int]:
    return list(s.scalars(select(User.id).where(User.role == Role.AUDITOR.value, User.is_active.is_(True))))


def _tell_auditors(s: Session, message: str, **params) -> None:
    for uid in _auditors(s):
        notify(s, uid, "privilege", message, link="/audit/alerts", **params)


def _open(s: Session, user: User, kind: str, new_role: str, new_unit: OrgUnit, by: Actor,
          reason: str, old: tuple[str, int | None] = ("", None)) -> AccountChange:
    # A newer request replaces any still pending for the same user.
    s.execute(update(AccountChange).where(AccountChange.user_id == user.id,
                                          AccountChange.status == "pending")
              .values(status="superseded", decided_at=clock.now()))
    change = AccountChange(user_id=user.id, kind=kind, old_role=old[0], old_unit_id=old[1],
                           new_role=new_role, new_unit_id=new_unit.id, reason=reason[:500],
                           requested_by_id=by.user_id, requested_by=by.username,
                           requested_at=clock.now())
    s.add(change)
    s.flush()
    audit.record(s, by, REQUESTED, object_type="user", object_id=user.username,
                 detail=f"#{change.id} {kind} role={new_role} unit={new_unit.code}", reason=reason[:200])
    for leader in approvers(s, new_unit.path, exclude={user.id, by.user_id or -1}):
        notify(s, leader.id, "account", "An account change waits for your approval: %(username)s.",
               link="/account-approvals", username=user.username)
    _tell_auditors(s, "Reach over customer files was asked for %(username)s (%(role)s, %(unit)s).",
                   username=user.username, role=new_role, unit=new_unit.code)
    return change


@dataclass
class NewAccount:
    user: User
    code: str
    expires_at: datetime
    change: AccountChange | None  # waiting for a second approver (privileged roles)


def create_account(s: Session, by: Actor, username: str, role: str, unit_code: str, *,
                   display_name: str = "", reason: str = "") -> NewAccount:
    """An administrator's new account: no password (the user chooses it with the one-time
    code returned here), and, for a role that sees files, held until a leader approves."""
    user = add_user(s, username, role, unit_code, None, display_name=display_name, by=by)
    change = None
    if sees_files(user.role):
        user.awaiting_approval = True
        unit = s.get(OrgUnit, user.unit_id)
        change = _open(s, user, "create", user.role, unit, by, reason.strip())
    code, expires = setup.issue_code(s, user, by, "new")
    return NewAccount(user, code, expires, change)


def record_direct_grant(s: Session, user: User, by: Actor) -> None:
    """The operator's bootstrap on the server (`portal user add`): no second approver exists
    yet, so the grant takes effect at once; the auditors are still told."""
    if not sees_files(user.role):
        return
    unit = s.get(OrgUnit, user.unit_id)
    audit.record(s, by, DIRECT, object_type="user", object_id=user.username,
                 detail=f"create role={user.role} unit={unit.code}")
    _tell_auditors(s, "Reach over customer files was given to %(username)s (%(role)s, %(unit)s).",
                   username=user.username, role=user.role, unit=unit.code)


@dataclass
class EditOutcome:
    changed: list[str]
    pending: AccountChange | None


def edit_user(s: Session, by: Actor, username: str, *, display_name: str, role: str, unit_code: str,
              reason: str) -> EditOutcome:
    """Display name, role and unit, with a reason. A change that lowers reach or keeps it takes
    effect at once (signed-in browsers end if role or unit changed); one that raises it waits
    for a second approver."""
    user = s.scalar(select(User).where(User.username == (username or "").strip().lower()))
    if user is None:
        raise AccountError("username", "No such user.")
    reason = " ".join((reason or "").split())
    if len(reason) < REASON_MIN:
        raise AccountError("reason", "Give a reason of at least 5 characters.")
    if role not in {r.value for r in Role}:
        raise AccountError("role", "Unknown role.")
    unit = unit_by_code(s, unit_code or "")
    if unit is None:
        raise AccountError("unit", "No such unit.")
    display_name = " ".join((display_name or "").split())
    if len(display_name) > 100:
        raise AccountError("display_name", "At most 100 characters.")
    moves = role != user.role or unit.id != user.unit_id
    if moves and by.user_id == user.id:
        raise AccountError("role", "You cannot change your own role or unit.")
    changed = []
    if display_name != user.display_name:
        user.display_name = display_name
        changed.append("display_name")
        audit.record(s, by, "user.edit", object_type="user", object_id=user.username,
                     fields=["display_name"], reason=reason[:200])
    pending = None
    if moves:
        old_unit = s.get(OrgUnit, user.unit_id)
        # A held account (new, or reset) stays held: its changes go to the approver as well.
        held = user.awaiting_approval and sees_files(role)
        if held or raises_reach(user.role, old_unit.path, role, unit.path):
            pending = _open(s, user, "change", role, unit, by, reason, old=(user.role, user.unit_id))
        else:
            s.execute(update(AccountChange).where(AccountChange.user_id == user.id,
                                                  AccountChange.status == "pending")
                      .values(status="superseded", decided_at=clock.now()))
            detail = f"role={user.role}->{role} unit={old_unit.code}->{unit.code}"
            user.role, user.unit_id = role, unit.id
            user.awaiting_approval = False  # a role without files needs no second approver
            s.execute(delete(WebSession).where(WebSession.user_id == user.id))
            changed += ["role", "unit"]
            audit.record(s, by, "user.edit", object_type="user", object_id=user.username,
                         fields=["role", "unit"], detail=detail, reason=reason[:200])
    return EditOutcome(changed, pending)


def reset_password(s: Session, by: Actor, username: str, reason: str = ""):
    """An administrator's password reset (set-up code). For a role that sees files the account
    is held until a leader approves: whoever holds the code could otherwise sign in as them."""
    user, code, expires = setup.reset_password(s, username, by)
    change = None
    if sees_files(user.role):
        user.awaiting_approval = True
        change = _open(s, user, "reset", user.role, s.get(OrgUnit, user.unit_id), by,
                       " ".join((reason or "").split()) or "password reset")
    return NewAccount(user, code, expires, change)


# ---------------------------------------------------------------- the leaders' queue

@dataclass
class PendingChange:
    change: AccountChange
    username: str
    display_name: str
    new_unit: OrgUnit
    old_unit: OrgUnit | None


def queue(s: Session, actor: Actor) -> list[PendingChange]:
    """Pending changes this leader may decide (their unit contains the target unit; not their
    own account, not a change they asked for), oldest first. Scoped in SQL."""
    if not actor.unit_path or not may_perform(actor, Action.ACCOUNT_APPROVE):
        return []
    new_u, old_u = aliased(OrgUnit), aliased(OrgUnit)
    rows = s.execute(
        select(AccountChange, User.username, User.display_name, new_u, old_u)
        .join(User, User.id == AccountChange.user_id)
        .join(new_u, new_u.id == AccountChange.new_unit_id)
        .join(old_u, old_u.id == AccountChange.old_unit_id, isouter=True)
        .where(AccountChange.status == "pending", new_u.path.startswith(actor.unit_path),
               AccountChange.user_id != actor.user_id,
               (AccountChange.requested_by_id.is_(None)) | (AccountChange.requested_by_id != actor.user_id))
        .order_by(AccountChange.id)).all()
    return [PendingChange(c, name, dn, nu, ou) for c, name, dn, nu, ou in rows]


def pending_for_admin(s: Session) -> list[PendingChange]:
    new_u, old_u = aliased(OrgUnit), aliased(OrgUnit)
    rows = s.execute(
        select(AccountChange, User.username, User.display_name, new_u, old_u)
        .join(User, User.id == AccountChange.user_id)
        .join(new_u, new_u.id == AccountChange.new_unit_id)
        .join(old_u, old_u.id == AccountChange.old_unit_id, isouter=True)
        .where(AccountChange.status == "pending").order_by(AccountChange.id)).all()
    return [PendingChange(c, name, dn, nu, ou) for c, name, dn, nu, ou in rows]


def decide(s: Session, actor: Actor, change_id: int, approve: bool, note: str = "") -> AccountChange:
    """A leader above the target unit approves or denies. Refusals raise
    PermissionDenied (the caller audits it); a change already decided raises ApprovalError."""
    change = s.get(AccountChange, change_id)
    if change is None:
        raise LookupError(change_id)
    user = s.get(User, change.user_id)
    unit = s.get(OrgUnit, change.new_unit_id)
    allowed = (can(actor, Action.ACCOUNT_APPROVE, owner_id=-1, unit_path=unit.path)
               and actor.user_id not in (change.user_id, change.requested_by_id))
    if not allowed:
        # The caller's handler records the refusal (in its own transaction: this one is undone).
        raise PermissionDenied(Action.ACCOUNT_APPROVE, object_id=user.username,
                               message="Not a leader above the unit, or a party to the change.")
    note = " ".join((note or "").split())
    if len(note) > 500:
        raise ApprovalError("note", "At most 500 characters.")
    if not approve and len(note) < REASON_MIN:
        raise ApprovalError("note", "Give a reason of at least 5 characters.")
    # Exactly one decision, even if two leaders press at the same moment.
    done = s.execute(update(AccountChange).where(AccountChange.id == change.id,
                                                 AccountChange.status == "pending")
                     .values(status="approved" if approve else "denied", decided_by_id=actor.user_id,
                             decided_at=clock.now(), note=note))
    if done.rowcount != 1:
        raise ApprovalError("request", "This request was already decided.")
    s.refresh(change)
    if approve:
        user.role, user.unit_id = change.new_role, change.new_unit_id
        user.awaiting_approval = False
        # New reach: every signed-in browser of the user starts again.
        s.execute(delete(WebSession).where(WebSession.user_id == user.id))
    audit.record(s, actor, APPROVED if approve else DENIED, object_type="user", object_id=user.username,
                 detail=f"#{change.id} {change.kind} role={change.new_role} unit={unit.code}",
                 reason=note[:200])
    if change.requested_by_id:
        notify(s, change.requested_by_id, "account",
               "The change to %(username)s was approved." if approve
               else "The change to %(username)s was denied.", link="/admin/users", username=user.username)
    if approve:
        _tell_auditors(s, "Reach over customer files was given to %(username)s (%(role)s, %(unit)s).",
                       username=user.username, role=change.new_role, unit=unit.code)
    return change
