"""The second factor: enrolment, sign-in codes (TOTP or a recovery code), and resets by an administrator."""
from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .. import clock
from ..audit import service as audit
from ..vault import Vault
from . import totp
from .actor import Actor
from .mfa_models import RecoveryCode
from .models import User, WebSession
from ..observe.metrics import SIGNINS_THROTTLED
from .throttle import hold_attempts, is_throttled, record_attempt

# Those who decide must use a second factor; everyone else may opt in.
REQUIRED_FOR = frozenset({"leader", "auditor", "admin"})
TABLE = "user_account"


def required(role: str) -> bool:
    return role in REQUIRED_FOR


def enrolled(user: User) -> bool:
    return user.totp_enabled_at is not None


def _secret(vault: Vault, user: User) -> str | None:
    return vault.decrypt(user.totp_secret_ct, table=TABLE, column="totp_secret", row_id=user.id)


def pending_secret(s: Session, vault: Vault, user: User) -> str:
    """The secret being enrolled (made once, then shown again until confirmed)."""
    if user.totp_secret_ct is not None and not enrolled(user):
        return _secret(vault, user)
    secret = totp.new_secret()
    user.totp_secret_ct = vault.encrypt(secret, table=TABLE, column="totp_secret", row_id=user.id)
    user.totp_enabled_at = None
    s.flush()
    return secret


def confirm_enrolment(s: Session, vault: Vault, user: User, code: str, actor: Actor) -> list[str] | None:
    """Turn the factor on if the code matches; returns the ten recovery codes (shown once)."""
    if enrolled(user) or user.totp_secret_ct is None:
        return None
    step = totp.verify(_secret(vault, user), code, clock.now())
    if step is None:
        audit.record(s, actor, "mfa.enrol", audit.DENIED, object_type="user", object_id=user.username,
                     reason="wrong code")
        return None
    user.totp_enabled_at, user.totp_last_step = clock.now(), step
    s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = totp.new_recovery_codes()
    for c in codes:
        s.add(RecoveryCode(user_id=user.id, code_hash=_recovery_hash(vault, c)))
    s.flush()
    audit.record(s, actor, "mfa.enrol", object_type="user", object_id=user.username)
    return codes


def _recovery_hash(vault: Vault, code: str) -> str:
    return totp.hash_recovery_code(code, vault.ring.secret_key)


def sign_in_code(s: Session, vault: Vault, user: User, code: str, client_addr: str, *,
                 user_limit: int = 5, addr_limit: int = 100, window_minutes: int = 15) -> tuple[bool, bool]:
    """A sign-in's second step under the sign-in throttle: (accepted, throttled).

    Like the password step, it holds the account's and the address's lock from the count of
    recent failures to the record of this attempt (``throttle.hold_attempts``).
    """
    hold_attempts(s, user.username, client_addr)
    s.refresh(user)  # read again under the lock: the last step used may have moved meanwhile
    if is_throttled(s, user.username, client_addr, user_limit=user_limit, addr_limit=addr_limit,
                    window_minutes=window_minutes):
        SIGNINS_THROTTLED.labels("second_factor").inc()
        return False, True
    return check_code(s, vault, user, code, client_addr), False


def check_code(s: Session, vault: Vault, user: User, code: str, client_addr: str) -> bool:
    """A fresh TOTP code (no replay) or an unused recovery code; the attempt is recorded.

    A wrong code counts as a failed sign-in, so the same throttle applies. Sign-ins call it
    through ``sign_in_code``, which checks the throttle under the account's lock first.
    """
    ok = False
    how = "totp"
    if enrolled(user):
        step = totp.verify(_secret(vault, user), code, clock.now(), last_step=user.totp_last_step)
        if step is not None:
            user.totp_last_step = step
            ok = True
        else:
            rc = s.scalar(select(RecoveryCode).where(
                RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None),
                RecoveryCode.code_hash == _recovery_hash(vault, code or "")))
            if rc is not None:
                rc.used_at = clock.now()
                ok, how = True, "recovery code"
    record_attempt(s, user.username, client_addr, ok)
    who = Actor(user_id=user.id, username=user.username, role=user.role, client_addr=client_addr)
    audit.record(s, who, "auth.second_factor", audit.ALLOWED if ok else audit.DENIED,
                 object_type="user", object_id=user.username, detail=how if ok else "",
                 reason="" if ok else "wrong code")
    return ok


def reset(s: Session, username: str, by: Actor) -> User:
    """An administrator turns someone's second factor off (lost phone); they enrol again at next sign-in."""
    user = s.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise LookupError(username)
    user.totp_secret_ct, user.totp_enabled_at, user.totp_last_step = None, None, None
    s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    s.execute(delete(WebSession).where(WebSession.user_id == user.id))
    audit.record(s, by, "mfa.reset", object_type="user", object_id=user.username)
    return user


def remaining_recovery_codes(s: Session, user_id: int) -> int:
    return len(list(s.scalars(select(RecoveryCode.id).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)))))
