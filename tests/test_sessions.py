"""Sessions and sign-in: fresh ids, sign-out, expiry, disabling, several processes, throttling,
and the password rules."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from argon2 import PasswordHasher
from litestar.testing import TestClient
from sqlalchemy import func, select

from portal.accounts import passwords
from portal.accounts import service as accounts
from portal.accounts.models import User, WebSession
from portal.app import create_app
from portal.audit.models import AuditEvent

from .browser import csrf_of, post, sign_in, signed_in
from .conftest import PG_URL
from .factories import PASSWORD

T0 = datetime(2030, 3, 4, 1, 0, tzinfo=timezone.utc)
BASE = "http://testserver.local"
ERROR_RE = re.compile(r'<p class="error" role="alert">(.*?)</p>', re.S)


def is_signed_in(client) -> bool:
    r = client.get("/customers", follow_redirects=False)
    if r.status_code == 200:
        return True
    assert r.status_code == 303 and r.headers["location"].startswith("/login"), r.status_code
    return False


def browser_with(app, session_token: str) -> TestClient:
    c = TestClient(app=app, base_url=BASE)
    c.cookies.set("portal_session", session_token, domain="testserver.local")
    return c


def error_text(r) -> str:
    m = ERROR_RE.search(r.text)
    assert m, r.text[:500]
    return m.group(1).strip()


def sign_in_attempts(db, username: str) -> list[tuple[str, str]]:
    with db.read() as s:
        return [(e.outcome, e.reason) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.action == "auth.sign_in",
                                     AuditEvent.object_id == username).order_by(AuditEvent.seq))]


# ---------------------------------------------------------------- session ids

def test_signing_in_gives_a_new_session_id_never_a_planted_one(app, client, db, story):
    planted = "planted-by-someone-else-0123456789"
    client.cookies.set("portal_session", planted, domain="testserver.local")
    page = client.get("/login")
    client.cookies.set("portal_session", planted, domain="testserver.local")  # plant it again
    r = client.post("/login", data={"username": "alice", "password": PASSWORD, "next": "/",
                                    "_csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    issued = client.cookies.get("portal_session")
    assert issued and issued != planted
    with browser_with(app, planted) as attacker:
        assert not is_signed_in(attacker)
    assert is_signed_in(client)


def test_a_live_session_id_planted_before_sign_in_is_replaced_and_ended(app, client, story):
    with TestClient(app=app, base_url=BASE) as attacker:
        signed_in(attacker, "charlie")
        planted = attacker.cookies.get("portal_session")
        # The victim's browser carries the attacker's session, then the victim signs in.
        client.cookies.set("portal_session", planted, domain="testserver.local")
        r = sign_in(client, "alice")
        assert r.status_code == 303
        assert client.cookies.get("portal_session") != planted
        assert "alice" in client.get("/customers").text
        assert not is_signed_in(attacker)  # the planted id no longer works for anyone


def test_the_database_holds_only_a_hash_of_the_session_id(client, db, story):
    signed_in(client, "alice")
    cookie = client.cookies.get("portal_session")
    with db.read() as s:
        ids = list(s.scalars(select(WebSession.id).where(WebSession.user_id == story.users["alice"])))
    assert len(ids) == 1
    assert cookie not in ids[0] and ids[0] not in cookie


def test_signing_out_ends_the_session(app, client, db, story):
    signed_in(client, "alice")
    old = client.cookies.get("portal_session")
    r = post(client, "/logout", from_page="/customers")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert not is_signed_in(client)
    with browser_with(app, old) as replay:
        assert not is_signed_in(replay)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(WebSession)
                        .where(WebSession.user_id == story.users["alice"])) == 0
        assert s.scalar(select(AuditEvent.action).where(AuditEvent.actor_username == "alice")
                        .order_by(AuditEvent.seq.desc()).limit(1)) == "auth.sign_out"


# ---------------------------------------------------------------- expiry

def test_a_session_ends_after_30_idle_minutes(client, story, clock_at):
    clock_at(T0)
    signed_in(client, "alice")
    clock_at(T0 + timedelta(minutes=29))
    assert is_signed_in(client)
    clock_at(T0 + timedelta(minutes=29 + 31))
    assert not is_signed_in(client)


def test_activity_keeps_a_session_alive(client, story, clock_at):
    clock_at(T0)
    signed_in(client, "alice")
    for minutes in (20, 40, 60, 80, 100):
        clock_at(T0 + timedelta(minutes=minutes))
        assert is_signed_in(client), minutes


def test_a_session_ends_12_hours_after_sign_in_however_active(client, story, clock_at):
    clock_at(T0)
    signed_in(client, "alice")
    at = T0
    while at + timedelta(minutes=25) < T0 + timedelta(hours=12):
        at += timedelta(minutes=25)
        clock_at(at)
        assert is_signed_in(client), at
    clock_at(T0 + timedelta(hours=12, minutes=1))
    assert not is_signed_in(client)


def test_disabling_a_user_ends_their_sessions_at_once(app, client, db, story):
    signed_in(client, "alice")
    with TestClient(app=app, base_url=BASE) as second_browser:
        signed_in(second_browser, "alice")
        with db.write() as s:
            accounts.set_active(s, "alice", False)
        assert not is_signed_in(client)
        assert not is_signed_in(second_browser)
    with db.write() as s:
        accounts.set_active(s, "alice", True)
    assert not is_signed_in(client)  # re-enabling does not bring old sessions back


def test_every_request_asks_the_database_whether_the_account_is_still_active(settings, client, story):
    """No cache between requests: an account switched off by another process (its session row
    left in place) is refused on the very next request, and the unread count is read fresh."""
    from sqlalchemy import text

    from portal.db import Database
    from portal.inbox.service import notify

    signed_in(client, "alice")
    other = Database(settings.database_url)  # another process, as it were
    try:
        with other.write() as s:
            uid = s.scalar(select(User.id).where(User.username == "alice"))
            notify(s, uid, "test", "A notice")
        assert 'data-testid="unread">1<' in client.get("/customers").text
        with other.write() as s:
            s.execute(text("UPDATE user_account SET is_active = :f WHERE id = :u"), {"f": False, "u": uid})
            assert s.scalar(select(func.count()).select_from(WebSession).where(WebSession.user_id == uid))
        assert not is_signed_in(client)
    finally:
        other.dispose()


def test_an_admin_disabling_a_user_in_the_web_ends_their_session(app, client, story):
    signed_in(client, "alice")
    with TestClient(app=app, base_url=BASE) as admin:
        signed_in(admin, "erin")
        r = post(admin, "/admin/users/alice/disable", from_page="/admin/users")
        assert r.status_code == 303
    assert not is_signed_in(client)
    r = sign_in(client, "alice")
    assert r.status_code == 401  # and a disabled user cannot sign in again


def test_a_session_is_shared_by_every_app_process(settings, client, story):
    signed_in(client, "alice")
    cookie = client.cookies.get("portal_session")
    other_process = create_app(settings)
    with browser_with(other_process, cookie) as c:
        assert is_signed_in(c)
        r = post(c, "/logout", from_page="/customers")
        assert r.status_code == 303
    assert not is_signed_in(client)  # signed out on one process: out on all


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only")
def test_a_session_survives_the_database_dropping_an_idle_connection(client, story, monkeypatch):
    """Pooled connections are pinged once idle (not on every checkout): one the server dropped
    meanwhile is replaced, and the next request is still answered (and still checked)."""
    import os

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from portal import db as db_module

    superuser = os.environ.get("PORTAL_TEST_POSTGRES_ADMIN_URL")
    if not superuser:
        pytest.skip("needs scripts/with-postgres's superuser to end the app's connections")
    signed_in(client, "alice")
    assert is_signed_in(client)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    name = make_url(client.app.state.db.url).database
    admin = create_engine(superuser, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:  # what a server restart does to the pool's connections
        c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": name})
    admin.dispose()
    assert is_signed_in(client)



@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only")
def test_the_session_read_gives_its_connection_back_as_it_found_it(settings):
    """The session's one SELECT runs in autocommit on PostgreSQL (no BEGIN before it, no ROLLBACK
    after): the pooled connection must go back out of autocommit, or the next transaction on it
    would commit statement by statement."""
    from sqlalchemy import create_engine, text

    from portal.accounts import sessions

    engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)  # one connection, reused
    try:
        assert sessions.resolve(engine, "no-such-session", idle_minutes=30, max_hours=12) is None
        raw = engine.raw_connection()
        try:
            assert raw.dbapi_connection.autocommit is False
        finally:
            raw.close()
        with engine.connect() as conn:  # a transaction on it is still one: its write is undone
            conn.execute(text("CREATE TEMPORARY TABLE session_read_probe (x int)"))
            conn.rollback()
            assert conn.execute(text("SELECT to_regclass('pg_temp.session_read_probe')")).scalar() is None
    finally:
        engine.dispose()

# ---------------------------------------------------------------- throttling

def test_five_failures_throttle_the_account_even_for_the_right_password(client, db, story, clock_at):
    clock_at(T0)
    for _ in range(5):
        r = sign_in(client, "alice", "not the password at all")
        assert r.status_code == 401
    right = sign_in(client, "alice", PASSWORD)
    wrong = sign_in(client, "alice", "still not the password")
    assert right.status_code == wrong.status_code == 429
    assert error_text(right) == error_text(wrong)  # the answer does not tell a right password
    assert "portal_session" not in client.cookies
    assert sign_in_attempts(db, "alice") == [("denied", "bad credentials")] * 5 + \
        [("denied", "throttled")] * 2


def test_the_throttle_ends_after_the_window(client, db, story, clock_at):
    clock_at(T0)
    for _ in range(5):
        sign_in(client, "alice", "not the password at all")
    clock_at(T0 + timedelta(minutes=14))
    assert sign_in(client, "alice", PASSWORD).status_code == 429
    clock_at(T0 + timedelta(minutes=14 + 16))
    assert sign_in(client, "alice", PASSWORD).status_code == 303
    assert sign_in_attempts(db, "alice")[-1] == ("allowed", "")


def test_unknown_usernames_are_throttled_too(client, story, clock_at):
    clock_at(T0)
    for _ in range(5):
        assert sign_in(client, "nobody-here", "whatever password").status_code == 401
    assert sign_in(client, "nobody-here", "whatever password").status_code == 429


def test_other_accounts_are_not_throttled_by_one_accounts_failures(client, story, clock_at):
    clock_at(T0)
    for _ in range(5):
        sign_in(client, "alice", "not the password at all")
    assert sign_in(client, "bob").status_code == 303


def test_every_sign_in_attempt_is_audited(client, db, story):
    sign_in(client, "alice", "wrong password here")
    sign_in(client, "nobody-here", "wrong password here")
    sign_in(client, "alice")
    assert sign_in_attempts(db, "alice") == [("denied", "bad credentials"), ("allowed", "")]
    assert sign_in_attempts(db, "nobody-here") == [("denied", "bad credentials")]


def test_the_failure_message_never_says_which_part_was_wrong(client, story):
    unknown = sign_in(client, "nobody-here", PASSWORD)
    wrong = sign_in(client, "alice", "wrong password here")
    spelled_differently = sign_in(client, "ALICE ", "wrong password here")
    assert unknown.status_code == wrong.status_code == spelled_differently.status_code == 401
    assert error_text(unknown) == error_text(wrong) == error_text(spelled_differently)


def test_a_disabled_user_gets_the_same_message_as_a_wrong_password(client, db, story):
    wrong = sign_in(client, "alice", "wrong password here")
    with db.write() as s:
        accounts.set_active(s, "alice", False)
    disabled = sign_in(client, "alice", PASSWORD)
    assert disabled.status_code == 401
    assert error_text(disabled) == error_text(wrong)


# ---------------------------------------------------------------- passwords

def _hash_of(db, username: str) -> str:
    with db.read() as s:
        return s.scalar(select(User.password_hash).where(User.username == username))


def test_passwords_are_stored_as_argon2id_hashes(db, story):
    stored = _hash_of(db, "alice")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


@pytest.mark.parametrize("password, why", [
    ("short pw 1", "too short"),
    ("elevenchars", "too short"),
    ("passwordpassword", "common"),
    ("1q2w3e4r5t6y", "common"),
    ("aaaaaaaaaaaaaaaa", "too few different characters"),
    ("my name is mallory!", "contains the username"),
])
def test_weak_passwords_are_refused(db, story, password, why):
    with db.write() as s:
        with pytest.raises(accounts.AccountError) as exc:
            accounts.add_user(s, "mallory", "salesperson", "755A", password)
    assert exc.value.field == "password", why


def test_twelve_characters_are_enough(db, story):
    with db.write() as s:
        accounts.add_user(s, "mallory", "salesperson", "755A", "kq8#vz2!mw4p")


def test_an_admin_cannot_give_a_password_in_the_web(client, db, story):
    """The administrator never chooses a password: one sent with the form is ignored, and the
    user chooses their own with a set-up code (tests/test_admin_accounts.py)."""
    signed_in(client, "erin")
    assert 'name="password"' not in client.get("/admin/users").text
    r = post(client, "/admin/users", {"username": "mallory", "role": "customer_service", "unit": "HQ",
                                      "password": "a long password erin knows"}, from_page="/admin/users")
    assert r.status_code == 201
    with db.read() as s:
        assert s.scalar(select(User).where(User.username == "mallory")).password_hash == ""
    assert sign_in(client, "mallory", "a long password erin knows").status_code == 401


def test_a_hash_with_old_parameters_is_replaced_at_sign_in(client, db, story):
    old = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=2).hash(PASSWORD)
    assert passwords.needs_rehash(old)
    with db.write() as s:
        s.get(User, story.users["alice"]).password_hash = old
    assert sign_in(client, "alice").status_code == 303
    new = _hash_of(db, "alice")
    assert new != old and new.startswith("$argon2id$")
    assert not passwords.needs_rehash(new)
    assert passwords.verify_password(new, PASSWORD)


def test_a_failed_sign_in_does_not_rehash(client, db, story):
    old = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=2).hash(PASSWORD)
    with db.write() as s:
        s.get(User, story.users["alice"]).password_hash = old
    assert sign_in(client, "alice", "wrong password here").status_code == 401
    assert _hash_of(db, "alice") == old


def test_on_sqlite_the_event_loop_reads_the_session_on_its_own_read_only_connection(app, client, db, story):
    """SQLite: the session lookup runs on the event loop, on a connection of its own (not the
    pool's, which worker threads may all hold), in autocommit and read only; PostgreSQL keeps it
    in a worker thread. Dropped (a failed read), it is opened again by the next request."""
    import sqlite3

    reader = app.state.db.loop_reader()
    if PG_URL:
        assert reader is None
        return
    signed_in(client, "alice")
    assert is_signed_in(client)
    assert app.state.db.loop_reader() is reader is not None
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("DELETE FROM web_session")
    assert not reader.in_transaction  # autocommit: each read its own snapshot
    app.state.db.drop_loop_reader()
    assert is_signed_in(client)
    assert app.state.db.loop_reader() is not reader
    with db.write() as s:  # and what another connection commits is seen at once
        accounts.set_active(s, "alice", False)
    assert not is_signed_in(client)
