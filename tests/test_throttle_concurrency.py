"""Guess limits hold under concurrency, on whichever database the suite runs (SQLite, or
PostgreSQL with PORTAL_TEST_DATABASE_URL): simultaneous wrong passwords, second-factor codes and
stored-value PINs for one account are evaluated at most five times before the lock.

Verification is slowed down here (argon2 takes ~125 ms in production, ~1 ms with the suite's
cheap parameters) so that, were the check and the record not serialised, every guess would
read the same count of earlier failures and be evaluated.
"""
from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from portal import clock
from portal.accounts import mfa
from portal.accounts import service as accounts
from portal.accounts.models import LoginAttempt, User
from portal.audit.models import AuditEvent
from portal.customers.rules import InvalidField
from portal.membership import cards, pin_guard, points
from portal.membership.models import MemberEvent

from .factories import PASSWORD, totp_secret
from .test_membership_concurrency import enrolled, race

GUESSES = 30
SLOW = 0.05  # seconds added to each verification


def at(y, m, d, h=4):
    return datetime(y, m, d, h, tzinfo=timezone.utc)


def slowed(monkeypatch, module, name):
    original = getattr(module, name)

    def slow(*args, **kwargs):
        time.sleep(SLOW)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, slow)


def reasons(db, action: str, username: str) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(AuditEvent.reason).where(
            AuditEvent.action == action, AuditEvent.object_id == username).order_by(AuditEvent.seq)))


# ---------------------------------------------------------------- sign-in

def test_signin_throttle_holds_under_concurrency(db, story, monkeypatch):
    slowed(monkeypatch, accounts, "verify_password")

    def guess(i):
        with db.write() as s:
            # Half from one address, half from others: the account's limit holds either way.
            return accounts.sign_in(s, "alice", f"wrong password {i}", f"10.0.0.{i % 2 or i}")

    results = race(GUESSES, guess)
    assert [kind for kind, _ in results] == ["ok"] * GUESSES
    assert sum(not r.throttled for _, r in results) == 5
    assert reasons(db, "auth.sign_in", "alice").count("bad credentials") == 5
    with db.write() as s:  # the right password now: still refused
        assert accounts.sign_in(s, "alice", PASSWORD, "10.0.0.9").throttled


def test_address_throttle_holds_under_concurrency(db, story, monkeypatch):
    slowed(monkeypatch, accounts, "verify_password")
    limit = 8

    def guess(i):
        with db.write() as s:  # a different (unknown) account each time, one address
            return accounts.sign_in(s, f"nobody{i}", "wrong password", "10.9.9.9", addr_limit=limit)

    results = race(GUESSES, guess)
    assert [kind for kind, _ in results] == ["ok"] * GUESSES
    assert sum(not r.throttled for _, r in results) == limit


def test_second_factor_throttle_holds_under_concurrency(db, vault, story, monkeypatch):
    slowed(monkeypatch, mfa.totp, "verify")
    right = mfa.totp.code_at(totp_secret("bob"), mfa.totp.step_of(clock.now()))

    def guess(i):
        with db.write() as s:
            bob = s.scalar(select(User).where(User.username == "bob"))
            code = f"{i:06d}" if f"{i:06d}" != right else "999999"
            return mfa.sign_in_code(s, vault, bob, code, f"10.0.1.{i}")

    results = race(GUESSES, guess)
    assert [kind for kind, _ in results] == ["ok"] * GUESSES
    assert sum(not throttled for _, (ok, throttled) in results) == 5
    assert not any(ok for _, (ok, _t) in results)
    assert reasons(db, "auth.second_factor", "bob").count("wrong code") == 5
    with db.read() as s:
        failures = s.scalar(select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.username == "bob", LoginAttempt.success.is_(False)))
        assert s.scalar(select(User.totp_last_step).where(User.username == "bob")) is None
    assert failures == 5  # throttled steps are refused before any check, and not counted twice


def test_simultaneous_right_codes_sign_in_once(db, vault, story):
    """The same fresh code sent twice at once: one sign-in, the other is a replay."""
    code = mfa.totp.code_at(totp_secret("bob"), mfa.totp.step_of(clock.now()))

    def answer(i):
        with db.write() as s:
            bob = s.scalar(select(User).where(User.username == "bob"))
            return mfa.sign_in_code(s, vault, bob, code, "10.0.2.1")

    results = race(8, answer)
    assert sorted(ok for _, (ok, _t) in results) == [False] * 7 + [True]


# ---------------------------------------------------------------- stored-value PIN

def _pin_card(db, story):
    alice = story.actor(db, "alice")
    _, _, number = enrolled(db, story)
    with db.write() as s:
        points.recharge_stored_value(s, alice, number, 10_000)
        cards.set_pin(s, alice, number, "246810")
    return alice, number


def _holder_failures(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(MemberEvent).where(MemberEvent.kind == "holder_failed"))


def test_pin_lockout_evaluates_at_most_five_guesses(db, vault, story, clock_at, monkeypatch):
    clock_at(at(2026, 3, 10))
    alice, number = _pin_card(db, story)
    slowed(monkeypatch, pin_guard, "verify_password")

    def guess(i):
        return cards.guarded(db, alice, lambda s: points.spend_stored_value(
            s, vault, alice, number, 100, pin=f"{100000 + i}"))

    results = race(GUESSES, guess)
    wrong = [r for _, r in results if isinstance(r, cards.HolderNotVerified)]
    locked = [r for _, r in results if isinstance(r, InvalidField) and r.code == "card.pin_locked"]
    assert (len(wrong), len(locked)) == (cards.PIN_TRIES, GUESSES - cards.PIN_TRIES)
    assert _holder_failures(db) == cards.PIN_TRIES
    with pytest.raises(InvalidField) as exc:  # the right PIN too, until the window passes
        cards.guarded(db, alice, lambda s: points.spend_stored_value(s, vault, alice, number, 100, pin="246810"))
    assert exc.value.code == "card.pin_locked"


def test_a_wrong_pin_leaves_only_its_failure_behind(db, vault, story, clock_at):
    """The spend (and anything written before the PIN check) rolls back; the failure stays."""
    clock_at(at(2026, 3, 10))
    alice, number = _pin_card(db, story)
    with pytest.raises(cards.HolderNotVerified):
        cards.guarded(db, alice, lambda s: points.spend_stored_value(s, vault, alice, number, 100, pin="000000"))
    out = cards.guarded(db, alice, lambda s: points.spend_stored_value(s, vault, alice, number, 100, pin="246810"))
    assert out.balance_fen == 9_900
    assert _holder_failures(db) == 1


GUESSER = """
import sys, time
from sqlalchemy import select
from portal.accounts import passwords, service as accounts
from portal.accounts.models import User
from portal.customers.rules import InvalidField
from portal.db import Database
from portal.membership import cards, pin_guard, points
from portal.org.models import OrgUnit
from portal.vault import KeyRing, Vault

url, key_file, number, start, first = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
original = passwords.verify_password
def slow(*a):
    time.sleep(0.05)
    return original(*a)
pin_guard.verify_password = slow
db = Database(url)
vault = Vault(KeyRing.load(key_file))
with db.read() as s:
    u = s.scalar(select(User).where(User.username == "alice"))
    actor = accounts.actor_for(u, s.get(OrgUnit, u.unit_id))
time.sleep(max(0.0, start - time.time()))
for i in range(first, first + 3):
    try:
        cards.guarded(db, actor, lambda s: points.spend_stored_value(s, vault, actor, number, 100,
                                                                    pin=str(100000 + i)))
        print("spent")
    except cards.HolderNotVerified:
        print("wrong")
    except InvalidField as exc:
        print(exc.code)
db.dispose()
"""


def test_pin_lockout_holds_across_processes(db, vault, story, settings, clock_at):
    processes = 5
    clock_at(datetime.now(timezone.utc) - timedelta(minutes=1))  # the processes run on the real clock
    _, number = _pin_card(db, story)
    clock.set_now(None)
    db.dispose()
    start = time.time() + 4
    procs = [subprocess.Popen([sys.executable, "-c", GUESSER, db.url, str(settings.key_file), number,
                               str(start), str(10 * n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(processes)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        outs.extend(out.split())
    assert sorted(outs) == ["card.pin_locked"] * (3 * processes - cards.PIN_TRIES) + ["wrong"] * cards.PIN_TRIES
    assert _holder_failures(db) == cards.PIN_TRIES
