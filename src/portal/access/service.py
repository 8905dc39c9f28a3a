"""Asking for, deciding on, revoking and checking access grants to another salesperson's file."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..accounts.models import User
from ..accounts.service import leaders_above
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..customers.rules import format_file_number, parse_file_number
from ..driver_sql import Prebuilt
from ..inbox.service import notify
from ..policy import Action, PermissionDenied, can
from ..policy.actions import Relation
from .models import AccessRequest
from .reasons import DEFAULT_MINIMUM as REASON_MINIMUM
from .reasons import is_full_reason

MIN_HOURS, MAX_HOURS, DEFAULT_HOURS = 1, 7 * 24, 24
REASON_MAX, NOTE_MAX = 1000, 500  # a request's reason; a decision's or revocation's note
SCOPES = ("view", "view_edit")
_WHOLE_HOURS = re.compile(r"[0-9]{1,6}")


def whole_hours(raw: int | str | None) -> int:
    """Hours from a form field: ASCII digits only (int() also takes "1_0", "+10", "１０"); ValueError else."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if not isinstance(raw, str) or not _WHOLE_HOURS.fullmatch(raw):
        raise ValueError("not a whole number of hours")
    return int(raw)


class InvalidRequest(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def status_of(r: AccessRequest, now: datetime | None = None) -> str:
    """pending | denied | cancelled | revoked | expired | active — expiry is exact to the second."""
    now = now or clock.now()
    if r.status != "approved":
        return r.status
    if r.revoked_at is not None:
        return "revoked"
    if r.expires_at is None or r.expires_at <= now:
        return "expired"
    return "active"


def _active(now: datetime):
    return (AccessRequest.status == "approved", AccessRequest.revoked_at.is_(None),
            AccessRequest.expires_at > now)


def active_grant(s: Session, user_id: int | None, file_id: uuid.UUID) -> AccessRequest | None:
    """Read at every decision (no cache): the grant that lets this user at this file now, if any."""
    if user_id is None:
        return None
    return s.scalar(select(AccessRequest).where(
        AccessRequest.requester_id == user_id, AccessRequest.file_id == file_id, *_active(clock.now()))
        .order_by(AccessRequest.scope.desc(), AccessRequest.expires_at.desc()).limit(1))


def grant_relation(grant: AccessRequest | None) -> Relation | None:
    if grant is None:
        return None
    return Relation.GRANTED_EDIT if grant.scope == "view_edit" else Relation.GRANTED


def granted_file_ids(user_id: int, relations: set[Relation]):
    """SQL: the files this user holds an active grant on (for list scopes)."""
    scopes = []
    if Relation.GRANTED in relations:
        scopes.append("view")
    if Relation.GRANTED_EDIT in relations:
        scopes.append("view_edit")
    return select(AccessRequest.file_id).where(
        AccessRequest.requester_id == user_id, AccessRequest.scope.in_(scopes), *_active(clock.now()))


def request_access(s: Session, actor: Actor, file_no: str, reason: str, scope: str = "view",
                   hours: int | str = DEFAULT_HOURS, *, reason_min: int = REASON_MINIMUM) -> AccessRequest:
    """reason_min: the settings' grant_reason_min (access.reasons: the same rule the alert applies)."""
    errors: dict[str, str] = {}
    parsed = parse_file_number(file_no or "")
    f = None
    if not parsed:
        errors["file_no"] = "Give a file number like 755 00243."
    else:
        f = s.scalar(select(CustomerFile).where(CustomerFile.file_no == format_file_number(*parsed)))
        if f is None:
            errors["file_no"] = "No file has this number."
    reason = " ".join((reason or "").split())
    if len(reason) > REASON_MAX:
        errors["reason"] = "At most 1000 characters."
    elif not is_full_reason(reason, reason_min):
        errors["reason"] = "Give a fuller reason: who needs the file, and why."
    if scope not in SCOPES:
        errors["scope"] = "Choose view, or view and edit."
    try:
        hours = whole_hours(hours)
        if not MIN_HOURS <= hours <= MAX_HOURS:
            raise ValueError
    except (TypeError, ValueError):
        errors["hours"] = "The duration must be between 1 hour and 7 days."
    if f is not None and not errors:
        if can(actor, Action.CUSTOMER_VIEW, owner_id=f.owner_id, unit_path=f.unit_path):
            errors["file_no"] = "You already have access to this file."
        elif s.scalar(select(AccessRequest.id).where(
                AccessRequest.requester_id == actor.user_id, AccessRequest.file_id == f.id,
                or_(AccessRequest.status == "pending",
                    (AccessRequest.status == "approved") & AccessRequest.revoked_at.is_(None)
                    & (AccessRequest.expires_at > clock.now()))).limit(1)) is not None:
            errors["file_no"] = "You already have a pending request or an active grant for this file."
    if errors:
        raise InvalidRequest(errors)
    r = AccessRequest(requester_id=actor.user_id, file_id=f.id, file_no=f.file_no, unit_path=f.unit_path,
                      reason=reason, scope=scope, hours_requested=hours, created_at=clock.now())
    s.add(r)
    s.flush()
    params = dict(user=actor.username, file_no=f.file_no)
    notify(s, f.owner_id, "access.requested", "%(user)s asked for access to your file %(file_no)s.",
           link=f"/customers/{f.id}", **params)
    for leader in leaders_above(s, f.unit_path, exclude={actor.user_id}):
        notify(s, leader.id, "access.to_decide", "%(user)s asked for access to file %(file_no)s.",
               link="/approvals", **params)
    audit.record(s, actor, "access.request", object_type="customer", object_id=f.file_no,
                 reason=reason, detail=f"scope={scope} hours={hours}", grant_id=r.id)
    return r


def _load(s: Session, request_id: int) -> tuple[AccessRequest, CustomerFile]:
    """The request and its file, both locked until the decision commits.

    The file is locked first (a reassignment locks it too, then ends the file's grants), so a
    decision and a reassignment of the same file run one after the other: a leader deciding
    at the moment the file moves either finishes first, and the move then ends the grant, or
    waits and is judged on the file's new place. A second leader deciding at the same moment
    waits, then finds it decided (PostgreSQL; SQLite serialises writers anyway)."""
    file_id = s.scalar(select(AccessRequest.file_id).where(AccessRequest.id == request_id))
    if file_id is None:
        raise LookupError("no such request")
    f = s.get(CustomerFile, file_id, with_for_update=True, populate_existing=True)
    r = s.get(AccessRequest, request_id, with_for_update=True, populate_existing=True)
    return r, f


def may_decide(actor: Actor, r: AccessRequest, f: CustomerFile) -> bool:
    """A leader of a unit containing the file's unit as it is now (not where it was when the
    request was made) — never the requester."""
    return (actor.user_id != r.requester_id
            and can(actor, Action.ACCESS_DECIDE, owner_id=-1, unit_path=f.unit_path))


def decide(s: Session, actor: Actor, request_id: int, approve: bool, *, hours: int | str | None = None,
           note: str = "") -> AccessRequest:
    r, f = _load(s, request_id)
    if not may_decide(actor, r, f):
        raise PermissionDenied(Action.ACCESS_DECIDE, r.file_no,
                               "only a leader above the file, never the requester, may decide")
    if r.status != "pending":
        raise InvalidRequest({"request": "This request has already been decided."})
    note = " ".join((note or "").split())
    if len(note) > NOTE_MAX:
        raise InvalidRequest({"note": "At most 500 characters."})
    now = clock.now()
    if approve:
        try:
            granted = whole_hours(hours) if hours not in (None, "") else r.hours_requested
            if not MIN_HOURS <= granted <= r.hours_requested:
                raise ValueError
        except (TypeError, ValueError):
            raise InvalidRequest({"hours": "The duration may be shortened, not lengthened."}) from None
        r.status, r.hours_granted, r.expires_at = "approved", granted, now + timedelta(hours=granted)
    else:
        if len(note) < 5:
            raise InvalidRequest({"note": "Give a reason for the refusal."})
        r.status = "denied"
    r.decided_by_id, r.decided_at, r.decision_note = actor.user_id, now, note
    s.flush()
    requester = s.get(User, r.requester_id)
    params = dict(user=requester.username if requester else "?", file_no=r.file_no, by=actor.username)
    if approve:
        notify(s, r.requester_id, "access.approved", "%(by)s approved your access to file %(file_no)s.",
               link=f"/customers/{r.file_id}", **params)
        notify(s, f.owner_id, "access.granted", "%(user)s was granted access to your file %(file_no)s by %(by)s.",
               link=f"/customers/{r.file_id}", **params)
    else:
        notify(s, r.requester_id, "access.denied", "%(by)s refused your access to file %(file_no)s.",
               link="/access-requests", **params)
    audit.record(s, actor, "access.approve" if approve else "access.deny", object_type="customer",
                 object_id=r.file_no, reason=note,
                 detail=f"hours={r.hours_granted}" if approve else "", grant_id=r.id)
    return r


def revoke(s: Session, actor: Actor, request_id: int, reason: str = "") -> AccessRequest:
    """The approver, or any leader above the file (where it is now), ends a grant before its expiry."""
    r, f = _load(s, request_id)
    if not (actor.user_id == r.decided_by_id or may_decide(actor, r, f)):
        raise PermissionDenied(Action.ACCESS_DECIDE, r.file_no, "only the approver or a leader above the file may revoke")
    if status_of(r) != "active":
        raise InvalidRequest({"request": "Only an active grant can be revoked."})
    reason = " ".join((reason or "").split())
    if len(reason) > NOTE_MAX:
        raise InvalidRequest({"note": "At most 500 characters."})
    r.revoked_at, r.revoked_by_id, r.revoke_reason = clock.now(), actor.user_id, reason
    s.flush()
    params = dict(file_no=r.file_no, by=actor.username)
    notify(s, r.requester_id, "access.revoked", "%(by)s revoked your access to file %(file_no)s.",
           link="/access-requests", **params)
    notify(s, f.owner_id, "access.revoked", "%(by)s revoked a grant on your file %(file_no)s.",
           link=f"/customers/{r.file_id}", **params)
    audit.record(s, actor, "access.revoke", object_type="customer", object_id=r.file_no,
                 reason=r.revoke_reason, grant_id=r.id)
    return r


@dataclass
class RequestView:
    request: AccessRequest
    status: str
    requester: str
    decided_by: str
    seconds_left: int | None
    deciders: tuple[str, ...] = ()  # a pending request: the leaders above the file who may decide it


def _views(s: Session, rows: list[AccessRequest]) -> list[RequestView]:
    ids = {r.requester_id for r in rows} | {r.decided_by_id for r in rows if r.decided_by_id}
    names = dict(s.execute(select(User.id, User.username).where(User.id.in_(ids))).all()) if ids else {}
    now = clock.now()
    out = []
    for r in rows:
        st = status_of(r, now)
        left = int((r.expires_at - now).total_seconds()) if st == "active" else None
        out.append(RequestView(r, st, names.get(r.requester_id, "?"), names.get(r.decided_by_id, ""), left))
    return out


def my_requests(s: Session, actor: Actor, limit: int = 200) -> list[RequestView]:
    """The requester's own requests; a pending one names who can decide it (the active leaders
    above the file's current unit, never the requester)."""
    views = _views(s, list(s.scalars(select(AccessRequest).where(AccessRequest.requester_id == actor.user_id)
                                     .order_by(AccessRequest.id.desc()).limit(limit))))
    pending = [v for v in views if v.status == "pending"]
    if pending:
        paths = dict(s.execute(select(CustomerFile.id, CustomerFile.unit_path).where(
            CustomerFile.id.in_({v.request.file_id for v in pending}))).all())
        for v in pending:
            path = paths.get(v.request.file_id)
            if path:
                v.deciders = tuple(sorted(u.display_name or u.username for u in
                                          leaders_above(s, path, exclude={actor.user_id})))
    return views


def approval_queue(s: Session, actor: Actor, limit: int = 200) -> list[RequestView]:
    """Pending requests on files now in the leader's subtree (not their own), then active grants
    there they may revoke. Joined to the file's current unit: a file moved to another team
    leaves this queue and enters its new leaders' at once."""
    if actor.role != "leader" or not actor.unit_path:
        return []
    from ..policy.scope import subtree_range
    lo, hi = subtree_range(actor.unit_path)
    rows = list(s.scalars(select(AccessRequest)
        .join(CustomerFile, CustomerFile.id == AccessRequest.file_id)
        .where(CustomerFile.unit_path >= lo, CustomerFile.unit_path < hi,
               AccessRequest.requester_id != actor.user_id,
               or_(AccessRequest.status == "pending",
                   (AccessRequest.status == "approved") & AccessRequest.revoked_at.is_(None)
                   & (AccessRequest.expires_at > clock.now())))
        .order_by(AccessRequest.status.desc(), AccessRequest.id.desc()).limit(limit)))
    return _views(s, rows)


# Built once (the file page reads it on every view of its owner or a leader), bound per call.
_ON_FILE_WHERE = (AccessRequest.file_id == bindparam("fid"),
                  or_(AccessRequest.status == "pending", (AccessRequest.status == "approved")
                      & AccessRequest.revoked_at.is_(None) & (AccessRequest.expires_at > bindparam("now"))))
_ON_FILE = select(AccessRequest).where(*_ON_FILE_WHERE).order_by(AccessRequest.id.desc())


# Most files have none: one indexed probe on the driver's cursor first (an ORM query that finds
# nothing still costs about twenty times as much CPU).
_ANY_ON_FILE = Prebuilt(select(AccessRequest.id).where(*_ON_FILE_WHERE).limit(1))


def grants_on_file(s: Session, file_id: uuid.UUID) -> list[RequestView]:
    """Who holds (or asks for) access to a file, shown to its owner and leaders."""
    params = {"fid": file_id, "now": clock.now()}
    s.flush()  # as the ORM query would (autoflush): requests this session added are seen
    if not _ANY_ON_FILE.all(s.connection(), params):
        return []
    return _views(s, list(s.scalars(_ON_FILE, params)))


MOVED_REASON = "The file moved to another unit."


def follow_reassignment(s: Session, actor: Actor, f: CustomerFile, old_unit_path: str) -> int:
    """After ``f`` was handed to a new owner (the caller holds the file's row lock): its access
    answers to the leaders of its new place. Returns how many grants were ended.

    - Active grants end when the file changes unit: the leaders who approved them no longer
      answer for the file, and its new leaders never did. Each holder is told in the inbox (and
      may ask again: the request goes to the new leaders); each ending is audited.
    - Pending requests stay and are now decided by the new leaders (decisions and the queue
      read the file's current unit), who are told of each; one by the new owner is cancelled.
    """
    now = clock.now()
    moved = f.unit_path != old_unit_path
    ended = 0
    rows = list(s.scalars(select(AccessRequest).where(
        AccessRequest.file_id == f.id,
        or_(AccessRequest.status == "pending", (AccessRequest.status == "approved") & AccessRequest.revoked_at.is_(None)
            & (AccessRequest.expires_at > now)))
        .order_by(AccessRequest.id).with_for_update()))
    names = dict(s.execute(select(User.id, User.username).where(
        User.id.in_({r.requester_id for r in rows}))).all()) if rows else {}
    for r in rows:
        if r.status == "pending":
            if r.requester_id == f.owner_id:
                r.status, r.decided_at = "cancelled", now  # the file is now theirs
                continue
            if moved:
                params = dict(user=names.get(r.requester_id, "?"), file_no=f.file_no)
                for leader in leaders_above(s, f.unit_path, exclude={r.requester_id}):
                    notify(s, leader.id, "access.to_decide", "%(user)s asked for access to file %(file_no)s.",
                           link="/approvals", **params)
            continue
        if not moved and r.requester_id != f.owner_id:
            continue  # the same leaders still answer for it
        r.revoked_at, r.revoked_by_id, r.revoke_reason = now, actor.user_id, MOVED_REASON
        ended += 1
        if r.requester_id != f.owner_id:
            notify(s, r.requester_id, "access.ended",
                   "Your access to file %(file_no)s ended: the file moved to another unit.",
                   link="/access-requests", file_no=f.file_no)
        audit.record(s, actor, "access.revoke", object_type="customer", object_id=f.file_no,
                     reason=MOVED_REASON, detail="ended by reassignment", grant_id=r.id)
    s.flush()
    return ended
