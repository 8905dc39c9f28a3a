"""Users choose their own passwords: one-time set-up codes, changing one's password, the
password owed at sign-in, and "forgot password" requests for the administrator."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from .. import clock
from ..audit import service as audit
from . import mfa
from .actor import Actor
from .models import LoginAttempt, User, WebSession
from .passwords import check_password_rule, hash_password, verify_password
from .service import AccountError, _session_key, is_throttled
from .setup_models import AccountSetup, PasswordHelp

SETUP_HOURS = 72
# No 0/O, 1/I/L: read aloud or typed from a note without mistakes. 20 characters: 100 bits.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 20
HELP_PER_ADDRESS_PER_HOUR = 5


def _normalise(code: str) -> str:
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())[:64]


def _hash(code: str) -> str:
    # The code is long and random, so a plain SHA-256 is enough (as for session ids).
    return hashlib.sha256(_normalise(code).encode()).hexdigest()


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i:i + 5] for i in range(0, CODE_LENGTH, 5))


def issue_code(s: Session, user: User, by: Actor, purpose: str) -> tuple[str, datetime]:
    """A one-time set-up code for `user` (shown once; only its hash is stored). Earlier unused
    codes of the user stop working."""
    now = clock.now()
    s.execute(delete(AccountSetup).where(AccountSetup.user_id == user.id, AccountSetup.used_at.is_(None)))
    code = new_code()
    expires = now + timedelta(hours=SETUP_HOURS)
    s.add(AccountSetup(user_id=user.id, code_hash=_hash(code), purpose=purpose, created_by=by.username,
                       created_at=now, expires_at=expires))
    s.flush()
    audit.record(s, by, "user.setup_code", object_type="user", object_id=user.username,
                 detail=f"purpose={purpose} expires={expires.isoformat(timespec='minutes')}")
    return code, expires


def reset_password(s: Session, username: str, by: Actor) -> tuple[User, str, datetime]:
    """An administrator's reset: the old password stops working, signed-in browsers end, and
    the user chooses a new password with the code (the administrator never learns it)."""
    user = s.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise AccountError("username", "No such user.")
    user.password_hash = ""
    user.must_change_password = False
    s.execute(delete(WebSession).where(WebSession.user_id == user.id))
    s.execute(update(PasswordHelp).where(PasswordHelp.user_id == user.id, PasswordHelp.resolved_at.is_(None))
              .values(resolved_at=clock.now(), resolved_by=by.username))
    audit.record(s, by, "user.password_reset", object_type="user", object_id=user.username)
    code, expires = issue_code(s, user, by, "reset")
    return user, code, expires


@dataclass
class SetupTarget:
    username: str
    display_name: str
    expires_at: datetime


def _live_code(s: Session, code: str) -> tuple[AccountSetup, User] | None:
    if len(_normalise(code)) != CODE_LENGTH:
        return None
    row = s.execute(select(AccountSetup, User).join(User, User.id == AccountSetup.user_id)
                    .where(AccountSetup.code_hash == _hash(code))).first()
    if row is None:
        return None
    setup, user = row
    if setup.used_at is not None or setup.expires_at <= clock.now() or not user.is_active:
        return None
    return setup, user


def look_up_code(s: Session, code: str) -> SetupTarget | None:
    found = _live_code(s, code)
    if found is None:
        return None
    setup, user = found
    return SetupTarget(user.username, user.display_name, setup.expires_at)


def use_code(s: Session, code: str, password: str, confirm: str, client_addr: str) -> User:
    """Set the password with a set-up code; the code then stops working (exactly once, also
    when two browsers send it at the same moment)."""
    found = _live_code(s, code)
    if found is None:
        raise AccountError("code", "This set-up code is not valid: it may be mistyped, used or expired. "
                                   "Ask your administrator for a new one.")
    setup, user = found
    _check_new_password(user, password, confirm)
    used = s.execute(update(AccountSetup).where(AccountSetup.id == setup.id, AccountSetup.used_at.is_(None))
                     .values(used_at=clock.now()))
    if used.rowcount != 1:
        raise AccountError("code", "This set-up code is not valid: it may be mistyped, used or expired. "
                                   "Ask your administrator for a new one.")
    user.password_hash = hash_password(password)
    user.must_change_password = False
    s.execute(delete(WebSession).where(WebSession.user_id == user.id))
    who = Actor(user_id=user.id, username=user.username, role=user.role, client_addr=client_addr)
    audit.record(s, who, "user.setup", object_type="user", object_id=user.username,
                 detail=f"purpose={setup.purpose}")
    return user


def _check_new_password(user: User, password: str, confirm: str) -> None:
    try:
        check_password_rule(password or "", username=user.username)
    except ValueError as exc:
        raise AccountError("password", str(exc)) from None
    if password != confirm:
        raise AccountError("confirm", "The two passwords differ.")


def change_password(s: Session, user_id: int, current: str | None, password: str, confirm: str, *,
                    client_addr: str, keep_session: str, **limits) -> None:
    """A user changes their own password. `current` is required unless the sign-in has just
    checked it (a password owed at sign-in: pass None). Every other session of the user ends.

    A wrong current password counts as a failed sign-in (the same throttle applies)."""
    user = s.get(User, user_id)
    who = Actor(user_id=user.id, username=user.username, role=user.role, client_addr=client_addr)
    if current is not None:
        if is_throttled(s, user.username, client_addr, **limits):
            raise AccountError("current", "Too many failed attempts. Wait 15 minutes and try again.")
        if not verify_password(user.password_hash, current):
            s.add(LoginAttempt(username=user.username, client_addr=client_addr[:64], at=clock.now(),
                               success=False))
            audit.record(s, who, "user.password", audit.DENIED, object_type="user",
                         object_id=user.username, reason="wrong current password")
            raise AccountError("current", "Your current password is not right.")
    _check_new_password(user, password, confirm)
    if current is not None and verify_password(user.password_hash, password):
        raise AccountError("password", "Choose a password different from the current one.")
    user.password_hash = hash_password(password)
    user.must_change_password = False
    s.execute(delete(WebSession).where(WebSession.user_id == user.id,
                                       WebSession.id != _session_key(keep_session)))
    audit.record(s, who, "user.password", object_type="user", object_id=user.username,
                 detail="own; other sessions ended")


# ---------------------------------------------------------------- what a sign-in still owes

def stage_at_sign_in(user: User) -> str:
    """After the password: the second factor, else a new password owed, else enrolment, else none."""
    if mfa.enrolled(user):
        return "mfa"
    return stage_after_second_factor(user)


def stage_after_second_factor(user: User) -> str:
    if user.must_change_password:
        return "password"
    return stage_after_new_password(user)


def stage_after_new_password(user: User) -> str:
    return "enrol" if mfa.required(user.role) and not mfa.enrolled(user) else "full"


STAGE_PATHS = {"mfa": "/login/totp", "password": "/account/password", "enrol": "/account/2fa"}


# ---------------------------------------------------------------- "forgot password"

def ask_for_help(s: Session, username: str, client_addr: str) -> None:
    """Record that someone asked for a new password, for the administrators' list. Says nothing
    about whether the account exists; at most one open request per account, and a few per
    address and hour, so an anonymous visitor cannot fill the table (or the audit log)."""
    username = (username or "").strip().lower()[:64]
    since = clock.now() - timedelta(hours=1)
    recent = s.scalar(select(func.count()).select_from(PasswordHelp).where(
        PasswordHelp.client_addr == client_addr[:64], PasswordHelp.requested_at >= since))
    if not username or recent >= HELP_PER_ADDRESS_PER_HOUR:
        return
    user = s.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        return
    if s.scalar(select(PasswordHelp.id).where(PasswordHelp.user_id == user.id,
                                              PasswordHelp.resolved_at.is_(None)).limit(1)):
        return
    s.add(PasswordHelp(user_id=user.id, client_addr=client_addr[:64], requested_at=clock.now()))
    audit.record(s, Actor(user_id=None, username=username, role="anonymous", client_addr=client_addr),
                 "user.password_help", object_type="user", object_id=username)


def open_help_requests(s: Session) -> list[tuple[str, str, datetime]]:
    return list(s.execute(select(User.username, User.display_name, PasswordHelp.requested_at)
                          .join(User, User.id == PasswordHelp.user_id)
                          .where(PasswordHelp.resolved_at.is_(None))
                          .order_by(PasswordHelp.requested_at)).all())


def waiting_for_setup(s: Session) -> set[int]:
    """Users with no password yet (a set-up code not used)."""
    return set(s.scalars(select(User.id).where(User.password_hash == "")))
