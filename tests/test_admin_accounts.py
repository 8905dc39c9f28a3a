"""Accounts: administrators never choose or learn passwords and never give anyone reach over
customer files alone; users choose and change their own passwords."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from portal import clock
from portal.accounts import approvals
from portal.accounts.models import User, WebSession
from portal.accounts.setup_models import AccountChange, AccountSetup, PasswordHelp
from portal.audit.models import AuditEvent
from portal.inbox.models import Notice

from .browser import csrf_of, post, sign_in, signed_in
from .factories import PASSWORD, stored_values

NEW_PASSWORD = "a brand new passphrase 42"
CODE_RE = re.compile(r'data-testid="setup-code">([A-Z0-9-]+)<')


@pytest.fixture
def browser(settings):
    """A fresh browser (its own cookies, over an app process of its own) on the same database."""
    from portal.app import create_app

    clients = []

    def make():
        c = TestClient(app=create_app(settings), base_url="http://testserver.local")
        c.__enter__()
        c.headers["Accept-Language"] = "en"
        clients.append(c)
        return c
    yield make
    for c in reversed(clients):
        c.__exit__(None, None, None)


def user(db, username: str) -> User:
    with db.read() as s:
        return s.scalar(select(User).where(User.username == username))


def pending(db, username: str) -> list[AccountChange]:
    with db.read() as s:
        return list(s.scalars(select(AccountChange).join(User, User.id == AccountChange.user_id)
                              .where(User.username == username, AccountChange.status == "pending")))


def create(erin, username: str, role: str, unit: str, reason: str = "joins the team on Monday"):
    r = post(erin, "/admin/users", {"username": username, "role": role, "unit": unit,
                                    "display_name": username.title(), "reason": reason},
             from_page="/admin/users")
    assert r.status_code == 201, r.text[:500]
    return CODE_RE.search(r.text).group(1), r


def use_code(client, code: str, password: str = NEW_PASSWORD):
    page = client.get("/setup")
    return client.post("/setup", data={"code": code, "password": password, "confirm": password,
                                       "_csrf": csrf_of(page.text)}, follow_redirects=False)


def decide(client, change_id: int, verdict: str, note: str = ""):
    return post(client, f"/account-approvals/{change_id}/{verdict}", {"note": note},
                from_page="/account-approvals")


# ---------------------------------------------------------------- a second approver

def test_admin_cannot_activate_a_leader_without_a_second_approver(browser, db, story):
    """The attack of the hardening issue: erin makes a leader at the company's root and signs in
    as it. The account waits for another leader at the root; there is none, so it stays shut."""
    erin = signed_in(browser(), "erin")
    code, page = create(erin, "mallory", "leader", "HQ")
    assert 'data-testid="needs-approval"' in page.text
    assert user(db, "mallory").awaiting_approval
    # Erin uses the code she was shown: the password is set, but the account cannot sign in.
    m = browser()
    assert use_code(m, code).status_code == 303
    r = sign_in(m, "mallory", NEW_PASSWORD)
    assert r.status_code == 401 and "waiting for a leader" in r.text
    assert m.get("/customers", follow_redirects=False).status_code in (302, 303)
    # No leader below the root may approve a leader at the root; erin may not approve at all.
    (change,) = pending(db, "mallory")
    for name in ("bob", "grace"):
        leader = signed_in(browser(), name)
        assert "mallory" not in leader.get("/account-approvals").text
        assert decide(leader, change.id, "approve").status_code == 403
    assert decide(erin, change.id, "approve").status_code == 403
    assert user(db, "mallory").awaiting_approval and pending(db, "mallory")


def test_a_leader_above_the_unit_approves_a_new_salesperson_who_then_signs_in(browser, db, story):
    erin = signed_in(browser(), "erin")
    code, _ = create(erin, "nina", "salesperson", "755A")
    nina = browser()
    use_code(nina, code)
    assert sign_in(nina, "nina", NEW_PASSWORD).status_code == 401

    grace = signed_in(browser(), "grace")
    queue = grace.get("/account-approvals")
    assert "nina" in queue.text and "joins the team on Monday" in queue.text
    (change,) = pending(db, "nina")
    r = decide(grace, change.id, "approve")
    assert r.status_code == 303
    assert not user(db, "nina").awaiting_approval
    assert sign_in(nina, "nina", NEW_PASSWORD).status_code == 303
    assert nina.get("/customers").status_code == 200
    with db.read() as s:
        decided = s.get(AccountChange, change.id)
        assert decided.status == "approved" and decided.decided_by_id == story.users["grace"]


def test_a_leader_of_another_region_cannot_approve(browser, db, story):
    erin = signed_in(browser(), "erin")
    create(erin, "nina", "salesperson", "755A")
    (change,) = pending(db, "nina")
    henry = signed_in(browser(), "henry")
    assert "nina" not in henry.get("/account-approvals").text
    assert decide(henry, change.id, "approve").status_code == 403
    assert pending(db, "nina") and user(db, "nina").awaiting_approval
    with db.read() as s:
        refused = s.scalars(select(AuditEvent).where(AuditEvent.actor_username == "henry",
                                                     AuditEvent.outcome == "denied")).all()
    assert [e.action for e in refused] == ["account.approve"]


def test_a_user_cannot_approve_their_own_move_up_the_tree(browser, db, story):
    """Bob (leader of 755A) moved up to the 755 region: he would see charlie's team too."""
    erin = signed_in(browser(), "erin")
    r = post(erin, "/admin/users/bob/edit", {"display_name": "Bob", "role": "leader", "unit": "755",
                                             "reason": "leads the region from May"}, from_page="/admin/users")
    assert r.status_code == 303
    (change,) = pending(db, "bob")
    bob = signed_in(browser(), "bob")
    assert "leads the region" not in bob.get("/account-approvals").text
    assert decide(bob, change.id, "approve").status_code == 403
    with db.read() as s:
        assert s.get(User, story.users["bob"]).unit_id == s.get(User, story.users["alice"]).unit_id

    grace = signed_in(browser(), "grace")
    assert decide(grace, change.id, "approve").status_code == 303
    with db.read() as s:
        from portal.org.models import OrgUnit
        assert s.get(OrgUnit, s.get(User, story.users["bob"]).unit_id).code == "755"
        # New reach: his signed-in browsers start again.
        assert s.scalar(select(func.count()).select_from(WebSession)
                        .where(WebSession.user_id == story.users["bob"])) == 0


def test_a_denied_change_never_takes_effect(browser, db, story):
    erin = signed_in(browser(), "erin")
    post(erin, "/admin/users/cathy/edit", {"display_name": "Cathy", "role": "salesperson", "unit": "755A",
                                           "reason": "moves to sales"}, from_page="/admin/users")
    (change,) = pending(db, "cathy")
    bob = signed_in(browser(), "bob")
    assert decide(bob, change.id, "deny", "no").status_code == 400  # a reason is needed
    assert decide(bob, change.id, "deny", "not on my team").status_code == 303
    assert user(db, "cathy").role == "customer_service"
    assert decide(bob, change.id, "approve").status_code == 409  # decided once
    assert user(db, "cathy").role == "customer_service"


def test_lowering_a_users_reach_takes_effect_at_once(browser, db, story):
    bob = signed_in(browser(), "bob")
    erin = signed_in(browser(), "erin")
    r = post(erin, "/admin/users/bob/edit", {"display_name": "Robert", "role": "salesperson",
                                             "unit": "755A", "reason": "steps down as leader"},
             from_page="/admin/users")
    assert r.status_code == 303
    u = user(db, "bob")
    assert (u.role, u.display_name) == ("salesperson", "Robert") and not pending(db, "bob")
    assert bob.get("/customers", follow_redirects=False).status_code in (302, 303)  # signed out
    with db.read() as s:
        edits = s.scalars(select(AuditEvent).where(AuditEvent.action == "user.edit")).all()
    assert {e.reason for e in edits} == {"steps down as leader"}


def test_an_edit_needs_a_reason(browser, db, story):
    erin = signed_in(browser(), "erin")
    r = post(erin, "/admin/users/alice/edit", {"display_name": "Al", "role": "salesperson",
                                               "unit": "755A", "reason": ""}, from_page="/admin/users")
    assert r.status_code == 400 and 'class="error"' in r.text
    assert user(db, "alice").display_name == "Alice"


def test_the_auditor_is_alerted_to_every_privileged_creation_and_elevation(browser, db, story):
    erin = signed_in(browser(), "erin")
    create(erin, "nina", "salesperson", "755A")
    post(erin, "/admin/users/cathy/edit", {"display_name": "Cathy", "role": "leader", "unit": "755B",
                                           "reason": "new team leader"}, from_page="/admin/users")
    grace = signed_in(browser(), "grace")
    for change in pending(db, "nina") + pending(db, "cathy"):
        assert decide(grace, change.id, "approve").status_code == 303
    dave = signed_in(browser(), "dave")
    page = dave.get("/audit/alerts")
    assert page.text.count('class="alert-privileged_account"') == 4  # two asked, two approved
    with db.read() as s:
        notices = s.scalars(select(Notice).where(Notice.user_id == story.users["dave"],
                                                 Notice.kind == "privilege")).all()
    assert len(notices) == 4


def test_a_role_without_files_needs_no_approver(browser, db, story):
    erin = signed_in(browser(), "erin")
    code, page = create(erin, "olga", "customer_service", "HQ")
    assert 'data-testid="needs-approval"' not in page.text and not pending(db, "olga")
    olga = browser()
    use_code(olga, code)
    assert sign_in(olga, "olga", NEW_PASSWORD).status_code == 303


# ---------------------------------------------------------------- set-up codes

def test_admin_never_sees_the_new_users_password(browser, db, story):
    erin = signed_in(browser(), "erin")
    code, page = create(erin, "olga", "customer_service", "HQ")
    olga = browser()
    assert use_code(olga, code).status_code == 303
    assert olga.get("/setup/done").status_code == 200
    # Nothing erin is shown afterwards carries it, and the code itself is kept only as a hash.
    assert NEW_PASSWORD not in erin.get("/admin/users").text
    dump = b"\n".join(stored_values(db))
    assert NEW_PASSWORD.encode() not in dump
    assert code.encode() not in dump and code.replace("-", "").encode() not in dump
    with db.read() as s:
        assert s.scalar(select(AccountSetup.code_hash)) != code


def test_setup_link_expires_after_72_hours(browser, db, story, clock_at):
    start = clock.now()
    clock_at(start)
    erin = signed_in(browser(), "erin")
    code, _ = create(erin, "olga", "customer_service", "HQ")
    clock_at(start + timedelta(hours=72, seconds=1))
    r = use_code(browser(), code)
    assert r.status_code == 400 and "expired" in r.text
    assert user(db, "olga").password_hash == ""


def test_a_setup_code_works_once(browser, db, story):
    erin = signed_in(browser(), "erin")
    code, _ = create(erin, "olga", "customer_service", "HQ")
    assert use_code(browser(), code).status_code == 303
    assert use_code(browser(), code, "someone else's passphrase").status_code == 400
    assert sign_in(browser(), "olga", NEW_PASSWORD).status_code == 303


def test_a_setup_code_refuses_a_weak_or_mistyped_password(browser, db, story):
    erin = signed_in(browser(), "erin")
    code, _ = create(erin, "olga", "customer_service", "HQ")
    c = browser()
    assert use_code(c, code, "short").status_code == 400
    page = c.get("/setup")
    r = c.post("/setup", data={"code": code, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x",
                               "_csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 400 and user(db, "olga").password_hash == ""
    assert use_code(c, code).status_code == 303  # still usable after the refusals


def test_an_admin_password_reset_gives_a_code_and_holds_a_salesperson_until_approved(browser, db, story):
    alice = signed_in(browser(), "alice")
    erin = signed_in(browser(), "erin")
    r = post(erin, "/admin/users/alice/reset-password", {}, from_page="/admin/users")
    assert r.status_code == 200
    code = CODE_RE.search(r.text).group(1)
    assert alice.get("/customers", follow_redirects=False).status_code in (302, 303)
    assert sign_in(browser(), "alice", PASSWORD).status_code == 401  # the old password is gone
    c = browser()
    use_code(c, code)
    assert sign_in(c, "alice", NEW_PASSWORD).status_code == 401  # held: erin holds the code too
    (change,) = pending(db, "alice")
    bob = signed_in(browser(), "bob")
    assert decide(bob, change.id, "approve").status_code == 303
    assert sign_in(c, "alice", NEW_PASSWORD).status_code == 303


# ---------------------------------------------------------------- one's own password

def test_change_password_ends_other_sessions(browser, db, story):
    phone = signed_in(browser(), "alice")
    desk = signed_in(browser(), "alice")
    r = post(desk, "/account/password", {"current": PASSWORD, "password": NEW_PASSWORD,
                                         "confirm": NEW_PASSWORD}, from_page="/account/password")
    assert r.status_code == 303
    assert desk.get("/customers").status_code == 200
    assert phone.get("/customers", follow_redirects=False).status_code in (302, 303)
    assert sign_in(browser(), "alice", NEW_PASSWORD).status_code == 303


def test_change_password_needs_the_current_password(browser, db, story):
    desk = signed_in(browser(), "alice")
    before = user(db, "alice").password_hash
    r = post(desk, "/account/password", {"current": "not my password!", "password": NEW_PASSWORD,
                                         "confirm": NEW_PASSWORD}, from_page="/account/password")
    assert r.status_code == 400 and user(db, "alice").password_hash == before


def test_a_user_flagged_must_change_chooses_a_password_at_first_sign_in(browser, db, story):
    with db.write() as s:
        s.get(User, story.users["alice"]).must_change_password = True
    c = browser()
    r = sign_in(c, "alice")
    assert r.headers["location"] == "/account/password"
    assert c.get("/customers", follow_redirects=False).headers["location"] == "/account/password"
    r = post(c, "/account/password", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
             from_page="/account/password")
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert c.get("/customers").status_code == 200
    assert not user(db, "alice").must_change_password


def test_a_leader_flagged_must_change_gives_the_second_factor_first(browser, db, story):
    with db.write() as s:
        s.get(User, story.users["bob"]).must_change_password = True
    c = browser()
    r = sign_in(c, "bob")
    assert r.headers["location"].startswith("/login/totp")
    from .browser import second_factor
    r = second_factor(c, "bob", r.headers["location"])
    assert r.headers["location"] == "/account/password"
    r = post(c, "/account/password", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
             from_page="/account/password")
    assert r.status_code == 303
    assert c.get("/approvals").status_code == 200


# ---------------------------------------------------------------- forgot password

def test_forgot_password_is_recorded_for_the_admin(browser, db, story):
    c = browser()
    page = c.get("/login")
    assert 'href="/login/forgot"' in page.text
    form = c.get("/login/forgot")
    for name in ("alice", "alice", "nobody"):
        r = c.post("/login/forgot", data={"username": name, "_csrf": csrf_of(form.text)},
                   follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login/forgot?sent=1"
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(PasswordHelp)) == 1  # once, and only real users
    erin = signed_in(browser(), "erin")
    listing = erin.get("/admin/users").text
    assert 'data-testid="password-help"' in listing and "alice" in listing.split('data-testid="password-help"')[1][:400]
    post(erin, "/admin/users/alice/reset-password", {}, from_page="/admin/users")
    assert 'data-testid="password-help"' not in erin.get("/admin/users").text


def test_reach_is_read_from_the_policy():
    assert approvals.sees_files("salesperson") and approvals.sees_files("leader")
    assert not any(approvals.sees_files(r) for r in ("auditor", "admin", "customer_service"))
    assert approvals.raises_reach("salesperson", "/1/2/3/", "leader", "/1/2/3/")
    assert not approvals.raises_reach("leader", "/1/2/3/", "salesperson", "/1/2/3/")
    assert approvals.raises_reach("leader", "/1/2/3/", "leader", "/1/2/")  # up the tree
    assert not approvals.raises_reach("leader", "/1/2/", "leader", "/1/2/3/")  # down
    assert approvals.raises_reach("admin", "/1/", "salesperson", "/1/2/")
