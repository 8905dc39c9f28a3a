"""The second factor: leaders, auditors and admins must set it up before anything else; a
salesperson may. Codes are RFC 6238 TOTP (no replay within a step) or single-use recovery codes;
wrong codes throttle like wrong passwords; an administrator can reset it (lost phone)."""
from __future__ import annotations

import base64
import html
import re
import uuid
from datetime import datetime, timezone

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from portal.access import service as access
from portal.access.models import AccessRequest
from portal.accounts import mfa, totp
from portal.accounts import service as accounts
from portal.accounts.mfa_models import RecoveryCode
from portal.accounts.models import User, WebSession
from portal.audit.models import AuditEvent
from portal.customers.models import CustomerFile

from .browser import csrf_of, post, sign_in, signed_in
from .factories import PASSWORD, totp_secret

BASE = "http://testserver.local"
T0 = datetime(2026, 3, 2, 2, 0, 0, tzinfo=timezone.utc)
SECRET_RE = re.compile(r'data-testid="totp-secret">([A-Z2-7]+)<')
CODES_RE = re.compile(r"<li><code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code></li>")


# ---------------------------------------------------------------- RFC 6238

# RFC 6238 appendix B, SHA-1, secret "12345678901234567890"; six digits are the last six of eight.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize("unix, eight", [(59, "94287082"), (1111111109, "07081804"),
                                         (1111111111, "14050471"), (1234567890, "89005924"),
                                         (2000000000, "69279037"), (20000000000, "65353130")])
def test_code_at_matches_the_rfc_6238_vectors(unix, eight):
    at = datetime.fromtimestamp(unix, tz=timezone.utc)
    assert totp.code_at(RFC_SECRET, totp.step_of(at)) == eight[-6:]
    assert totp.verify(RFC_SECRET, eight[-6:], at) == unix // 30


def test_verify_allows_one_step_of_drift_and_refuses_replays():
    at = datetime.fromtimestamp(1234567890, tz=timezone.utc)
    now = totp.step_of(at)
    for drift in (-1, 0, 1):
        assert totp.verify(RFC_SECRET, totp.code_at(RFC_SECRET, now + drift), at) == now + drift
    for drift in (-2, 2):
        assert totp.verify(RFC_SECRET, totp.code_at(RFC_SECRET, now + drift), at) is None
    code = totp.code_at(RFC_SECRET, now)
    assert totp.verify(RFC_SECRET, code, at, last_step=now) is None  # used already
    assert totp.verify(RFC_SECRET, code, at, last_step=now - 1) == now
    assert totp.verify(RFC_SECRET, totp.code_at(RFC_SECRET, now + 1), at, last_step=now) == now + 1
    for junk in ("", "12345", "1234567", "abcdef", None):
        assert totp.verify(RFC_SECRET, junk, at) is None
    assert totp.verify(RFC_SECRET, " " + code[:3] + " " + code[3:], at) == now  # as apps group it


def test_new_secrets_and_recovery_codes_are_random_and_well_formed():
    secrets_ = {totp.new_secret() for _ in range(20)}
    assert len(secrets_) == 20 and all(re.fullmatch(r"[A-Z2-7]{32}", s) for s in secrets_)
    codes = totp.new_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", c) for c in codes)
    uri = totp.provisioning_uri("ABC", "bob")
    assert uri.startswith("otpauth://totp/VIP%20Portal%3Abob?secret=ABC&") and "period=30" in uri


# ---------------------------------------------------------------- helpers

@pytest.fixture(autouse=True)
def _frozen(clock_at):
    """Codes depend on the time step: freeze it, and move it on explicitly where a test needs to."""
    clock_at(T0)
    yield clock_at


@pytest.fixture
def en(client):
    client.headers["Accept-Language"] = "en"
    return client


@pytest.fixture
def browser(settings):
    """Another browser (over an app process of its own) on the same database."""
    from portal.app import create_app

    opened = []

    def open_() -> TestClient:
        c = TestClient(app=create_app(settings), base_url=BASE)
        c.__enter__()
        c.headers["Accept-Language"] = "en"
        opened.append(c)
        return c

    yield open_
    for c in reversed(opened):
        c.__exit__(None, None, None)


def add_user(db, username: str, role: str = "leader", unit: str = "755A") -> int:
    with db.write() as s:
        return accounts.add_user(s, username, role, unit, PASSWORD, display_name=username.title()).id


def user(db, username: str) -> User:
    with db.read() as s:
        return s.scalar(select(User).where(User.username == username))


def entries(db, action: str, username: str | None = None) -> list[AuditEvent]:
    with db.read() as s:
        q = select(AuditEvent).where(AuditEvent.action == action)
        if username:
            q = q.where(AuditEvent.actor_username == username)
        return list(s.scalars(q.order_by(AuditEvent.seq)))


def session_cookie(client) -> str:
    return client.cookies.get("portal_session") or ""


def live(db, token: str):
    with db.read() as s:
        return accounts.resolve_session(s, token, idle_minutes=30, max_hours=12)


def code_now(secret: str, offset: int = 0) -> str:
    from portal import clock
    return totp.code_at(secret, totp.step_of(clock.now()) + offset)


def enrol(client, code_for=code_now) -> tuple[str, list[str], object]:
    """On /account/2fa: read the key, answer; returns (secret, recovery codes, response)."""
    page = client.get("/account/2fa")
    assert page.status_code == 200, page.text[:300]
    secret = SECRET_RE.search(page.text).group(1)
    r = client.post("/account/2fa", data={"code": code_for(secret), "_csrf": csrf_of(page.text)},
                    follow_redirects=False)
    assert r.status_code == 200, r.text[:300]
    return secret, CODES_RE.findall(r.text), r


def answer(client, code: str, next_: str = "/"):
    page = client.get("/login/totp")
    return client.post("/login/totp", data={"code": code, "next": next_, "_csrf": csrf_of(page.text)},
                       follow_redirects=False)


def sign_out(client):
    return post(client, "/logout", {}, from_page="/welcome")


# ---------------------------------------------------------------- enrolment of a leader

def test_a_new_leader_must_enrol_before_anything_else(en, db, vault, story):
    add_user(db, "nina")
    r = sign_in(en, "nina")
    assert r.status_code == 303 and r.headers["location"] == "/account/2fa"
    partial = session_cookie(en)
    assert live(db, partial).stage == "enrol"

    # Every other page leads back to the set-up page; HTMX requests are told to go there.
    for path in ("/", "/customers", "/approvals", "/inbox", "/access-requests", "/welcome",
                 f"/customers/{story.files['alice'][0]}", "/exports"):
        r = en.get(path, follow_redirects=False)
        assert (r.status_code, r.headers.get("location")) == (303, "/account/2fa"), path
    r = en.get("/customers", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 401 and r.headers["HX-Redirect"] == "/account/2fa"
    assert en.get("/login/totp", follow_redirects=False).headers["location"] == "/account/2fa"

    page = en.get("/account/2fa")
    assert page.status_code == 200
    assert "a second factor is required before you continue" in page.text
    assert "<svg" in page.text and 'class="qr"' in page.text
    secret = SECRET_RE.search(page.text).group(1)
    assert SECRET_RE.search(en.get("/account/2fa").text).group(1) == secret  # stable until confirmed
    with db.read() as s:
        stored = s.scalar(select(User.totp_secret_ct).where(User.username == "nina"))
    assert stored and secret.encode() not in stored  # encrypted at rest

    # A wrong code: 400, the same key again, still partial.
    r = en.post("/account/2fa", data={"code": code_now(secret, 5), "_csrf": csrf_of(page.text)})
    assert r.status_code == 400
    assert "That code is not right." in r.text
    assert SECRET_RE.search(r.text).group(1) == secret
    assert en.get("/customers", follow_redirects=False).headers["location"] == "/account/2fa"
    assert [e.outcome for e in entries(db, "mfa.enrol", "nina")] == ["denied"]

    # The right code: ten recovery codes, a new session id, and full access.
    r = en.post("/account/2fa", data={"code": code_now(secret), "_csrf": csrf_of(page.text)},
                follow_redirects=False)
    assert r.status_code == 200
    codes = CODES_RE.findall(r.text)
    assert len(codes) == len(set(codes)) == 10
    assert 'data-testid="recovery-codes"' in r.text
    full = session_cookie(en)
    assert full and full != partial
    assert live(db, partial) is None
    assert live(db, full).stage == "full"
    assert en.get("/approvals").status_code == 200
    assert en.get("/customers").status_code == 200
    assert "Your second factor is on." in en.get("/account/2fa").text
    u = user(db, "nina")
    assert u.totp_enabled_at == T0 and u.totp_last_step == totp.step_of(T0)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(RecoveryCode).where(RecoveryCode.user_id == u.id)) == 10
        hashes = list(s.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == u.id)))
    assert not set(codes) & set(hashes)  # only keyed hashes are stored
    assert [e.outcome for e in entries(db, "mfa.enrol", "nina")] == ["denied", "allowed"]

    # From now on the sign-in asks for a code.
    sign_out(en)
    r = sign_in(en, "nina")
    assert r.headers["location"].startswith("/login/totp")
    assert en.get("/customers", follow_redirects=False).headers["location"] == "/login/totp"


def test_a_confirmed_second_factor_cannot_be_replaced_by_posting_again(en, db, story):
    add_user(db, "nina")
    sign_in(en, "nina")
    secret, codes, _ = enrol(en)
    page = en.get("/account/2fa")
    r = en.post("/account/2fa", data={"code": code_now(secret, 1), "_csrf": csrf_of(page.text)},
                follow_redirects=False)
    assert r.status_code == 303  # nothing to confirm: back to the status page
    assert "Your second factor is on." in en.get("/account/2fa").text
    assert len(entries(db, "mfa.enrol", "nina")) == 1


@pytest.mark.parametrize("role, unit", [("auditor", "HQ"), ("admin", "HQ")])
def test_auditors_and_admins_must_enrol_too(en, db, story, role, unit):
    add_user(db, "newbie", role, unit)
    assert sign_in(en, "newbie").headers["location"] == "/account/2fa"
    enrol(en)
    assert en.get("/audit" if role == "auditor" else "/admin/users").status_code == 200


def test_a_salesperson_signs_in_without_one(en, db, story):
    r = sign_in(en, "alice")
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert live(db, session_cookie(en)).stage == "full"
    assert not mfa.required("salesperson") and not mfa.required("customer_service")
    assert all(mfa.required(role) for role in ("leader", "auditor", "admin"))


def test_a_salesperson_may_opt_in(en, db, story):
    signed_in(en, "alice")
    before = session_cookie(en)
    page = en.get("/account/2fa")
    assert page.status_code == 200 and "required before you continue" not in page.text
    secret, codes, r = enrol(en)
    assert len(codes) == 10
    assert session_cookie(en) == before and live(db, before).stage == "full"  # already full
    assert en.get("/customers").status_code == 200
    sign_out(en)
    r = sign_in(en, "alice")
    assert r.headers["location"].startswith("/login/totp")
    assert answer(en, code_now(secret, 1)).status_code == 303
    assert en.get("/customers").status_code == 200


# ---------------------------------------------------------------- signing in with a code

def test_a_code_cannot_be_replayed_in_the_same_step(en, db, story):
    secret = totp_secret("bob")
    assert sign_in(en, "bob").headers["location"].startswith("/login/totp")
    code = code_now(secret)
    r = answer(en, code, next_="/approvals")
    assert r.status_code == 303 and r.headers["location"] == "/approvals"
    assert live(db, session_cookie(en)).stage == "full"
    sign_out(en)

    sign_in(en, "bob")
    r = answer(en, code)  # the same code, in the same step
    assert r.status_code == 401 and "That code is not right." in r.text
    assert live(db, session_cookie(en)).stage == "mfa"
    # The next step's code is within the window (clock drift) and has not been used.
    assert answer(en, code_now(secret, 1)).status_code == 303
    assert live(db, session_cookie(en)).stage == "full"
    outcomes = [(e.outcome, e.detail) for e in entries(db, "auth.second_factor", "bob")]
    assert outcomes == [("allowed", "totp"), ("denied", ""), ("allowed", "totp")]


def test_the_second_step_gives_a_new_session_id(en, db, story):
    sign_in(en, "bob")
    partial = session_cookie(en)
    answer(en, code_now(totp_secret("bob")))
    assert session_cookie(en) != partial and live(db, partial) is None


def test_a_recovery_code_works_once(en, db, story, _frozen):
    add_user(db, "nina")
    sign_in(en, "nina")
    secret, codes, _ = enrol(en)
    sign_out(en)

    sign_in(en, "nina")
    r = answer(en, codes[3].upper().replace("-", " "))  # however it is typed
    assert r.status_code == 303
    assert "Unused recovery codes: 9" in en.get("/account/2fa").text
    assert [e.detail for e in entries(db, "auth.second_factor", "nina")] == ["recovery code"]
    sign_out(en)

    sign_in(en, "nina")
    assert answer(en, codes[3]).status_code == 401
    assert answer(en, codes[4]).status_code == 303


def test_five_wrong_codes_throttle_the_account(en, db, story):
    secret = totp_secret("bob")
    sign_in(en, "bob")
    for i in range(5):
        r = answer(en, f"{i:06d}" if code_now(secret) != f"{i:06d}" else "999999")
        assert r.status_code == 401
    r = answer(en, code_now(secret))  # even the right code, now
    assert r.status_code == 429 and "Too many failed attempts" in r.text
    assert live(db, session_cookie(en)).stage == "mfa"
    assert en.get("/approvals", follow_redirects=False).headers["location"] == "/login/totp"
    assert user(db, "bob").totp_last_step is None  # the code was not even checked


def test_a_leader_cannot_decide_before_enrolling(browser, db, vault, story):
    """Nina leads alice's team but has not set up her second factor: her partial session reaches
    no decision, whether by form or by HTMX."""
    add_user(db, "nina")
    with db.read() as s:
        f = s.get(CustomerFile, uuid.UUID(story.files["alice"][0]))
    charlie = story.actor(db, "charlie")
    with db.write() as s:
        rid = access.request_access(s, charlie, f.file_no, "Covering for alice this week", "view", 4).id
    c = browser()
    sign_in(c, "nina")
    token = csrf_of(c.get("/account/2fa").text)
    for verdict in ("approve", "deny", "revoke"):
        r = c.post(f"/approvals/{rid}/{verdict}", data={"_csrf": token, "note": "as I please"},
                   follow_redirects=False)
        assert (r.status_code, r.headers.get("location")) == (303, "/account/2fa"), verdict
        r = c.post(f"/approvals/{rid}/{verdict}", data={"note": "as I please"},
                   headers={"X-CSRF-Token": token, "HX-Request": "true"}, follow_redirects=False)
        assert (r.status_code, r.headers.get("HX-Redirect")) == (401, "/account/2fa"), verdict
    # Bob, enrolled, but having given only his password so far: the same.
    b = browser()
    sign_in(b, "bob")
    r = b.post(f"/approvals/{rid}/approve", data={"_csrf": csrf_of(b.get("/login/totp").text)},
               follow_redirects=False)
    assert (r.status_code, r.headers.get("location")) == (303, "/login/totp")
    with db.read() as s:
        assert s.get(AccessRequest, rid).status == "pending"
    assert entries(db, "access.approve") == [] and entries(db, "access.deny") == []

    # Enrolled, she may.
    enrol(c)
    r = post(c, f"/approvals/{rid}/approve", {"hours": "2"}, from_page="/approvals")
    assert r.status_code == 303
    with db.read() as s:
        assert access.status_of(s.get(AccessRequest, rid)) == "active"


# ---------------------------------------------------------------- reset by an administrator

def test_erin_resets_a_lost_second_factor(browser, db, story):
    bob = browser()
    signed_in(bob, "bob")
    bobs_session = session_cookie(bob)
    assert live(db, bobs_session) is not None

    erin = browser()
    signed_in(erin, "erin")
    page = erin.get("/admin/users")
    assert 'action="/admin/users/bob/reset-2fa"' in page.text
    r = post(erin, "/admin/users/bob/reset-2fa", {}, from_page="/admin/users")
    assert r.status_code == 303 and r.headers["location"] == "/admin/users"

    u = user(db, "bob")
    assert (u.totp_secret_ct, u.totp_enabled_at, u.totp_last_step) == (None, None, None)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(WebSession).where(WebSession.user_id == u.id)) == 0
    assert live(db, bobs_session) is None
    assert bob.get("/customers", follow_redirects=False).headers["location"].startswith("/login")
    (entry,) = entries(db, "mfa.reset")
    assert (entry.actor_username, entry.object_id, entry.outcome) == ("erin", "bob", "allowed")
    assert 'action="/admin/users/bob/reset-2fa"' not in erin.get("/admin/users").text

    # Bob sets it up again at his next sign-in.
    assert sign_in(bob, "bob").headers["location"] == "/account/2fa"
    secret, codes, _ = enrol(bob)
    assert secret != totp_secret("bob") and len(codes) == 10


@pytest.mark.parametrize("who", ["grace", "dave", "alice"])
def test_only_an_admin_may_reset(client, db, story, who):
    signed_in(client, who)
    r = post(client, "/admin/users/bob/reset-2fa", {}, from_page="/welcome")
    assert r.status_code == 403
    assert user(db, "bob").totp_enabled_at is not None
    assert entries(db, "mfa.reset") == []
    assert [e.outcome for e in entries(db, "admin.mfa", who)] == ["denied"]


def test_resetting_an_unknown_user(client, db, story):
    signed_in(client, "erin")
    r = post(client, "/admin/users/nobody/reset-2fa", {}, from_page="/admin/users")
    assert r.status_code == 404
    assert entries(db, "mfa.reset") == []


def test_the_recovery_codes_page_belongs_to_the_new_session(en, db, story):
    """The page that shows the codes is rendered for the new, full session: its forms carry a
    CSRF token that still works, and the top bar shows who is signed in."""
    add_user(db, "nina")
    sign_in(en, "nina")
    _secret, _codes, r = enrol(en)
    assert 'data-testid="who"' in r.text
    switch = en.post("/preferences/language", data={"lang": "en", "next": "/customers",
                                                    "_csrf": csrf_of(r.text)}, follow_redirects=False)
    assert switch.status_code == 303


@pytest.mark.parametrize("role, unit, why, not_said", [
    ("auditor", "HQ", "You read the whole audit log", "decides on others' access"),
    ("admin", "HQ", "You manage users, their roles", "decides on others' access"),
    ("leader", "755A", "Your role decides on others' access", "audit log"),
])
def test_the_second_factor_screen_tells_each_role_why(en, db, story, role, unit, why, not_said):
    add_user(db, "newbie", role, unit)
    assert sign_in(en, "newbie").headers["location"] == "/account/2fa"
    page = en.get("/account/2fa").text
    said = re.search(r'data-testid="mfa-why">(.*?)</p>', page, re.S).group(1)
    assert why in html.unescape(said) and not_said not in html.unescape(said)
