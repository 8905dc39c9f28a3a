"""The sign-in throttle: failed attempts per account and per client address within a window.

A sign-in step (password, or second-factor code) first takes the account's lock and the
address's lock (``hold_attempts``), then counts recent failures, verifies, and records the
attempt in the same transaction. The next attempt on the same account or address waits for
that transaction to commit, so it counts every earlier failure: the limit holds whatever the
number of simultaneous attempts, on every process (see ``portal.locks``).
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import clock, locks
from .models import LoginAttempt


def hold_attempts(s: Session, username: str, client_addr: str) -> None:
    """Serialise sign-in steps for this account and this client address until the transaction ends.

    Always the account first, then the address: two transactions never wait on each other.
    The argon2 verification (~125 ms) runs under these locks: attempts on one account (or from
    one address) take turns; other accounts and addresses are not held up.
    """
    locks.hold(s, "sign-in-account", username)
    locks.hold(s, "sign-in-address", client_addr[:64])


def is_throttled(s: Session, username: str, client_addr: str, *, user_limit: int = 5,
                 addr_limit: int = 100, window_minutes: int = 15) -> bool:
    since = clock.now() - timedelta(minutes=window_minutes)
    by_user = s.scalar(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.username == username, LoginAttempt.success.is_(False), LoginAttempt.at >= since))
    if by_user >= user_limit:
        return True
    by_addr = s.scalar(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.client_addr == client_addr[:64], LoginAttempt.success.is_(False),
        LoginAttempt.at >= since))
    return by_addr >= addr_limit


def record_attempt(s: Session, username: str, client_addr: str, ok: bool) -> None:
    s.add(LoginAttempt(username=username, client_addr=client_addr[:64], at=clock.now(), success=ok))
