"""Staff accounts: creation, sign-in with throttling, server-side sessions shared by all processes."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .. import clock
from ..audit import service as audit
from ..org.models import OrgUnit
from ..org.service import unit_by_code
from . import sessions
from .actor import Actor
from .models import Role, User, WebSession
from .sessions import LiveSession
from .passwords import check_password_rule, hash_password, needs_rehash, verify_password
from ..observe.metrics import SIGNINS_THROTTLED
from .throttle import hold_attempts, is_throttled, record_attempt

USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


class AccountError(ValueError):
    """A refused account change. ``message`` is an English msgid; ``params`` fill its %(name)s
    places, so a page can say it in the user's language (``i18n.error_text``)."""

    def __init__(self, field: str, message: str, **params):
        super().__init__(message % params if params else message)
        self.field, self.message, self.params = field, message, params


def actor_for(user: User, unit: OrgUnit | None, client_addr: str = "") -> Actor:
    return Actor(user_id=user.id, username=user.username, role=user.role, unit_id=user.unit_id,
                 unit_path=unit.path if unit else "", client_addr=client_addr)


def add_user(s: Session, username: str, role: str, unit_code: str, password: str | None, *,
             display_name: str = "", by: Actor | None = None) -> User:
    """A new account. `password` None: no password yet (the user chooses one with a set-up code)."""
    username = username.strip().lower()
    if not (2 <= len(username) <= 64) or not set(username) <= USERNAME_CHARS:
        raise AccountError("username", "Usernames are 2 to 64 lowercase letters, digits, '.', '_' or '-'.")
    if role not in {r.value for r in Role}:
        raise AccountError("role", "Unknown role %(role)s.", role=role)
    unit = unit_by_code(s, unit_code)
    if unit is None:
        raise AccountError("unit", "No unit with code %(code)s.", code=unit_code)
    if s.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError("username", "The username %(username)s is taken.", username=username)
    if len(" ".join(display_name.split())) > 100:
        raise AccountError("display_name", "At most 100 characters.")
    if password is not None:
        try:
            check_password_rule(password, username=username)
        except ValueError as exc:
            raise AccountError("password", str(exc)) from None
    user = User(username=username, role=role, unit_id=unit.id, display_name=" ".join(display_name.split()),
                password_hash=hash_password(password) if password is not None else "",
                created_at=clock.now())
    s.add(user)
    s.flush()
    audit.record(s, by or Actor.system(), "user.create", object_type="user", object_id=username,
                 detail=f"role={role} unit={unit.code}")
    return user


def set_active(s: Session, username: str, active: bool, *, by: Actor | None = None) -> User:
    user = s.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise AccountError("username", "No user %(username)s.", username=username)
    user.is_active = active
    user.disabled_at = None if active else clock.now()
    if not active:
        # Signed-in browsers end at once, on every process: the sessions are rows.
        s.execute(delete(WebSession).where(WebSession.user_id == user.id))
    audit.record(s, by or Actor.system(), "user.enable" if active else "user.disable",
                 object_type="user", object_id=user.username)
    return user


def set_password(s: Session, username: str, password: str, *, by: Actor | None = None) -> None:
    user = s.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise AccountError("username", "No user %(username)s.", username=username)
    try:
        check_password_rule(password, username=user.username)
    except ValueError as exc:
        raise AccountError("password", str(exc)) from None
    user.password_hash = hash_password(password)
    s.execute(delete(WebSession).where(WebSession.user_id == user.id))
    audit.record(s, by or Actor.system(), "user.password", object_type="user", object_id=user.username)


# ---------------------------------------------------------------- sign-in

@dataclass
class SignInResult:
    user: User | None
    throttled: bool = False
    held: bool = False  # the right password, but the account waits for a second approver


def sign_in(s: Session, username: str, password: str, client_addr: str, **limits) -> SignInResult:
    """Check credentials; every attempt is recorded and audited. Never says which part was wrong.

    Check, verify and record run under the account's and the address's lock (``throttle``), so
    simultaneous attempts take turns and each sees the failures before it.
    """
    username = (username or "").strip().lower()[:64]
    hold_attempts(s, username, client_addr)
    throttled = is_throttled(s, username, client_addr, **limits)
    if throttled:
        SIGNINS_THROTTLED.labels("password").inc()
    user = s.scalar(select(User).where(User.username == username)) if username else None
    ok = False
    if not throttled:
        # Verify even for unknown users (against a dummy hash) so timing does not tell.
        ok = verify_password(user.password_hash if user else None, password or "")
        ok = ok and user is not None and user.is_active
    held = ok and user.awaiting_approval
    ok = ok and not held
    record_attempt(s, username, client_addr, ok)
    if ok and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    who = Actor(user_id=user.id if user else None, username=username or "?",
                role=user.role if user else "", client_addr=client_addr)
    # The audit append comes last: every use case takes the audit_head lock after its other
    # row locks, so two transactions never wait on each other in opposite orders.
    audit.record(s, who, "auth.sign_in", audit.ALLOWED if ok else audit.DENIED,
                 object_type="user", object_id=username,
                 reason="throttled" if throttled else ("" if ok else "awaiting approval" if held
                                                       else "bad credentials"))
    return SignInResult(user=user if ok else None, throttled=throttled, held=held)


# ---------------------------------------------------------------- sessions

_session_key = sessions.session_key


def start_session(s: Session, user: User, client_addr: str, *, replace_token: str | None = None,
                  stage: str = "full") -> str:
    """A new random session id (never one the client offered); the old one, if any, is ended.

    `stage` is "full", or the step still owed: "mfa" (a code) or "enrol" (set up a second factor).
    """
    if replace_token:
        s.execute(delete(WebSession).where(WebSession.id == _session_key(replace_token)))
    token = secrets.token_urlsafe(32)
    now = clock.now()
    s.add(WebSession(id=_session_key(token), user_id=user.id, created_at=now, last_seen_at=now,
                     client_addr=client_addr[:64], stage=stage))
    s.flush()
    return token


def end_session(s: Session, token: str) -> None:
    s.execute(delete(WebSession).where(WebSession.id == _session_key(token)))


def sign_out(s: Session, actor: Actor, token: str) -> None:
    end_session(s, token)
    audit.record(s, actor, "auth.sign_out", object_type="user", object_id=actor.username)


def resolve_session(s: Session, token: str, *, idle_minutes: int, max_hours: int) -> LiveSession | None:
    """The session's user if the session is live (not idle-expired, not too old, user active);
    the prebuilt statement of sessions.py on the session's connection."""
    return sessions.lookup(s.connection(), token, idle_minutes=idle_minutes, max_hours=max_hours)


def touch_session(s: Session, token: str) -> None:
    sessions.touch(s.connection(), token)


def purge_sessions(s: Session, *, idle_minutes: int, max_hours: int) -> int:
    now = clock.now()
    res = s.execute(delete(WebSession).where(
        (WebSession.last_seen_at < now - timedelta(minutes=idle_minutes))
        | (WebSession.created_at < now - timedelta(hours=max_hours))))
    return res.rowcount or 0


def leaders_above(s: Session, unit_path: str, *, exclude: set[int] = frozenset()) -> list[User]:
    """Active leaders of a unit containing `unit_path` (the people who approve things there)."""
    rows = s.execute(select(User, OrgUnit.path).join(OrgUnit, OrgUnit.id == User.unit_id)
                     .where(User.role == Role.LEADER.value, User.is_active.is_(True))).all()
    return [u for u, path in rows if unit_path.startswith(path) and u.id not in exclude]


def get_user(s: Session, user_id: int) -> User:
    return s.get(User, user_id)


def set_locale(s: Session, user_id: int, locale: str) -> None:
    """The user's interface language, kept on the account."""
    s.get(User, user_id).locale = locale


def list_users(s: Session) -> list[tuple[User, OrgUnit]]:
    return list(s.execute(select(User, OrgUnit).join(OrgUnit, OrgUnit.id == User.unit_id)
                          .order_by(User.username)).all())
