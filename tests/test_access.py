"""Cross-access grants: charlie (team 755B) asks for alice's file (team 755A), bob (her leader)
decides. Only the requester gains access, only while the grant is active, only as far as its
scope goes; every step is audited and the people concerned are told in their inbox.

The matrix covers every viewer x grant state x surface; the unit tests below it pin the rules
one by one (expiry to the second, who may decide and revoke, validation, duplicates on create).
"""
from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from portal import clock
from portal.access import service as access
from portal.access.models import AccessRequest
from portal.accounts import service as accounts
from portal.accounts.actor import Actor
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.customers import listing
from portal.customers import service as customers
from portal.customers.models import PERSONAL_FIELDS, CustomerFile
from portal.inbox.models import Notice
from portal.org.models import OrgUnit
from portal.policy import PermissionDenied

from .browser import csrf_of, post, signed_in
from .factories import PASSWORD, totp_secret, valid_id

BASE = "http://testserver.local"
REASON = "Covering for alice during her leave next week"
HOURS = 8


# ---------------------------------------------------------------- helpers

@dataclass
class AlicesFile:
    id: str
    file_no: str
    mobile: str
    address: str
    name: str
    id_number: str


def alices_file(db, vault, story) -> AlicesFile:
    with db.read() as s:
        f = s.get(CustomerFile, uuid.UUID(story.files["alice"][0]))
        p = customers._open(vault, f)
        return AlicesFile(str(f.id), f.file_no, p["mobile"], p["address"], p["name"], p["id_number"])


def actor(db, username: str) -> Actor:
    with db.read() as s:
        u = s.scalar(select(User).where(User.username == username))
        return accounts.actor_for(u, s.get(OrgUnit, u.unit_id), "127.0.0.1")


def add_leader(db, vault, username: str, unit: str) -> int:
    """A leader who has set up the second factor, as the story's leaders have."""
    with db.write() as s:
        u = accounts.add_user(s, username, "leader", unit, PASSWORD, display_name=username.title())
        u.totp_secret_ct = vault.encrypt(totp_secret(username), table="user_account",
                                         column="totp_secret", row_id=u.id)
        u.totp_enabled_at = clock.now()
        return u.id


@pytest.fixture(autouse=True)
def _english(request):
    """Messages are asserted by their English words."""
    if "client" in request.fixturenames:
        request.getfixturevalue("client").headers["Accept-Language"] = "en"


@pytest.fixture
def ivan(db, vault, story):
    """Leader of team 755B: charlie's leader, not alice's."""
    return add_leader(db, vault, "ivan", "755B")


@pytest.fixture
def browser(settings):
    """More browsers on the same database: browser("bob") is a signed-in client of its own (over
    an app of its own, as if each person reached another app process)."""
    from portal.app import create_app

    opened = []

    def open_as(username: str | None = None, lang: str = "en") -> TestClient:
        c = TestClient(app=create_app(settings), base_url=BASE)
        c.__enter__()
        opened.append(c)
        c.headers["Accept-Language"] = lang
        if username:
            signed_in(c, username)
        return c

    yield open_as
    for c in reversed(opened):
        c.__exit__(None, None, None)


def last_seq(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.max(AuditEvent.seq))) or 0


def entries_since(db, seq: int, username: str | None = None) -> list[AuditEvent]:
    with db.read() as s:
        q = select(AuditEvent).where(AuditEvent.seq > seq)
        if username:
            q = q.where(AuditEvent.actor_username == username)
        return list(s.scalars(q.order_by(AuditEvent.seq)))


def get_request(db, rid: int) -> AccessRequest:
    with db.read() as s:
        return s.get(AccessRequest, rid)


def count(db, model) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def notices(db, username: str) -> list[Notice]:
    with db.read() as s:
        uid = s.scalar(select(User.id).where(User.username == username))
        return list(s.scalars(select(Notice).where(Notice.user_id == uid).order_by(Notice.id)))


def ask(db, file_no: str, *, who: str = "charlie", scope: str = "view", hours: int = HOURS,
        reason: str = REASON) -> int:
    with db.write() as s:
        return access.request_access(s, actor(db, who), file_no, reason, scope, hours).id


def approve(db, rid: int, *, by: str = "bob", hours=None) -> AccessRequest:
    with db.write() as s:
        return access.decide(s, actor(db, by), rid, True, hours=hours)


def grant_in_state(db, file_no: str, state: str) -> int:
    """Charlie's request on the file, brought to `state`; returns its id."""
    if state == "expired":
        # Asked and approved for an hour, three hours ago.
        clock.set_now(datetime.now(timezone.utc) - timedelta(hours=3))
        try:
            rid = ask(db, file_no)
            approve(db, rid, hours=1)
        finally:
            clock.set_now(None)
        return rid
    rid = ask(db, file_no, scope="view_edit" if state == "active_edit" else "view")
    if state in ("active", "active_edit", "revoked"):
        approve(db, rid)
    if state == "revoked":
        with db.write() as s:
            access.revoke(s, actor(db, "bob"), rid, "no longer needed")
    if state == "denied":
        with db.write() as s:
            access.decide(s, actor(db, "bob"), rid, False, note="Alice handles this client herself")
    assert access.status_of(get_request(db, rid)) == ("active" if state == "active_edit" else state)
    return rid


# ---------------------------------------------------------------- the matrix

STATES = ("pending", "active", "active_edit", "expired", "revoked", "denied")
SURFACES = ("page", "fragment", "field", "edit_form", "list", "search", "export")
# viewer -> (sees, edits, lists, exports) regardless of any grant; None: the role has no customer routes.
BY_RELATION = {
    "alice": (True, True, True, True),     # the owner
    "bob": (True, False, True, True),      # leads her team (and approves): sees, never edits
    "grace": (True, False, True, True),    # leads the region above
    "ivan": (False, False, False, False),  # leads charlie's team, not alice's
    "dave": None,                          # auditor
    "erin": None,                          # admin
}
VIEWERS = ("charlie", *BY_RELATION)


def expected(viewer: str, state: str, surface: str) -> bool:
    if viewer == "charlie":
        # Only the requester gains, only while the grant is active, only as far as its scope.
        active = state in ("active", "active_edit")
        return {"edit_form": state == "active_edit", "export": False}.get(surface, active)
    rel = BY_RELATION[viewer]
    if rel is None:
        return False
    sees, edits, lists, exports = rel
    return {"edit_form": edits, "list": lists, "search": lists, "export": exports}.get(surface, sees)


def _hit(client, surface: str, f: AlicesFile):
    if surface == "page":
        return client.get(f"/customers/{f.id}")
    if surface == "fragment":
        return client.get(f"/customers/{f.id}", headers={"HX-Request": "true"})
    if surface == "field":
        return client.get(f"/customers/{f.id}/fields/mobile", headers={"HX-Request": "true"})
    if surface == "edit_form":
        return client.get(f"/customers/{f.id}/edit")
    if surface == "list":
        return client.get("/customers")
    if surface == "search":
        return post(client, "/customers/search", {"q": f.mobile}, from_page="/inbox")
    if surface == "export":
        return post(client, "/customers/export.csv", {"purpose": "matrix check"}, from_page="/inbox")
    raise AssertionError(surface)


def _matrix():
    for viewer in VIEWERS:
        for state in STATES:
            for surface in SURFACES:
                ok = expected(viewer, state, surface)
                yield pytest.param(viewer, state, surface, ok,
                                   id=f"{viewer}-{state}-{surface}-{'allowed' if ok else 'refused'}")


@pytest.mark.parametrize("viewer, state, surface, allowed", list(_matrix()))
def test_grant_matrix(client, db, vault, story, ivan, viewer, state, surface, allowed):
    f = alices_file(db, vault, story)
    rid = grant_in_state(db, f.file_no, state)
    signed_in(client, viewer)
    before = last_seq(db)

    r = _hit(client, surface, f)
    new = entries_since(db, before, viewer)
    on_file = [e for e in new if e.object_id == f.file_no]

    if BY_RELATION.get(viewer, ()) is None:
        # Auditor and admin: stopped at the route, whatever grants exist.
        assert r.status_code == 403, (r.status_code, r.text[:300])
        assert f.mobile not in r.text and f.file_no not in r.text
        assert [e.outcome for e in new] == ["denied"]
        return

    if surface in ("list", "search", "export"):
        assert r.status_code == 200, (r.status_code, r.text[:300])
        body = r.content.decode("utf-8-sig") if surface == "export" else r.text
        if surface == "export":
            nos = [row[0] for row in list(csv.reader(io.StringIO(body)))[1:]]
            assert (f.file_no in nos) is allowed
            assert (f.mobile in body) is allowed
        else:
            assert (f.file_no in body) is allowed
            # Rows are masked; a search only echoes what was typed into its own box.
            assert body.count(f.mobile) == (1 if surface == "search" else 0)
        assert not [e for e in new if e.outcome == "denied"]
        return

    if not allowed:
        assert r.status_code == 403, (r.status_code, r.text[:300])
        assert f.mobile not in r.text and f.address not in r.text
        if surface in ("fragment", "field"):
            assert "<html" not in r.text
        assert [(e.action, e.outcome) for e in on_file] == [
            ("customer.edit" if surface == "edit_form" else "customer.view", "denied")]
        return

    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert f.mobile in r.text
    assert ("<html" in r.text) is (surface in ("page", "edit_form"))
    (entry,) = on_file
    assert entry.outcome == "allowed"
    assert entry.action == ("customer.edit" if surface == "edit_form" else "customer.view")
    assert entry.fields == ("mobile" if surface == "field" else ",".join(PERSONAL_FIELDS))
    # The view made under the grant names it; views by ownership or leadership do not.
    assert entry.grant_id == (rid if viewer == "charlie" else None)
    if surface == "page":
        # The owner and the leaders above see who else holds or asks for access; the grantee does not.
        listed = state in ("pending", "active", "active_edit")
        if viewer == "charlie":
            assert 'data-testid="file-grants"' not in r.text
        else:
            assert 'data-testid="file-grants"' in r.text
            section = r.text.split('data-testid="file-grants"', 1)[1].split("</section>", 1)[0]
            assert ("charlie" in section) is listed
            assert ("min left" in section) is (state in ("active", "active_edit"))


# ---------------------------------------------------------------- expiry, to the second

T0 = datetime(2026, 3, 2, 2, 0, 0, tzinfo=timezone.utc)


def test_grant_ends_at_expiry_to_the_second(db, vault, story, clock_at):
    f = alices_file(db, vault, story)
    clock_at(T0)
    rid = ask(db, f.file_no, hours=HOURS)
    r = approve(db, rid, hours=1)
    assert r.expires_at == T0 + timedelta(hours=1)
    charlie = actor(db, "charlie")

    clock_at(r.expires_at - timedelta(seconds=1))
    with db.write() as s:
        assert access.status_of(s.get(AccessRequest, rid)) == "active"
        card = customers.view_file(s, vault, charlie, f.id)
        assert card.fields["mobile"] == f.mobile
        page = listing.list_files(s, vault, charlie)
        assert f.file_no in [row.file_no for row in page.rows]

    clock_at(r.expires_at)
    with db.write() as s:
        assert access.status_of(s.get(AccessRequest, rid)) == "expired"
        assert access.active_grant(s, charlie.user_id, uuid.UUID(f.id)) is None
        with pytest.raises(PermissionDenied):
            customers.view_file(s, vault, charlie, f.id)
        page = listing.list_files(s, vault, charlie)
        assert f.file_no not in [row.file_no for row in page.rows]


def test_grant_ends_at_expiry_in_the_browser(client, db, vault, story, clock_at):
    """The same through the web: the page opens one second before expiry and not at it."""
    f = alices_file(db, vault, story)
    clock_at(T0)
    rid = ask(db, f.file_no)
    expires = approve(db, rid, hours=1).expires_at
    clock_at(expires - timedelta(minutes=5))  # sign in late in the grant, so the session is fresh
    signed_in(client, "charlie")
    clock_at(expires - timedelta(seconds=1))
    r = client.get(f"/customers/{f.id}")
    assert r.status_code == 200 and f.mobile in r.text
    clock_at(expires)
    r = client.get(f"/customers/{f.id}")
    assert r.status_code == 403 and f.mobile not in r.text
    r = client.get("/access-requests")
    assert "badge expired" in r.text


# ---------------------------------------------------------------- who decides

def test_bob_approves_in_place_with_htmx(client, db, vault, story):
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no)
    signed_in(client, "bob")
    page = client.get("/approvals")
    assert page.status_code == 200 and f'id="request-{rid}"' in page.text and REASON in page.text
    r = client.post(f"/approvals/{rid}/approve", data={"hours": "4", "_csrf": csrf_of(page.text)},
                    headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 200
    assert "<html" not in r.text  # only the queue, swapped into #queue
    assert f'id="request-{rid}"' in r.text and "badge active" in r.text
    assert f'action="/approvals/{rid}/revoke"' in r.text
    req = get_request(db, rid)
    assert (req.status, req.hours_granted, req.decided_by_id) == ("approved", 4, story.users["bob"])


def test_a_plain_form_post_approves_and_redirects(client, db, vault, story):
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no)
    signed_in(client, "grace")  # the leader above may decide too
    r = post(client, f"/approvals/{rid}/approve", {"hours": ""}, from_page="/approvals")
    assert r.status_code == 303 and r.headers["location"] == "/approvals"
    assert get_request(db, rid).hours_granted == HOURS  # empty: as asked


def test_the_queue_shows_only_requests_in_the_leaders_subtree(browser, db, vault, story, ivan):
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no)
    for leader, sees in (("bob", True), ("grace", True), ("ivan", False), ("henry", False)):
        page = browser(leader).get("/approvals")
        assert page.status_code == 200
        assert (f'id="request-{rid}"' in page.text) is sees, leader
    assert browser("charlie").get("/approvals").status_code == 403
    assert browser("alice").get("/approvals").status_code == 403


@pytest.mark.parametrize("leader", ["henry", "ivan"])
def test_a_leader_outside_the_subtree_cannot_decide(browser, db, vault, story, ivan, leader):
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no)
    c = browser(leader)
    for verdict, data in (("approve", {"hours": "2"}), ("deny", {"note": "I do not think so"})):
        before = last_seq(db)
        r = post(c, f"/approvals/{rid}/{verdict}", data, from_page="/approvals")
        assert r.status_code == 403
        denied = [e for e in entries_since(db, before, leader) if e.outcome == "denied"]
        assert [(e.action, e.object_id) for e in denied] == [("access.decide", f.file_no)]
        assert get_request(db, rid).status == "pending"
    with db.write() as s, pytest.raises(PermissionDenied):
        access.decide(s, actor(db, leader), rid, True)


def test_a_leader_cannot_approve_his_own_request(browser, db, vault, story):
    """Henry (010A) asks for alice's file (755A): he is neither above the file nor may he decide
    for himself; bob and grace are told, not him."""
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no, who="henry")
    assert [n.kind for n in notices(db, "bob")] == ["access.to_decide"]
    assert [n.kind for n in notices(db, "grace")] == ["access.to_decide"]
    assert notices(db, "henry") == []
    henry = browser("henry")
    assert f'id="request-{rid}"' not in henry.get("/approvals").text
    r = post(henry, f"/approvals/{rid}/approve", {}, from_page="/approvals")
    assert r.status_code == 403
    assert get_request(db, rid).status == "pending"
    r = post(browser("bob"), f"/approvals/{rid}/approve", {}, from_page="/approvals")
    assert r.status_code == 303
    assert access.status_of(get_request(db, rid)) == "active"


def test_a_leader_moved_above_the_file_still_cannot_approve_his_own_request(browser, db, vault, story, ivan):
    """Ivan (755B) asks for alice's file, then is made leader of the whole region: he is now a
    leader above the file, and only the rule "never the requester" stops him."""
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no, who="ivan")
    with db.write() as s:
        region = s.scalar(select(OrgUnit).where(OrgUnit.code == "755"))
        s.get(User, ivan).unit_id = region.id
    me = actor(db, "ivan")
    assert me.unit_path == region.path
    with db.read() as s:
        r = s.get(AccessRequest, rid)
        f_row = s.get(CustomerFile, r.file_id)
        assert not access.may_decide(me, r, f_row)
        assert access.may_decide(actor(db, "grace"), r, f_row)
        assert rid not in [v.request.id for v in access.approval_queue(s, me)]
    with db.write() as s, pytest.raises(PermissionDenied):
        access.decide(s, me, rid, True)
    c = browser("ivan")
    before = last_seq(db)
    r = post(c, f"/approvals/{rid}/approve", {}, from_page="/approvals")
    assert r.status_code == 403
    assert [(e.action, e.outcome) for e in entries_since(db, before, "ivan")] == [("access.decide", "denied")]
    assert get_request(db, rid).status == "pending"


def test_approval_may_shorten_but_not_lengthen(browser, db, vault, story, clock_at):
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no, hours=HOURS)
    bob = browser("bob")
    for hours in (str(HOURS + 1), "0", "-2", "a day"):
        before = last_seq(db)
        r = post(bob, f"/approvals/{rid}/approve", {"hours": hours}, from_page="/approvals")
        assert r.status_code == 400, hours
        assert "The duration may be shortened, not lengthened." in r.text
        assert get_request(db, rid).status == "pending"
        assert [e.action for e in entries_since(db, before) if e.action.startswith("access.")] == []
    clock_at(T0)
    approve(db, rid, hours=2)
    req = get_request(db, rid)
    assert (req.hours_requested, req.hours_granted, req.expires_at) == (HOURS, 2, T0 + timedelta(hours=2))


def test_a_refusal_needs_a_reason(browser, db, vault, story):
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no)
    bob = browser("bob")
    for note in ("", "   ", "no"):
        r = post(bob, f"/approvals/{rid}/deny", {"note": note}, from_page="/approvals")
        assert r.status_code == 400
        assert "Give a reason for the refusal." in r.text
        assert get_request(db, rid).status == "pending"
    r = post(bob, f"/approvals/{rid}/deny", {"note": "Alice handles this client herself"},
             from_page="/approvals")
    assert r.status_code == 303
    req = get_request(db, rid)
    assert (req.status, req.decision_note) == ("denied", "Alice handles this client herself")
    assert [n.kind for n in notices(db, "charlie")] == ["access.denied"]
    mine = browser("charlie").get("/access-requests").text
    assert "badge denied" in mine and "Alice handles this client herself" in mine
    # Decided is decided: no second verdict.
    r = post(bob, f"/approvals/{rid}/approve", {}, from_page="/approvals")
    assert r.status_code == 400 and get_request(db, rid).status == "denied"


@pytest.mark.parametrize("who, ok", [("bob", True), ("grace", True), ("ivan", False), ("henry", False),
                                     ("alice", False), ("charlie", False)])
def test_revoke_by_the_approver_or_a_leader_above_only(browser, db, vault, story, ivan, who, ok):
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no)
    approve(db, rid, by="bob")
    c = browser(who)
    before = last_seq(db)
    r = post(c, f"/approvals/{rid}/revoke", {"note": "done"}, from_page="/inbox")
    new = entries_since(db, before, who)
    req = get_request(db, rid)
    if ok:
        assert r.status_code == 303
        assert access.status_of(req) == "revoked" and req.revoked_by_id is not None
        assert [(e.action, e.grant_id) for e in new] == [("access.revoke", rid)]
        assert {n.kind for n in notices(db, "charlie")} >= {"access.revoked"}
        assert "access.revoked" in {n.kind for n in notices(db, "alice")}
    else:
        assert r.status_code == 403
        assert access.status_of(req) == "active"
        assert [e.outcome for e in new] == ["denied"]


def test_only_an_active_grant_can_be_revoked(browser, db, vault, story):
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no)
    r = post(browser("bob"), f"/approvals/{rid}/revoke", {}, from_page="/approvals")
    assert r.status_code == 400 and get_request(db, rid).status == "pending"


def test_an_unknown_request_or_verdict(browser, db, vault, story):
    bob = browser("bob")
    assert post(bob, "/approvals/999999/approve", {}, from_page="/approvals").status_code == 404
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no)
    assert post(bob, f"/approvals/{rid}/bless", {}, from_page="/approvals").status_code == 400
    assert get_request(db, rid).status == "pending"


# ---------------------------------------------------------------- after the file moves

@pytest.fixture
def kim(db, story):
    """A salesperson on team 755B (ivan's team): grace hands alice's file to her."""
    with db.write() as s:
        return accounts.add_user(s, "kim", "salesperson", "755B", PASSWORD, display_name="Kim").id


def move_to_kim(db, f: AlicesFile) -> None:
    """Grace (leading the 755 region) hands alice's file (755A, bob's) to kim (755B, ivan's)."""
    with db.write() as s:
        customers.reassign_file(s, actor(db, "grace"), uuid.UUID(f.id), "kim", "alice moved to retail")


def in_queue(client, rid: int) -> bool:
    page = client.get("/approvals")
    assert page.status_code == 200
    return f'id="request-{rid}"' in page.text


def test_old_leader_cannot_approve_after_reassignment(browser, db, vault, story, ivan, kim):
    """Frank asks for alice's file; before bob decides, the file moves to ivan's team. Bob no
    longer sees the request and is refused (audited) as page and HTMX; frank still cannot open it."""
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no, who="frank")
    bob = browser("bob")
    assert in_queue(bob, rid)
    move_to_kim(db, f)
    assert not in_queue(bob, rid)
    for headers in ({}, {"HX-Request": "true"}):
        before = last_seq(db)
        r = post(bob, f"/approvals/{rid}/approve", {"hours": "2"}, from_page="/approvals", headers=headers)
        assert r.status_code == 403
        assert [(e.action, e.outcome, e.object_id) for e in entries_since(db, before, "bob")] == [
            ("access.decide", "denied", f.file_no)]
        assert get_request(db, rid).status == "pending"
    with db.write() as s, pytest.raises(PermissionDenied):
        access.decide(s, actor(db, "bob"), rid, True)
    r = browser("frank").get(f"/customers/{f.id}")
    assert r.status_code == 403 and f.mobile not in r.text


def test_new_leader_sees_approves_and_revokes_after_reassignment(browser, db, vault, story, ivan, kim):
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no, who="frank")
    assert notices(db, "ivan") == []
    move_to_kim(db, f)
    # Ivan now answers for the file: he is told of the request waiting for him and sees it.
    assert [n.kind for n in notices(db, "ivan")] == ["access.to_decide"]
    iv = browser("ivan")
    assert in_queue(iv, rid)
    r = post(iv, f"/approvals/{rid}/approve", {"hours": "2"}, from_page="/approvals")
    assert r.status_code == 303
    req = get_request(db, rid)
    assert access.status_of(req) == "active" and req.decided_by_id == ivan
    frank = browser("frank")
    assert frank.get(f"/customers/{f.id}").status_code == 200
    # The old leader may not end what the new one granted; the new one may.
    r = post(browser("bob"), f"/approvals/{rid}/revoke", {"note": "not mine"}, from_page="/approvals")
    assert r.status_code == 403 and access.status_of(get_request(db, rid)) == "active"
    r = post(iv, f"/approvals/{rid}/revoke", {"note": "done"}, from_page="/approvals",
             headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text
    assert access.status_of(get_request(db, rid)) == "revoked"
    assert frank.get(f"/customers/{f.id}").status_code == 403


def test_a_grant_ends_when_its_file_moves_to_another_unit(browser, db, vault, story, ivan, kim):
    """Bob approved frank's grant while the file was his team's. The move ends it at once: frank
    is told and can no longer open the file; the ending is audited with the grant's id. The old
    leader keeps nothing to revoke, and the new leaders inherit no grant they never approved."""
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no, who="frank")
    approve(db, rid, by="bob")
    frank = browser("frank")
    assert frank.get(f"/customers/{f.id}").status_code == 200
    before = last_seq(db)
    move_to_kim(db, f)
    req = get_request(db, rid)
    assert access.status_of(req) == "revoked" and req.revoked_by_id == story.users["grace"]
    ended = [e for e in entries_since(db, before, "grace") if e.action == "access.revoke"]
    assert [(e.object_id, e.grant_id, e.outcome) for e in ended] == [(f.file_no, rid, "allowed")]
    assert notices(db, "frank")[-1].kind == "access.ended"
    assert "the file moved to another unit" in frank.get("/inbox").text
    r = frank.get(f"/customers/{f.id}")
    assert r.status_code == 403 and f.mobile not in r.text
    assert not in_queue(browser("bob"), rid) and not in_queue(browser("ivan"), rid)
    # Frank may ask again; the request now goes to ivan.
    rid2 = ask(db, f.file_no, who="frank")
    assert in_queue(browser("ivan"), rid2)


def test_a_grant_survives_a_handover_within_the_same_team(browser, db, vault, story):
    """Bob takes alice's file over himself: the file stays in his team, the same leaders answer
    for frank's grant, so it stays (and bob may still revoke it)."""
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no, who="frank")
    approve(db, rid, by="bob")
    with db.write() as s:
        customers.reassign_file(s, actor(db, "bob"), uuid.UUID(f.id), "bob", "alice is on leave")
    assert access.status_of(get_request(db, rid)) == "active"
    assert browser("frank").get(f"/customers/{f.id}").status_code == 200
    assert in_queue(browser("bob"), rid)


def test_a_request_by_the_new_owner_is_cancelled(db, vault, story, ivan, kim):
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no, who="kim")
    move_to_kim(db, f)
    assert get_request(db, rid).status == "cancelled"
    with db.read() as s:
        assert rid not in [v.request.id for v in access.approval_queue(s, actor(db, "ivan"))]


def test_a_leader_deciding_while_the_file_moves_is_judged_on_its_new_place(db, vault, story, ivan, kim):
    """Grace moves the file and her transaction stays open a moment; bob approves meanwhile.
    Bob waits for the file's lock and is then refused on the file's new place: no grant to frank
    slips through between the move and its commit."""
    import threading
    import time

    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no, who="frank")
    grace, bob = actor(db, "grace"), actor(db, "bob")
    moved, errors = threading.Event(), []

    def grace_moves():
        try:
            with db.write() as s:
                customers.reassign_file(s, grace, uuid.UUID(f.id), "kim", "alice moved to retail")
                moved.set()
                time.sleep(0.8)  # still uncommitted while bob decides
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
            moved.set()

    t = threading.Thread(target=grace_moves)
    t.start()
    assert moved.wait(10)
    with pytest.raises(PermissionDenied):
        with db.write() as s:
            access.decide(s, bob, rid, True)
    t.join(10)
    assert not errors
    assert get_request(db, rid).status == "pending"


# ---------------------------------------------------------------- asking

def _ask_web(client, file_no: str, reason: str = REASON, hours: str = str(HOURS), scope: str = "view"):
    page = client.get(f"/access-requests/new?file_no={file_no}")
    assert page.status_code == 200
    return client.post("/access-requests/new", data={"file_no": file_no, "reason": reason, "scope": scope,
                                                     "hours": hours, "_csrf": csrf_of(page.text)},
                       follow_redirects=False)


def test_charlie_asks_through_the_form(client, db, vault, story):
    f = alices_file(db, vault, story)
    signed_in(client, "charlie")
    before = last_seq(db)
    r = _ask_web(client, f.file_no.replace(" ", ""))  # typed without the space
    assert r.status_code == 303 and r.headers["location"] == "/access-requests"
    with db.read() as s:
        (req,) = s.scalars(select(AccessRequest))
    assert (req.file_no, req.reason, req.scope, req.hours_requested, req.status) == (
        f.file_no, REASON, "view", HOURS, "pending")
    (entry,) = entries_since(db, before, "charlie")
    assert (entry.action, entry.object_id, entry.reason, entry.grant_id) == (
        "access.request", f.file_no, REASON, req.id)
    assert f.file_no in client.get("/access-requests").text


def test_the_refusal_page_offers_to_ask(client, db, vault, story):
    f = alices_file(db, vault, story)
    signed_in(client, "charlie")
    r = client.get(f"/customers/{f.id}")
    assert r.status_code == 403
    assert f'href="/access-requests/new?file_no={f.file_no.replace(" ", "%20")}"' in r.text
    assert f"Request access to file {f.file_no}" in r.text
    form = client.get(f"/access-requests/new?file_no={f.file_no}")
    assert f'value="{f.file_no}"' in form.text


@pytest.mark.parametrize("reason", ["too short", "          ", "", "a  b  c  d", "need it now",
                                    "aaaaaaaaaaaaaaaaaaaaaaaaa", "帮忙看一下"])
def test_a_thin_reason_is_refused_and_nothing_written(client, db, vault, story, reason):
    f = alices_file(db, vault, story)
    signed_in(client, "charlie")
    before, notes = last_seq(db), count(db, Notice)
    r = _ask_web(client, f.file_no, reason=reason)
    assert r.status_code == 400
    assert "Give a fuller reason: who needs the file, and why." in r.text
    assert count(db, AccessRequest) == 0 and count(db, Notice) == notes
    assert not [e for e in entries_since(db, before) if e.action.startswith("access.")]


@pytest.mark.parametrize("hours", ["0", "169", "-1", "1.5", "a week", ""])
def test_a_duration_outside_one_hour_to_a_week_is_refused(client, db, vault, story, hours):
    f = alices_file(db, vault, story)
    signed_in(client, "charlie")
    r = _ask_web(client, f.file_no, hours=hours)
    if hours == "":
        # An empty field means the default duration (24 h), not an error.
        assert r.status_code == 303
        with db.read() as s:
            assert s.scalar(select(AccessRequest.hours_requested)) == access.DEFAULT_HOURS
        return
    assert r.status_code == 400
    assert "The duration must be between 1 hour and 7 days." in r.text
    assert count(db, AccessRequest) == 0


@pytest.mark.parametrize("hours", ["1_0", "+10", "１０", "10\u00a0", "0x10", "٣"])
def test_a_duration_is_digits_only(client, db, vault, story, hours):
    """Python's int() would read "1_0" as 10, "+10" as 10 and "１０" as 10: the form takes only 0-9."""
    f = alices_file(db, vault, story)
    signed_in(client, "charlie")
    r = _ask_web(client, f.file_no, hours=hours)
    assert r.status_code == 400, hours
    assert "The duration must be between 1 hour and 7 days." in r.text
    assert count(db, AccessRequest) == 0


def test_an_approval_shortens_by_digits_only(browser, db, vault, story):
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no, hours=HOURS)
    bob = browser("bob")
    for hours in ("1_0", "+2", "２"):
        r = post(bob, f"/approvals/{rid}/approve", {"hours": hours}, from_page="/approvals")
        assert r.status_code == 400, hours
        assert get_request(db, rid).status == "pending"


@pytest.mark.parametrize("hours", [1, 168])
def test_the_bounds_of_the_duration_are_accepted(db, vault, story, hours):
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no, hours=hours)
    assert get_request(db, rid).hours_requested == hours


def test_other_bad_requests(client, db, vault, story):
    f = alices_file(db, vault, story)
    signed_in(client, "charlie")
    for file_no, message in (("nonsense", "Give a file number like 755 00243."),
                             ("999 99999", "No file has this number.")):
        r = _ask_web(client, file_no)
        assert r.status_code == 400 and message in r.text
    r = _ask_web(client, f.file_no, scope="everything")
    assert r.status_code == 400 and "Choose view, or view and edit." in r.text
    # Asking for what one has already: one's own file.
    with db.read() as s:
        own = s.get(CustomerFile, uuid.UUID(story.files["charlie"][0])).file_no
    r = _ask_web(client, own)
    assert r.status_code == 400 and "You already have access to this file." in r.text
    assert count(db, AccessRequest) == 0


def test_a_second_request_while_one_is_pending_or_active_is_refused(client, db, vault, story):
    f = alices_file(db, vault, story)
    signed_in(client, "charlie")
    assert _ask_web(client, f.file_no).status_code == 303
    dup = "You already have a pending request or an active grant for this file."
    r = _ask_web(client, f.file_no, scope="view_edit")
    assert r.status_code == 400 and dup in r.text
    with db.read() as s:
        rid = s.scalar(select(AccessRequest.id))
    approve(db, rid)
    r = _ask_web(client, f.file_no)
    assert r.status_code == 400 and dup in r.text
    assert count(db, AccessRequest) == 1
    # Once it has ended, a new one may be asked for.
    with db.write() as s:
        access.revoke(s, actor(db, "bob"), rid)
    assert _ask_web(client, f.file_no).status_code == 303
    assert count(db, AccessRequest) == 2


def test_a_leader_may_not_ask_for_a_file_he_already_sees(db, vault, story):
    f = alices_file(db, vault, story)
    with pytest.raises(access.InvalidRequest) as exc:
        ask(db, f.file_no, who="bob", scope="view_edit")
    assert exc.value.errors == {"file_no": "You already have access to this file."}


# ---------------------------------------------------------------- scope of a grant

def test_a_view_grant_does_not_allow_editing(browser, db, vault, story):
    f = alices_file(db, vault, story)
    approve(db, ask(db, f.file_no, scope="view"))
    c = browser("charlie")
    assert c.get(f"/customers/{f.id}").status_code == 200
    assert c.get(f"/customers/{f.id}/edit").status_code == 403
    assert c.get(f"/customers/{f.id}/fields/address?edit=true", headers={"HX-Request": "true"}).status_code == 403
    r = post(c, f"/customers/{f.id}/fields/address", {"value": "广州市天河区某路1号"}, from_page="/inbox",
             headers={"HX-Request": "true"})
    assert r.status_code == 403
    assert alices_file(db, vault, story).address == f.address


def test_every_step_under_a_grant_is_audited_with_its_id(browser, db, vault, story):
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no, scope="view_edit")
    approve(db, rid)
    c = browser("charlie")
    before = last_seq(db)
    assert c.get(f"/customers/{f.id}").status_code == 200
    assert c.get(f"/customers/{f.id}", headers={"HX-Request": "true"}).status_code == 200
    assert c.get(f"/customers/{f.id}/fields/notes", headers={"HX-Request": "true"}).status_code == 200
    assert c.get(f"/customers/{f.id}/fields/address?edit=true", headers={"HX-Request": "true"}).status_code == 200
    assert c.get(f"/customers/{f.id}/edit").status_code == 200
    r = post(c, f"/customers/{f.id}/fields/address", {"value": "广州市天河区某路1号"}, from_page="/inbox",
             headers={"HX-Request": "true"})
    assert r.status_code == 200 and "广州市天河区某路1号" in r.text
    assert alices_file(db, vault, story).address == "广州市天河区某路1号"
    on_file = [e for e in entries_since(db, before, "charlie") if e.object_id == f.file_no]
    # page, fragment, a field; the inline editor, the edit form, the inline save; the saved field.
    assert [e.action for e in on_file] == ["customer.view"] * 3 + ["customer.edit"] * 3 + ["customer.view"]
    assert {e.grant_id for e in on_file} == {rid}
    assert all(e.outcome == "allowed" for e in on_file)


# ---------------------------------------------------------------- the inbox

def test_the_people_concerned_are_told(browser, db, vault, story, ivan):
    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no)
    assert [n.kind for n in notices(db, "alice")] == ["access.requested"]
    assert [n.kind for n in notices(db, "bob")] == ["access.to_decide"]
    assert [n.kind for n in notices(db, "grace")] == ["access.to_decide"]
    assert notices(db, "ivan") == [] and notices(db, "henry") == [] and notices(db, "charlie") == []
    approve(db, rid)
    assert [n.kind for n in notices(db, "alice")] == ["access.requested", "access.granted"]
    assert [n.kind for n in notices(db, "charlie")] == ["access.approved"]
    for n in notices(db, "alice") + notices(db, "charlie") + notices(db, "bob"):
        assert f.mobile not in n.params and f.name not in n.params  # file numbers and usernames only

    alice = browser("alice")
    page = alice.get("/customers")
    assert 'data-testid="unread"' in page.text and '<span class="count" data-testid="unread">2</span>' in page.text
    inbox = alice.get("/inbox").text
    assert f"charlie asked for access to your file {f.file_no}." in inbox
    assert f"charlie was granted access to your file {f.file_no} by bob." in inbox
    assert f.mobile not in inbox
    r = post(alice, "/inbox/read", {}, from_page="/inbox")
    assert r.status_code == 303
    assert 'data-testid="unread"' not in alice.get("/customers").text
    # The notices speak the reader's language.
    zh = browser("charlie", lang="zh-CN").get("/inbox").text
    assert f.file_no in zh and "bob" in zh


# ---------------------------------------------------------------- duplicates on create

DUP_FORM = {"name": "周杰", "gender": "M", "id_number": "", "birthday": "", "address": "广州市越秀区某街2号",
            "employer": "", "position": "", "category": "finance", "notes": ""}


@pytest.mark.parametrize("by", ["mobile", "id_number"])
def test_creating_a_customer_who_has_a_file_elsewhere_names_that_file_only(client, db, vault, story, by):
    f = alices_file(db, vault, story)
    form = {**DUP_FORM, "mobile": "13912345678"}
    form[by] = f.mobile if by == "mobile" else f.id_number
    signed_in(client, "charlie")
    files, before = count(db, CustomerFile), last_seq(db)
    page = client.get("/customers/new")
    r = client.post("/customers/new", data={**form, "_csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 409
    assert 'data-testid="duplicates"' in r.text
    assert f"File {f.file_no}, owner alice" in r.text
    assert f'/access-requests/new?file_no={f.file_no.replace(" ", "%20")}' in r.text
    for secret in (f.name, f.address, "深圳某公司", "偏好茅台"):
        assert secret not in r.text
    if by == "mobile":
        assert f.id_number not in r.text
    assert count(db, CustomerFile) == files
    new = entries_since(db, before, "charlie")
    assert [(e.action, e.object_id, e.fields) for e in new] == [("customer.duplicate_check", f.file_no, by if by == "mobile" else "mobile,id_number")]


def test_creating_a_customer_one_has_already_says_so(client, db, vault, story):
    with db.read() as s:
        own = s.get(CustomerFile, uuid.UUID(story.files["charlie"][0]))
        mobile = customers._open(vault, own, ("mobile",))["mobile"]
    signed_in(client, "charlie")
    page = client.get("/customers/new")
    r = client.post("/customers/new", data={**DUP_FORM, "mobile": mobile, "_csrf": csrf_of(page.text)},
                    follow_redirects=False)
    assert r.status_code == 409 and f"File {own.file_no}, owner charlie" in r.text and "(yours)" in r.text


def test_a_new_customer_without_a_duplicate_is_created_and_not_checked_in_the_log(client, db, story):
    signed_in(client, "charlie")
    page = client.get("/customers/new")
    form = {**DUP_FORM, "mobile": "13912345678", "id_number": valid_id(seq="777")}
    before = last_seq(db)
    r = client.post("/customers/new", data={**form, "_csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert [e.action for e in entries_since(db, before, "charlie")] == ["customer.create"]


# ---------------------------------------------------------------- the owner's view of a file

def test_the_owner_sees_who_holds_access_and_until_when(browser, db, vault, story):
    f = alices_file(db, vault, story)
    approve(db, ask(db, f.file_no), hours=3)
    page = browser("alice").get(f"/customers/{f.id}").text
    section = page.split('data-testid="file-grants"', 1)[1].split("</section>", 1)[0]
    assert "charlie" in section and "badge active" in section and "2 h 59 min left" in section
    assert REASON in section
    # The leader above may revoke from the file page; the owner may not.
    assert "/revoke" not in section
    leader_page = browser("bob").get(f"/customers/{f.id}").text
    assert "/revoke" in leader_page.split('data-testid="file-grants"', 1)[1].split("</section>", 1)[0]


def test_a_view_and_edit_grantee_is_offered_the_edit_controls(browser, db, vault, story):
    f = alices_file(db, vault, story)
    approve(db, ask(db, f.file_no, scope="view_edit"))
    page = browser("charlie").get(f"/customers/{f.id}").text
    assert f'href="/customers/{f.id}/edit"' in page


# ---------------------------------------------------------------- two leaders at once

def test_two_leaders_deciding_at_once_make_one_decision(db, vault, story):
    """Bob approves while grace, a moment later, refuses: whoever comes second finds the request
    decided (the row is locked while deciding), so there is one decision, one entry, one notice."""
    import threading
    import time

    f = alices_file(db, vault, story)
    rid = ask(db, f.file_no)
    bob, grace = actor(db, "bob"), actor(db, "grace")
    decided, errors = threading.Event(), []

    def bob_approves():
        try:
            with db.write() as s:
                access.decide(s, bob, rid, True)
                decided.set()
                time.sleep(0.8)  # still uncommitted while grace tries
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
            decided.set()

    t = threading.Thread(target=bob_approves)
    t.start()
    assert decided.wait(10)
    with pytest.raises(access.InvalidRequest):
        with db.write() as s:
            access.decide(s, grace, rid, False, note="Alice handles this client herself")
    t.join(10)
    assert not errors
    req = get_request(db, rid)
    assert (req.status, req.decided_by_id) == ("approved", story.users["bob"])
    with db.read() as s:
        decisions = list(s.scalars(select(AuditEvent.action).where(
            AuditEvent.action.in_(("access.approve", "access.deny")))))
    assert decisions == ["access.approve"]
    assert [n.kind for n in notices(db, "charlie")] == ["access.approved"]
