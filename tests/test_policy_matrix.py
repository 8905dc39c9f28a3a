"""The policy matrix: every story user x every customer route x how the file relates to them.

The expectations are written out by hand (not computed from the policy) so that a change to
policy.csv, to `can()` or to a route that forgets to ask shows up here as a failing row.
A property test then checks, on generated organisations, that the SQL scope used by lists
and the per-file decision `can()` never disagree.
"""
from __future__ import annotations

import csv
import io
import itertools
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal import clock
from portal.access.models import AccessRequest
from portal.access.service import active_grant, grant_relation

from portal.accounts import service as accounts
from portal.accounts.actor import Actor
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.customers import listing
from portal.customers import service as customers
from portal.customers.models import PERSONAL_FIELDS, CustomerFile
from portal.org import service as org
from portal.org.models import OrgUnit
from portal import policy
from portal.policy import Action, can, customer_scope
from portal.policy.actions import Relation

from .browser import post, signed_in
from .factories import PASSWORD, customer_input

# ---------------------------------------------------------------- the matrix

# user, how the file relates to them, whose file it is, sees it, may edit it, may reassign it
MATRIX = [
    ("alice", "own", "alice", True, True, False),
    ("alice", "same team", "bob", False, False, False),
    ("alice", "other team", "charlie", False, False, False),
    ("alice", "other region", "frank", False, False, False),
    ("bob", "own", "bob", True, True, True),
    ("bob", "same team", "alice", True, False, True),
    ("bob", "other team", "charlie", False, False, False),
    ("bob", "other region", "frank", False, False, False),
    ("charlie", "own", "charlie", True, True, False),
    ("charlie", "other team", "alice", False, False, False),
    ("charlie", "other region", "frank", False, False, False),
    ("frank", "own", "frank", True, True, False),
    ("frank", "other region", "alice", False, False, False),
    # grace leads the whole 755 region: both of its teams are below her.
    ("grace", "team in her region", "alice", True, False, True),
    ("grace", "other team in her region", "charlie", True, False, True),
    ("grace", "other region", "frank", False, False, False),
    ("henry", "same team", "frank", True, False, True),
    ("henry", "other region", "alice", False, False, False),
]
# Roles that may not touch customer files at all: every customer route is refused outright.
NO_CUSTOMER_ROLES = [("dave", "auditor"), ("erin", "admin"), ("cathy", "customer service")]
ACTIONS = ("page", "fragment", "field", "edit_form", "inline_edit", "reassign", "list", "search",
           "export")
# Which route-level action each matrix action needs, and what it is audited as.
AUDITED_AS = {"page": "customer.view", "fragment": "customer.view", "field": "customer.view",
              "edit_form": "customer.edit", "inline_edit": "customer.edit",
              "reassign": "customer.reassign", "list": "customer.list", "search": "customer.list",
              "export": "customer.export"}
# Whom each leader hands a file to when the matrix says they may reassign it.
REASSIGN_TO = {"bob": {"bob": "alice", "alice": "bob"}, "grace": {"alice": "charlie", "charlie": "alice"},
               "henry": {"frank": "henry"}}

NEW_ADDRESS = "广州市天河区矩阵路7号"
REASON = "matrix test: owner moves teams"


@dataclass
class FileFacts:
    id: str
    file_no: str
    mobile: str
    address: str
    owner_id: int


def facts(db, vault, file_id: str) -> FileFacts:
    with db.read() as s:
        f = s.get(CustomerFile, uuid.UUID(file_id))
        p = customers._open(vault, f, ("mobile", "address"))
        return FileFacts(file_id, f.file_no, p["mobile"], p["address"], f.owner_id)


def last_seq(db) -> int:
    with db.read() as s:
        return s.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) or 0


def entries_since(db, seq: int, username: str) -> list[AuditEvent]:
    with db.read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.seq > seq,
                                                       AuditEvent.actor_username == username)
                              .order_by(AuditEvent.seq)))


def _do(action: str, client, f: FileFacts, user: str, owner: str):
    """Perform one matrix action on file f, as a browser would; returns the response."""
    if action == "page":
        return client.get(f"/customers/{f.id}")
    if action == "fragment":
        return client.get(f"/customers/{f.id}", headers={"HX-Request": "true"})
    if action == "field":
        return client.get(f"/customers/{f.id}/fields/mobile", headers={"HX-Request": "true"})
    if action == "edit_form":
        return client.get(f"/customers/{f.id}/edit")
    if action == "inline_edit":
        return post(client, f"/customers/{f.id}/fields/address", {"value": NEW_ADDRESS},
                    from_page="/welcome", headers={"HX-Request": "true"})
    if action == "reassign":
        to = REASSIGN_TO.get(user, {}).get(owner, user)
        return post(client, f"/customers/{f.id}/reassign", {"owner": to, "reason": REASON},
                    from_page="/welcome")
    if action == "list":
        return client.get("/customers")
    if action == "search":
        return post(client, "/customers/search", {"q": f.mobile}, from_page="/welcome")
    if action == "export":
        return post(client, "/customers/export.csv", {"purpose": "test"}, from_page="/welcome")
    raise AssertionError(action)


def _allowed(action: str, sees: bool, edits: bool, reassigns: bool) -> bool:
    if action in ("edit_form", "inline_edit"):
        return edits
    if action == "reassign":
        return reassigns
    return sees


def _cases():
    for user, relation, owner, sees, edits, reassigns in MATRIX:
        for action in ACTIONS:
            ok = _allowed(action, sees, edits, reassigns)
            verb = "may" if ok else "may_not"
            yield pytest.param(user, owner, action, ok, True,
                               id=f"{user}_{verb}_{action}_{relation.replace(' ', '_')}_file")
    for user, role in NO_CUSTOMER_ROLES:
        for owner, relation in (("alice", "755"), ("frank", "010")):
            for action in ACTIONS:
                yield pytest.param(user, owner, action, False, False,
                                   id=f"{user}_the_{role.replace(' ', '_')}_may_not_{action}_a_{relation}_file")


@pytest.mark.parametrize("user, owner, action, allowed, role_may_touch_files", list(_cases()))
def test_policy_matrix(client, db, vault, story, user, owner, action, allowed, role_may_touch_files):
    f = facts(db, vault, story.files[owner][0])
    signed_in(client, user)
    before = last_seq(db)

    r = _do(action, client, f, user, owner)
    new = entries_since(db, before, user)

    if not role_may_touch_files:
        # Auditors, admins and customer service are stopped at the route, before any file is read.
        assert r.status_code == 403, (r.status_code, r.text[:300])
        assert f.mobile not in r.text and f.file_no not in r.text
        denied = [e for e in new if e.outcome == "denied"]
        assert [e.action for e in denied] == [AUDITED_AS[action]]
        assert not [e for e in new if e.outcome == "allowed" and e.action.startswith("customer.")]
        _assert_unchanged(db, vault, f)
        return

    if action in ("list", "search", "export"):
        assert r.status_code == 200, r.text[:300]
        body = r.content.decode("utf-8-sig") if action == "export" else r.text
        assert (f.file_no in body) is allowed
        if action == "export":
            assert (f.mobile in body) is allowed
            rows = list(csv.reader(io.StringIO(body)))
            assert (f.file_no in [row[0] for row in rows[1:]]) is allowed
            assert [e.action for e in new if e.outcome == "allowed"] == ["customer.export"]
        elif action == "search":
            searches = [e for e in new if e.action == "customer.search"]
            assert len(searches) == 1 and searches[0].outcome == "allowed"
            assert (f.file_no in searches[0].object_id) is allowed
        else:
            assert [e.action for e in new] == ["customer.list"]
        assert not [e for e in new if e.outcome == "denied"]
        return

    if not allowed:
        assert r.status_code == 403, (r.status_code, r.text[:300])
        assert f.mobile not in r.text
        if action in ("fragment", "field", "inline_edit"):
            assert "<html" not in r.text  # an HTMX request gets the message fragment, not a page
        denied = [e for e in new if e.outcome == "denied"]
        assert len(denied) == 1, [(e.action, e.outcome) for e in new]
        assert denied[0].action == AUDITED_AS[action]
        route_allowed = not (action == "reassign" and user in ("alice", "charlie", "frank"))
        # Refused at the file (its number is recorded) or, for a role without the action, at the route.
        assert denied[0].object_id == (f.file_no if route_allowed else "")
        assert not [e for e in new if e.outcome == "allowed" and e.object_id == f.file_no]
        _assert_unchanged(db, vault, f)
        return

    # Allowed: the response and an 'allowed' entry naming the file and the fields shown.
    if action == "reassign":
        assert r.status_code == 303, r.text[:300]
        (entry,) = [e for e in new if e.action == "customer.reassign"]
        assert entry.outcome == "allowed" and entry.object_id == f.file_no and entry.reason == REASON
        assert facts(db, vault, f.id).owner_id != f.owner_id
        return
    assert r.status_code == 200, r.text[:300]
    if action in ("fragment", "field", "inline_edit"):
        assert "<html" not in r.text
    else:
        assert "<html" in r.text
    if action == "inline_edit":
        assert NEW_ADDRESS in r.text
        assert facts(db, vault, f.id).address == NEW_ADDRESS
        (edit,) = [e for e in new if e.action == "customer.edit"]
        assert edit.outcome == "allowed" and edit.object_id == f.file_no and edit.fields == "address"
        return
    assert f.mobile in r.text  # shown in full, after the entry was written
    (entry,) = [e for e in new if e.object_id == f.file_no]
    assert entry.outcome == "allowed"
    assert entry.action == AUDITED_AS[action]
    expected_fields = "mobile" if action == "field" else ",".join(PERSONAL_FIELDS)
    assert entry.fields == expected_fields


def _assert_unchanged(db, vault, f: FileFacts) -> None:
    now = facts(db, vault, f.id)
    assert (now.address, now.owner_id) == (f.address, f.owner_id)


# ---------------------------------------------------------------- other areas by role

@pytest.mark.parametrize("user", ["alice", "bob", "grace", "cathy", "erin"])
@pytest.mark.parametrize("path", ["/audit", "/audit/integrity", "/audit/export.csv",
                                  "/audit/history?file=755%2000001"])
def test_only_auditors_open_the_audit_log(client, db, story, user, path):
    signed_in(client, user)
    before = last_seq(db)
    r = client.get(path)
    assert r.status_code == 403
    assert [e.outcome for e in entries_since(db, before, user)] == ["denied"]


@pytest.mark.parametrize("user", ["alice", "bob", "grace", "dave", "cathy"])
@pytest.mark.parametrize("path", ["/admin/users", "/admin/units"])
def test_only_admins_open_administration(client, db, story, user, path):
    signed_in(client, user)
    before = last_seq(db)
    r = client.get(path)
    assert r.status_code == 403
    assert [e.outcome for e in entries_since(db, before, user)] == ["denied"]


@pytest.mark.parametrize("user", ["alice", "bob", "dave"])
def test_only_admins_add_users(client, db, story, user):
    signed_in(client, user)
    r = post(client, "/admin/users", {"username": "mallory", "role": "admin", "unit": "HQ",
                                      "password": "a perfectly long passphrase"}, from_page="/welcome")
    assert r.status_code == 403
    with db.read() as s:
        assert s.scalar(select(User).where(User.username == "mallory")) is None


@pytest.mark.parametrize("user", ["alice", "dave", "erin", "cathy"])
def test_only_leaders_open_and_decide_account_approvals(client, db, story, user):
    """A stranger to the account approvals (anyone but a leader) is refused the queue and every
    decision, audited; a leader outside the target unit is refused by the decision itself
    (tests/test_admin_accounts.py)."""
    from portal.accounts import approvals
    with db.write() as s:
        new = approvals.create_account(s, story.actor(db, "erin"), "mallory", "salesperson", "755A",
                                       reason="matrix: a new salesperson")
        change_id = new.change.id
    signed_in(client, user)
    before = last_seq(db)
    assert client.get("/account-approvals").status_code == 403
    for verdict in ("approve", "deny"):
        r = post(client, f"/account-approvals/{change_id}/{verdict}", {"note": "matrix refusal"},
                 from_page="/inbox")
        assert r.status_code == 403
    assert [e.outcome for e in entries_since(db, before, user)] == ["denied"] * 3
    with db.read() as s:
        assert s.scalar(select(User).where(User.username == "mallory")).awaiting_approval


@pytest.mark.parametrize("user", ["alice", "bob", "dave", "cathy"])
def test_only_admins_reset_passwords(client, db, story, user):
    signed_in(client, user)
    before = last_seq(db)
    with db.read() as s:
        old = s.scalar(select(User.password_hash).where(User.username == "charlie"))
    r = post(client, "/admin/users/charlie/reset-password", {}, from_page="/inbox")
    assert r.status_code == 403
    assert [e.outcome for e in entries_since(db, before, user)] == ["denied"]
    with db.read() as s:
        assert s.scalar(select(User.password_hash).where(User.username == "charlie")) == old


@pytest.mark.parametrize("user", ["alice", "bob", "dave", "cathy"])
def test_only_admins_edit_users(client, db, story, user):
    signed_in(client, user)
    assert client.get("/admin/users/charlie/edit").status_code == 403
    r = post(client, "/admin/users/charlie/edit", {"display_name": "C", "role": "leader", "unit": "HQ",
                                                   "reason": "matrix: not allowed"}, from_page="/inbox")
    assert r.status_code == 403
    with db.read() as s:
        assert s.scalar(select(User.role).where(User.username == "charlie")) == "salesperson"


def test_erin_the_admin_sees_users_but_no_customer_data(client, db, vault, story):
    signed_in(client, "erin")
    r = client.get("/admin/users")
    assert r.status_code == 200 and "alice" in r.text
    f = facts(db, vault, story.files["alice"][0])
    assert f.mobile not in r.text and f.file_no not in r.text


def test_dave_the_auditor_sees_the_audit_log(client, story):
    signed_in(client, "dave")
    assert client.get("/audit").status_code == 200
    assert client.get("/audit/integrity").status_code == 200


@pytest.mark.parametrize("user", ["dave", "erin", "cathy"])
def test_roles_without_files_cannot_create_one(client, db, story, user):
    signed_in(client, user)
    with db.read() as s:
        count = len(list(s.scalars(select(CustomerFile.id))))
    assert client.get("/customers/new").status_code == 403
    r = post(client, "/customers/new", {"name": "王五", "gender": "M", "mobile": "13912345678",
                                        "category": "individual"}, from_page="/welcome")
    assert r.status_code == 403
    with db.read() as s:
        assert len(list(s.scalars(select(CustomerFile.id)))) == count


def test_the_policy_does_not_grow_with_files():
    lines = [ln for ln in (Path(policy.__file__).parent / "policy.csv").read_text().splitlines()
             if ln.strip()]
    assert len(lines) < 300  # a role x action table: grows with features, never with data
    # Rules name roles and relations, never a user or a file.
    relations = {r.value for r in Relation}
    for ln in lines:
        if ln.startswith("#"):
            continue
        parts = [p.strip() for p in ln.split(",")]
        assert parts[0] == "p" and parts[4] in relations, ln


# ---------------------------------------------------------------- can() == customer_scope()

ROLES = ["salesperson", "leader", "auditor", "admin", "customer_service"]
SCOPED_ACTIONS = [Action.CUSTOMER_LIST, Action.CUSTOMER_VIEW, Action.CUSTOMER_EXPORT,
                  Action.CUSTOMER_EDIT, Action.CUSTOMER_REASSIGN]
_codes = itertools.count(100000)  # unit codes are digits (regions must be), unique in the process
_names = itertools.count(1)


@st.composite
def organisations(draw):
    """A random unit tree under HQ, users with roles placed in it, and files owned by some of them."""
    n_units = draw(st.integers(1, 6))
    parents = [draw(st.integers(-1, i - 1)) for i in range(n_units)]  # -1: a new region under HQ
    users = draw(st.lists(st.tuples(st.sampled_from(ROLES), st.integers(-1, n_units - 1)),
                          min_size=1, max_size=6))  # unit -1: HQ itself
    files = draw(st.lists(st.integers(0, len(users) - 1), max_size=8))
    # Grants: (holder, file, state); the file index is taken modulo the files actually created.
    grants = draw(st.lists(st.tuples(st.integers(0, len(users) - 1), st.integers(0, 7),
                                     st.sampled_from(GRANT_STATES)), max_size=6))
    return parents, users, files, grants


GRANT_STATES = ["active_view", "active_edit", "expired", "revoked", "pending", "denied"]


def _grant(s, holder: User, f: CustomerFile, state: str) -> None:
    now = clock.now()
    approved = state.startswith("active") or state in ("expired", "revoked")
    s.add(AccessRequest(
        requester_id=holder.id, file_id=f.id, file_no=f.file_no, unit_path=f.unit_path,
        reason="generated for the property test", scope="view_edit" if state == "active_edit" else "view",
        hours_requested=24, created_at=now - timedelta(hours=2),
        status="approved" if approved else state,
        expires_at=(now - timedelta(seconds=1)) if state == "expired" else (now + timedelta(hours=1)) if approved else None,
        revoked_at=now - timedelta(minutes=1) if state == "revoked" else None))


def _build(db, vault, parents, users, files, grants=()) -> None:
    with db.write() as s:
        codes = []
        for parent in parents:
            code = str(next(_codes))
            org.add_unit(s, code, f"单位{code}", codes[parent] if parent >= 0 else "HQ")
            codes.append(code)
        created = []
        for role, unit in users:
            name = f"gen{next(_names)}"
            u = accounts.add_user(s, name, role, codes[unit] if unit >= 0 else "HQ", PASSWORD)
            created.append((u, unit))
    for n, owner in enumerate(files):
        u, unit = created[owner]
        if u.role not in ("salesperson", "leader") or unit < 0:
            continue  # only sales staff own files, and files belong to a region
        with db.write() as s:
            actor = accounts.actor_for(u, s.get(OrgUnit, u.unit_id))
            customers.create_file(s, vault, actor, customer_input(n))
    with db.write() as s:
        made = list(s.scalars(select(CustomerFile).order_by(CustomerFile.created_at)))
        if made:
            for holder, fi, state in grants:
                _grant(s, created[holder][0], made[fi % len(made)], state)


@hyp_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(organisations())
def test_can_and_customer_scope_agree_on_generated_organisations(db, vault, story, org_spec):
    _build(db, vault, *org_spec)
    with db.read() as s:
        files = list(s.execute(select(CustomerFile.id, CustomerFile.owner_id, CustomerFile.unit_path)))
        people = list(s.execute(select(User, OrgUnit).join(OrgUnit, OrgUnit.id == User.unit_id)))
        for user, unit in people:
            actor = accounts.actor_for(user, unit)
            # The decision side reads each file's active grant as open_for() does (once per file:
            # a grant does not depend on the action).
            grants = {fid: grant_relation(active_grant(s, user.id, fid)) for fid, _o, _p in files}
            for action in SCOPED_ACTIONS:
                in_scope = set(s.scalars(select(CustomerFile.id).where(customer_scope(actor, action))))
                decided = {fid for fid, owner_id, path in files
                           if can(actor, action, owner_id=owner_id, unit_path=path, grant=grants[fid])}
                assert in_scope == decided, (user.username, user.role, unit.path, action)
                if action is Action.CUSTOMER_LIST:  # the list page's own statements (scope arms per unit)
                    listed = {r.id for r in listing.read_page(s.connection(), vault, actor, limit=500).rows}
                    assert listed == decided, (user.username, user.role, unit.path, "list page")


MEMBER_SCOPED = [Action.MEMBER_LISTS, Action.MEMBER_VIEW]


@hyp_settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(organisations())
def test_can_and_member_scope_agree_on_generated_organisations(db, vault, story, org_spec):
    """Member lists filter memberships by the owner and unit they copy from their file: the same
    answer as deciding file by file."""
    from portal.membership import members
    from portal.policy.scope import member_scope
    from portal.membership.models import Membership

    _build(db, vault, *org_spec)
    with db.write() as s:
        # Examples share the database: enrol the files that are not members yet.
        for fid in s.scalars(select(CustomerFile.id).where(
                CustomerFile.id.not_in(select(Membership.customer_id)))).all():
            members.enrol(s, Actor.system("test"), fid, cause="import")
    with db.read() as s:
        rows = list(s.execute(select(Membership.id, CustomerFile.id, CustomerFile.owner_id, CustomerFile.unit_path)
                              .join(CustomerFile, CustomerFile.id == Membership.customer_id)))
        people = list(s.execute(select(User, OrgUnit).join(OrgUnit, OrgUnit.id == User.unit_id)))
        for user, unit in people:
            actor = accounts.actor_for(user, unit)
            grants = {fid: grant_relation(active_grant(s, user.id, fid)) for _m, fid, _o, _p in rows}
            for action in MEMBER_SCOPED:
                in_scope = set(s.scalars(select(Membership.id).where(member_scope(actor, action))))
                decided = {mid for mid, fid, owner_id, path in rows
                           if can(actor, action, owner_id=owner_id, unit_path=path, grant=grants[fid])}
                assert in_scope == decided, (user.username, user.role, unit.path, action)


# ---------------------------------------------------------------- the membership programme's matrix

# Which membership actions each story user may take on alice's client (755A) — written out by hand.
# bob leads 755A, grace the 755 region, henry another region; cathy is customer service.
P, R, SV, ADJ, CL, AP, RV, TI, LI, CM, CC, V, SL, SC = (
    Action.MEMBER_PURCHASE, Action.MEMBER_REDEEM, Action.MEMBER_STORED_VALUE, Action.MEMBER_ADJUST,
    Action.MEMBER_CLAIM, Action.MEMBER_APPLY, Action.MEMBER_REVIEW, Action.MEMBER_TIER, Action.MEMBER_LISTS,
    Action.CARD_MANAGE, Action.CARD_CANCEL, Action.MEMBER_VIEW, Action.SERVICE_LOOKUP, Action.SERVICE_CARD)
EX = Action.MEMBER_EXCEPTION  # a leader above the file waives an application's joining condition
MEMBER_MATRIX = {
    "alice": {V, P, R, SV, AP, LI, CM},
    "charlie": set(),
    "frank": set(),
    "bob": {V, P, R, SV, ADJ, AP, TI, LI, CM, CC, EX},
    "grace": {V, P, R, SV, ADJ, AP, TI, LI, CM, CC, EX},
    "henry": set(),
    "cathy": {SL, SC, CL, RV},  # the desk's look-up and card steps, claims, reviews: no PIN, no renewal
    "dave": set(),
    "erin": set(),
}


@pytest.mark.parametrize("user", list(MEMBER_MATRIX))
def test_membership_actions_on_alices_client(db, story, user):
    actor = story.actor(db, user)
    with db.read() as s:
        f = s.get(CustomerFile, uuid.UUID(story.files["alice"][0]))
    allowed = {a for a in (P, R, SV, ADJ, CL, AP, RV, TI, LI, CM, CC, V, SL, SC, EX)
               if can(actor, a, owner_id=f.owner_id, unit_path=f.unit_path)}
    assert allowed == MEMBER_MATRIX[user]


def test_a_terminal_serves_only_its_units_members(db, story):
    with db.read() as s:
        f = s.get(CustomerFile, uuid.UUID(story.files["alice"][0]))
        units = {u.code: u for u in s.scalars(select(OrgUnit))}
    def till(code):
        return Actor(user_id=None, username="terminal:t", role="terminal", unit_id=units[code].id,
                     unit_path=units[code].path, terminal_id=1)
    assert can(till("755A"), Action.MEMBER_POS, owner_id=f.owner_id, unit_path=f.unit_path)
    assert can(till("755"), Action.MEMBER_POS, owner_id=f.owner_id, unit_path=f.unit_path)
    assert not can(till("755B"), Action.MEMBER_POS, owner_id=f.owner_id, unit_path=f.unit_path)
    assert not can(till("010"), Action.MEMBER_POS, owner_id=f.owner_id, unit_path=f.unit_path)
    # A terminal does nothing but POS calls.
    assert not can(till("755A"), Action.CUSTOMER_VIEW, owner_id=f.owner_id, unit_path=f.unit_path)
    assert not can(till("755A"), Action.MEMBER_ADJUST, owner_id=f.owner_id, unit_path=f.unit_path)


@pytest.mark.parametrize("user", ["alice", "charlie", "henry", "cathy", "dave", "erin"])
def test_only_a_leader_above_the_file_waives_the_joining_condition(client, db, story, user):
    """The route itself refuses everyone but bob and grace (page POST and HTMX alike)."""
    from portal.membership import applications
    from .browser import post, signed_in
    fid = uuid.UUID(story.files["alice"][2])
    with db.write() as s:
        app = applications.submit_application(s, story.actor(db, "alice"), fid, card_type="standard")
    signed_in(client, user)
    url = f"/customers/{fid}/applications/{app.id}/exception"
    for headers in ({}, {"HX-Request": "true"}):
        r = post(client, url, {"reason": "a stranger waives the condition"}, from_page="/inbox", headers=headers)
        assert r.status_code in (403, 404)
    with db.read() as s:
        from portal.membership.models import MembershipApplication
        assert s.get(MembershipApplication, app.id).exception_by_id is None
    signed_in(client, "bob")
    r = post(client, url, {"reason": "key account, joins without spend"}, from_page="/inbox")
    assert r.status_code == 303
    with db.read() as s:
        assert s.get(MembershipApplication, app.id).exception_by_id == story.users["bob"]
# ---------------------------------------------------------------- customer service: the desk and nothing more

# What the README gives customer service, as the policy's actions: the desk's masked look-up and
# its card steps (loss, freeze), missed-points claims, application review; plus the programme's
# figures and one's own account. Every other action is refused to it.
CUSTOMER_SERVICE_MAY = {Action.SERVICE_LOOKUP, Action.SERVICE_CARD, Action.MEMBER_CLAIM, Action.MEMBER_REVIEW,
                        Action.PROGRAMME_VIEW, Action.ACCOUNT_SELF,
                        # member service: customer service works the complaints queue (seed 001 六.2)
                        Action.COMPLAINT_RECORD, Action.COMPLAINT_VIEW, Action.COMPLAINT_WORK,
                        Action.COMPLAINT_ANALYSIS}
# ... and member events: the calendar, registering any member and checking them in (events/).
CUSTOMER_SERVICE_MAY |= {Action.EVENT_VIEW, Action.EVENT_REGISTER, Action.EVENT_CHECKIN}
CUSTOMER_SERVICE_MAY |= {Action.MESSAGES_OUTBOX}  # the outbox of messages to members (masked), to work it
MEMBER_PIN = "246810"


def test_customer_service_may_perform_exactly_the_desks_actions(db, story):
    cathy = story.actor(db, "cathy")
    assert {a for a in Action if policy.may_perform(cathy, a)} == CUSTOMER_SERVICE_MAY
    # The desk's actions are customer service's own: no other role holds them.
    for user in ("alice", "bob", "grace", "dave", "erin"):
        actor = story.actor(db, user)
        assert not policy.may_perform(actor, Action.SERVICE_LOOKUP), user
        assert not policy.may_perform(actor, Action.SERVICE_CARD), user


@dataclass
class Member:
    file_id: str
    number: str


@pytest.fixture
def member(db, vault, story) -> Member:
    """Alice's client as a member: a card with stored value, a PIN, points and a purchase."""
    from portal.membership import cards, members, points, purchases
    from portal.membership.outcomes import PurchaseRequest
    from portal.membership.rules import PurchaseLine

    alice = story.actor(db, "alice")
    fid = uuid.UUID(story.files["alice"][0])
    with db.write() as s:
        m = members.enrol(s, alice, fid, cause="application")
        number = members.current_card(s, members.primary_account(s, m).id).number
    with db.write() as s:
        points.recharge_stored_value(s, alice, number, 500_000, payment_method="cash")
        cards.set_pin(s, alice, number, MEMBER_PIN)
    with db.write() as s:
        purchases.record_purchase(s, vault, alice, PurchaseRequest(
            receipt_no="CS-1", lines=(PurchaseLine("茅台", 1, 150_000),), payment_method="cash",
            card_number=number))
    return Member(str(fid), number)


def membership_state(db, file_id: str) -> tuple:
    """Everything a card step could change: PIN, tier, cards, accounts, ledgers, history, sales."""
    from portal.membership.models import (CardAccount, MemberCard, MemberEvent, Membership,
                                          MembershipApplication, PointsEntryRow, Purchase, Redemption,
                                          StoredValueEntryRow)
    with db.read() as s:
        m = s.scalar(select(Membership).where(Membership.customer_id == uuid.UUID(file_id)))
        accounts = list(s.scalars(select(CardAccount).where(CardAccount.membership_id == m.id)
                                  .order_by(CardAccount.id)))
        ids = [a.id for a in accounts]
        cards_ = [(c.number, c.status) for c in s.scalars(select(MemberCard).where(
            MemberCard.account_id.in_(ids)).order_by(MemberCard.id))]

        def n(model, *where):
            return len(list(s.scalars(select(model).where(*where))))
        return (m.pin_hash, m.tier, m.status, cards_,
                [(a.status, a.points_balance, a.stored_value_fen, a.expires_on) for a in accounts],
                n(MemberEvent, MemberEvent.membership_id == m.id),
                n(PointsEntryRow, PointsEntryRow.account_id.in_(ids)),
                n(StoredValueEntryRow, StoredValueEntryRow.account_id.in_(ids)),
                n(Redemption, Redemption.account_id.in_(ids)), n(Purchase),
                n(MembershipApplication, MembershipApplication.customer_id == uuid.UUID(file_id)))


REASON_CS = "member called the service desk"
# Every card and membership step on a file (and the catalogue page), with the action its route
# declares: customer service is refused each one, as a plain form POST and as an HTMX POST.
CS_REFUSED_POSTS = [
    ("set_the_pin", "/cards/pin", {"pin": "111111"}, Action.CARD_MANAGE),
    ("renew", "/cards/renew", {"reason": REASON_CS}, Action.CARD_MANAGE),
    ("replace", "/cards/replace", {"reason": REASON_CS}, Action.CARD_MANAGE),
    ("freeze_on_the_file", "/cards/freeze", {"reason": REASON_CS}, Action.CARD_MANAGE),
    ("unfreeze_on_the_file", "/cards/unfreeze", {"reason": REASON_CS}, Action.CARD_MANAGE),
    ("report_loss_on_the_file", "/cards/loss", {"reason": REASON_CS}, Action.CARD_MANAGE),
    ("cancel", "/cards/cancel", {"reason": REASON_CS}, Action.CARD_CANCEL),
    ("restore", "/cards/restore", {"reason": REASON_CS, "keep_points": "yes"}, Action.CARD_CANCEL),
    ("redeem_on_the_file", "/redeem", {"item": "gift-100"}, Action.MEMBER_REDEEM),
    ("recharge", "/stored-value/recharge", {"amount": "4000.00", "payment_method": "cash"},
     Action.MEMBER_STORED_VALUE),
    ("spend", "/stored-value/spend", {"amount": "4000.00", "pin": MEMBER_PIN}, Action.MEMBER_STORED_VALUE),
    ("adjust_points", "/points/adjust", {"points": "1000", "reason": REASON_CS}, Action.MEMBER_ADJUST),
    ("points_for_cash", "/points/cash", {"points": "1000"}, Action.MEMBER_REDEEM),
    ("adjust_stored_value", "/stored-value/adjust", {"amount": "100.00", "reason": REASON_CS},
     Action.MEMBER_ADJUST),
    ("return_a_purchase", "/purchases/return", {"receipt_no": "CS-1", "reason": REASON_CS},
     Action.MEMBER_PURCHASE),
    ("record_a_purchase", "/purchases/new", {"receipt_no": "CS-2", "purchased_on": "", "payment_method":
                                             "stored_value", "pin": MEMBER_PIN, "product_1": "茅台",
                                             "qty_1": "1", "price_1": "4000.00"}, Action.MEMBER_PURCHASE),
    ("set_the_tier", "/tier", {"tier": "platinum", "reason": REASON_CS}, Action.MEMBER_TIER),
    ("apply", "/apply", {"card_type": "standard", "note": REASON_CS}, Action.MEMBER_APPLY),
    ("quote_a_purchase", "/purchases/new", {"quote": "1", "product_1": "茅台", "price_1": "4000.00"},
     Action.MEMBER_PURCHASE),
]
# Pages (and their HTMX fragments) that show or start those steps.
CS_REFUSED_PAGES = [
    ("file_page", "/customers/{id}", Action.CUSTOMER_VIEW),
    ("purchase_form", "/customers/{id}/purchases/new", Action.MEMBER_PURCHASE),
    ("catalogue", "/redeem", Action.MEMBER_REDEEM),
    ("expiring_points_list", "/members/expiring", Action.MEMBER_LISTS),
    ("birthday_list", "/members/birthdays", Action.MEMBER_LISTS),
]


def _refused_once(db, before: int, action: Action, number: str, r) -> None:
    assert r.status_code == 403, (r.status_code, r.text[:300])
    new = entries_since(db, before, "cathy")
    assert [(e.action, e.outcome) for e in new] == [(action.value, "denied")]
    assert number not in r.text


@pytest.mark.parametrize("as_htmx", [False, True], ids=["POST", "HTMX_POST"])
@pytest.mark.parametrize("name, path, data, action", [pytest.param(*c, id=c[0]) for c in CS_REFUSED_POSTS])
def test_customer_service_cannot_take_a_card_step_on_a_file(client, db, story, member, name, path, data,
                                                            action, as_htmx):
    signed_in(client, "cathy")
    state = membership_state(db, member.file_id)
    before = last_seq(db)
    r = post(client, f"/customers/{member.file_id}{path}", {**data, "card": member.number},
             from_page="/service", headers={"HX-Request": "true"} if as_htmx else {})
    _refused_once(db, before, action, member.number, r)
    if as_htmx:
        assert "<html" not in r.text
    assert membership_state(db, member.file_id) == state


def test_customer_service_cannot_redeem_at_the_catalogue(client, db, story, member):
    signed_in(client, "cathy")
    state = membership_state(db, member.file_id)
    for step in ("lookup", "redeem"):
        before = last_seq(db)
        r = post(client, "/redeem", {"card": member.number, "item": "gift-100", "step": step},
                 from_page="/service")
        _refused_once(db, before, Action.MEMBER_REDEEM, member.number, r)
    assert membership_state(db, member.file_id) == state


@pytest.mark.parametrize("as_htmx", [False, True], ids=["page", "fragment"])
@pytest.mark.parametrize("name, path, action", [pytest.param(*c, id=c[0]) for c in CS_REFUSED_PAGES])
def test_customer_service_cannot_open_a_members_pages(client, db, vault, story, member, name, path, action,
                                                      as_htmx):
    f = facts(db, vault, member.file_id)
    signed_in(client, "cathy")
    before = last_seq(db)
    r = client.get(path.format(id=member.file_id), headers={"HX-Request": "true"} if as_htmx else {})
    _refused_once(db, before, action, member.number, r)
    assert f.mobile not in r.text and f.file_no not in r.text
    if as_htmx:
        assert "<html" not in r.text


def test_customer_service_cannot_set_a_members_pin(app, client, db, vault, story, member):
    """The reported attack: cathy sets a member's PIN through the file route, then spends the
    member's stored value with it. The PIN is refused, so the spend with cathy's PIN is too,
    while the member's own PIN still works."""
    from portal.membership import cards, points
    from portal.membership.cards import HolderNotVerified

    signed_in(client, "cathy")
    r = post(client, f"/customers/{member.file_id}/cards/pin", {"card": member.number, "pin": "111111"},
             from_page="/service")
    assert r.status_code == 403
    alice = story.actor(db, "alice")
    with pytest.raises(HolderNotVerified):
        with db.write() as s:
            points.spend_stored_value(s, vault, alice, member.number, 400_000, pin="111111")
    with db.write() as s:
        points.spend_stored_value(s, vault, alice, member.number, 400_000, pin=MEMBER_PIN)
        assert cards.find_card(s, alice, member.number, Action.MEMBER_VIEW).account.stored_value_fen == 100_000


def test_the_customer_service_matrix_covers_every_membership_route(app):
    """A new card or membership route must be added to the lists above (or be one of the desk's)."""
    covered = {f"/customers/{{file_id:uuid}}{path}" for _, path, _, _ in CS_REFUSED_POSTS}
    covered |= {path.replace("{id}", "{file_id:uuid}") for _, path, _ in CS_REFUSED_PAGES}
    # cathy is refused a leader's exception in test_only_a_leader_above_the_file_waives_the_joining_condition
    covered.add("/customers/{file_id:uuid}/applications/{application_id:int}/exception")
    missing = []
    for route in app.routes:
        for handler in route.route_handlers:
            action = handler.opt.get("action")
            if not isinstance(action, Action) or action in CUSTOMER_SERVICE_MAY:
                continue
            if route.path.startswith("/api/"):
                continue  # tills' API keys, never a staff session (tests/test_pos_api.py)
            if action.obj in ("card", "member") and route.path not in covered:
                missing.append((route.path, action.value))
    assert not missing


# ---------------------------------------------------------------- home pages and search by name

def test_a_stranger_is_sent_to_sign_in_from_the_home_page(client):
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


@pytest.mark.parametrize("user", ["alice", "bob", "charlie", "grace", "henry", "frank", "dave", "erin", "cathy"])
def test_every_home_page_shows_only_files_in_scope(client, db, vault, story, user):
    signed_in(client, user)
    r = client.get("/")
    assert r.status_code == 200
    actor = story.actor(db, user)
    for owner, ids in story.files.items():
        for fid in ids:
            with db.read() as s:
                f = s.get(CustomerFile, uuid.UUID(fid))
                visible = can(actor, Action.CUSTOMER_LIST, owner_id=f.owner_id, unit_path=f.unit_path)
            if not visible:
                assert fid not in r.text and f.file_no not in r.text, (user, owner)


@pytest.mark.parametrize("user", ["dave", "erin", "cathy"])
@pytest.mark.parametrize("q", ["王小明", "王总", "0001"])
def test_roles_without_files_cannot_search_by_name(client, db, story, user, q):
    signed_in(client, user)
    before = last_seq(db)
    r = post(client, "/customers/search", {"q": q}, from_page="/welcome")
    assert r.status_code == 403 and "王" not in r.text.replace(q, "")
    assert [e.outcome for e in entries_since(db, before, user)] == ["denied"]


# ---------------------------------------------------------------- personal data (privacy/)

PQ, PE, PR, PT = (Action.PRIVACY_REQUEST, Action.PRIVACY_ERASE, Action.PRIVACY_REPORT,
                  Action.PRIVACY_RETENTION)
# The privacy officer's duties are the auditor's: dave reports on any file and records requests.
PRIVACY_MATRIX = {
    "alice": {PQ},
    "charlie": set(),
    "frank": set(),
    "bob": {PQ, PE, PR},
    "grace": {PQ, PE, PR},
    "henry": set(),
    "cathy": set(),
    "dave": {PQ, PR},
    "erin": {PT},
}


@pytest.mark.parametrize("user", list(PRIVACY_MATRIX))
def test_privacy_actions_on_alices_file(db, story, user):
    actor = story.actor(db, user)
    with db.read() as s:
        f = s.get(CustomerFile, uuid.UUID(story.files["alice"][0]))
    allowed = {a for a in (PQ, PE, PR, PT) if can(actor, a, owner_id=f.owner_id, unit_path=f.unit_path)}
    assert allowed == PRIVACY_MATRIX[user]


@pytest.mark.parametrize("user", ["charlie", "henry", "cathy", "erin"])
def test_strangers_are_refused_every_privacy_route_of_alices_file(client, db, vault, story, user):
    """Page, HTMX fragment and every POST: refused (and audited), nothing written."""
    from portal.privacy import corrections, erasure
    from portal.privacy.models import CorrectionRequest, ErasureRequest
    fid = story.files["alice"][0]
    with db.write() as s:
        alice = story.actor(db, "alice")
        er = erasure.request_erasure(s, alice, fid, "the customer asked us")
        cr = corrections.record_request(s, vault, alice, fid, "mobile", "new number 13900139000")
    seq = last_seq(db)
    signed_in(client, user)
    for headers in ({}, {"HX-Request": "true"}):
        for path in (f"/customers/{fid}/privacy", f"/customers/{fid}/access-report"):
            assert client.get(path, headers=headers).status_code == 403, path
        for path, data in ((f"/customers/{fid}/privacy/erasure", {"reason": "a stranger asks"}),
                           (f"/customers/{fid}/privacy/corrections", {"field_name": "name", "details": "xyz"}),
                           (f"/privacy/corrections/{cr.id}/answer", {"value": "13700137000"}),
                           (f"/privacy/corrections/{cr.id}/refuse", {"note": "a stranger refuses"}),
                           (f"/privacy/erasures/{er.id}/approve", {}),
                           (f"/privacy/erasures/{er.id}/refuse", {"note": "a stranger refuses"})):
            assert post(client, path, data, from_page="/inbox", headers=headers).status_code == 403, path
    with db.read() as s:
        assert s.get(ErasureRequest, er.id).status == "pending"
        assert s.get(CorrectionRequest, cr.id).status == "open"
        assert s.scalar(select(func.count()).select_from(ErasureRequest)) == 1
        assert s.get(CustomerFile, uuid.UUID(fid)).erased_at is None
        denied = s.scalars(select(AuditEvent.outcome).where(AuditEvent.seq > seq,
                                                            AuditEvent.actor_username == user,
                                                            AuditEvent.action.like("privacy.%"))).all()
    assert denied and set(denied) == {"denied"}


@pytest.mark.parametrize("user, path", [("alice", "/privacy/erasures"), ("dave", "/privacy/erasures"),
                                        ("cathy", "/privacy/erasures"), ("bob", "/privacy/retention"),
                                        ("dave", "/privacy/retention"), ("alice", "/privacy/retention")])
def test_only_leaders_open_the_erasure_queue_and_only_admins_the_retention_setting(client, story, user, path):
    signed_in(client, user)
    assert client.get(path).status_code == 403
    assert post(client, path, {"days": "400"}, from_page="/inbox").status_code in (403, 404, 405)
# ---------------------------------------------------------------- member service: complaints, visits, care

CR, CVW, CW, CA, VV, VR, KV, KR, SR = (
    Action.COMPLAINT_RECORD, Action.COMPLAINT_VIEW, Action.COMPLAINT_WORK, Action.COMPLAINT_ANALYSIS,
    Action.VISIT_VIEW, Action.VISIT_RECORD, Action.CARE_VIEW, Action.CARE_RECORD, Action.SERVICE_RULES)
# What each story user may do on alice's client's service record — written out by hand.
SERVICE_MATRIX = {
    "alice": {CR, CVW, CW, VV, VR, KV, KR},
    "charlie": set(),
    "frank": set(),
    "bob": {CR, CVW, CW, CA, VV, VR, KV, KR, SR},
    "grace": {CR, CVW, CW, CA, VV, VR, KV, KR, SR},
    "henry": {SR},  # the company-wide settings, nothing on 755's members
    "cathy": {CR, CVW, CW, CA},  # the complaints queue, nothing else of a member's service record
    "dave": set(),
    "erin": set(),
}


@pytest.mark.parametrize("user", list(SERVICE_MATRIX))
def test_member_service_actions_on_alices_client(db, story, user):
    actor = story.actor(db, user)
    with db.read() as s:
        f = s.get(CustomerFile, uuid.UUID(story.files["alice"][0]))
    allowed = {a for a in (CR, CVW, CW, CA, VV, VR, KV, KR, SR)
               if can(actor, a, owner_id=f.owner_id, unit_path=f.unit_path)}
    assert allowed == SERVICE_MATRIX[user]


# Every member-service route, what it needs, and who is a stranger to it. "{fid}" is alice's
# client, "{cid}" a complaint on that file, "{vid}" a visit with issues.
SERVICE_ROUTES = [
    ("GET", "/complaints", CVW, ("dave", "erin")),
    ("GET", "/complaints/new", CR, ("dave", "erin")),
    ("POST", "/complaints", CR, ("charlie", "dave", "erin")),
    ("GET", "/complaints/{cid}", CVW, ("charlie", "henry", "dave", "erin")),
    ("POST", "/complaints/{cid}/investigate", CW, ("charlie", "henry", "dave", "erin")),
    ("GET", "/complaints/analysis", CA, ("alice", "charlie", "dave", "erin")),
    ("GET", "/visits", VV, ("cathy", "dave", "erin")),
    ("GET", "/member-service/{fid}", VV, ("charlie", "henry", "cathy", "dave", "erin")),
    ("POST", "/member-service/{fid}/visits", VR, ("charlie", "henry", "cathy", "dave", "erin")),
    ("POST", "/member-service/{fid}/visits/{vid}/answer", VR, ("charlie", "henry", "cathy", "dave", "erin")),
    ("POST", "/member-service/{fid}/care", KR, ("charlie", "henry", "cathy", "dave", "erin")),
    ("GET", "/care", KV, ("cathy", "dave", "erin")),
    ("GET", "/member-service/settings", SR, ("alice", "charlie", "cathy", "dave", "erin")),
    ("POST", "/member-service/settings", SR, ("alice", "charlie", "cathy", "dave", "erin")),
]
SERVICE_FORM = {"member": "", "channel": "hotline", "kind": "product", "content": "陌生人的投诉",
                "promised_on": "2099-01-01", "passed_to": "x", "finding": "x", "cause": "other",
                "responsible": "x", "reason": "schedule", "satisfaction": "3", "outcome": "陌生人的回访",
                "answer": "陌生人的回答", "benefit": "birthday_gift", "note": "x", "every_gold": "1"}


@pytest.fixture
def service_objects(db, vault, story):
    from portal.membership import members
    from portal.membership.rules import programme_today
    from portal.service import complaints, visits
    fid = uuid.UUID(story.files["alice"][0])
    alice = story.actor(db, "alice")
    with db.write() as s:
        members.enrol(s, alice, fid, cause="application")
    with db.write() as s:
        c = complaints.record_complaint(s, vault, alice, {
            "channel": "hotline", "kind": "product", "content": "礼盒破损",
            "promised_on": programme_today().isoformat()}, file_id=fid)
        v = visits.record_visit(s, vault, alice, fid, {"kind": "phone", "reason": "schedule", "satisfaction": "4",
                                                       "outcome": "好", "issues": "送货慢", "passed_to": "物流部"})
    return {"fid": str(fid), "cid": str(c.id), "vid": str(v.id)}


def _service_state(db) -> tuple:
    from portal.service.models import CareRecord, Complaint, ComplaintStep, MemberVisit, ServiceSettingsVersion
    with db.read() as s:
        return tuple(len(list(s.scalars(select(m)))) for m in
                     (Complaint, ComplaintStep, MemberVisit, CareRecord, ServiceSettingsVersion)) + tuple(
            (c.status, c.updated_at) for c in s.scalars(select(Complaint))) + tuple(
            v.answered_at for v in s.scalars(select(MemberVisit)))


@pytest.mark.parametrize("method, path, action, strangers", [pytest.param(*r, id=f"{r[0]} {r[1]}") for r in SERVICE_ROUTES])
def test_a_stranger_is_refused_every_member_service_route(client, db, vault, story, service_objects, method, path,
                                                         action, strangers):
    url = path.format(**service_objects)
    form = dict(SERVICE_FORM, member=facts(db, vault, service_objects["fid"]).file_no)
    for user in strangers:
        signed_in(client, user)
        for headers in ({}, {"HX-Request": "true"}):
            state = _service_state(db)
            before = last_seq(db)
            r = (client.get(url, headers=headers) if method == "GET"
                 else post(client, url, form, from_page="/inbox", headers=headers))
            assert r.status_code == 403, (user, url, r.status_code, r.text[:300])
            assert [(e.action, e.outcome) for e in entries_since(db, before, user)] == [(action.value, "denied")]
            for secret in ("礼盒破损", "送货慢", "陌生人"):
                assert secret not in r.text
            assert _service_state(db) == state
        client.cookies.clear()


def test_the_member_service_matrix_covers_every_member_service_route(app):
    covered = {(m, p.replace("{cid}", "{complaint_id:int}").replace("{fid}", "{file_id:uuid}")
                .replace("{vid}", "{visit_id:int}")) for m, p, _, _ in SERVICE_ROUTES}
    covered.add(("POST", "/complaints/{complaint_id:int}/{step:str}"))
    missing = []
    for route in app.routes:
        for handler in route.route_handlers:
            action = handler.opt.get("action")
            if isinstance(action, Action) and action.obj in ("complaint", "visit", "care", "servicerules"):
                for m in handler.http_methods:
                    if (m, route.path) not in covered and m != "HEAD":
                        missing.append((m, route.path))
    assert not missing
# ---------------------------------------------------------------- reports (issue 13)

# Which report actions each story user holds (route level) — written out by hand.
REP_V, REP_E, REP_S, REP_A = Action.REPORT_VIEW, Action.REPORT_EXPORT, Action.REPORT_SEND, Action.REPORT_AUDIT
REPORT_MATRIX = {
    "alice": {REP_V, REP_E}, "charlie": {REP_V, REP_E}, "frank": {REP_V, REP_E},
    "bob": {REP_V, REP_E, REP_S}, "grace": {REP_V, REP_E, REP_S}, "henry": {REP_V, REP_E, REP_S},
    "dave": {REP_A},  # audit figures only
    "erin": set(), "cathy": set(),  # no customer figures at all
}
# (name, method, path, action): every report route, as a page, an HTMX fragment or a POST.
REPORT_ROUTES = [
    ("index", "GET", "/reports", REP_V), ("overview", "GET", "/reports/overview", REP_V),
    ("classes", "GET", "/reports/classes", REP_V), ("monthly", "GET", "/reports/monthly", REP_V),
    ("cards", "GET", "/reports/cards", REP_V), ("export", "POST", "/reports/export/overview", REP_E),
    ("send", "POST", "/reports/monthly/send", REP_S), ("audit", "GET", "/reports/audit", REP_A),
    ("audit_export", "POST", "/reports/audit/export", REP_A),
    ("sales", "GET", "/reports/sales", REP_V), ("service", "GET", "/reports/service", REP_V),
]


@pytest.mark.parametrize("user", list(REPORT_MATRIX))
def test_report_actions_by_role(db, story, user):
    actor = story.actor(db, user)
    assert {a for a in (REP_V, REP_E, REP_S, REP_A) if policy.may_perform(actor, a)} == REPORT_MATRIX[user]


@pytest.mark.parametrize("user", ["alice", "dave", "erin", "cathy"])
def test_a_stranger_is_refused_every_report_route(client, db, story, user):
    signed_in(client, user)
    for name, method, path, action in REPORT_ROUTES:
        if action in REPORT_MATRIX[user]:
            continue
        for headers in ({}, {"HX-Request": "true"}):
            before = last_seq(db)
            if method == "GET":
                r = client.get(path, headers=headers)
            else:
                r = post(client, path, {"format": "csv", "unit": "755A", "month": "2025-01"}, from_page="/inbox",
                         headers=headers)
            assert r.status_code == 403, (user, name, headers)
            assert "¥" not in r.text
            assert [(e.action, e.outcome) for e in entries_since(db, before, user)] == [(action.value, "denied")]


def test_report_routes_are_all_in_the_report_matrix(app):
    declared = {(m, route.path) for route in app.routes for h in route.route_handlers
                for m in h.http_methods if isinstance(h.opt.get("action"), Action) and h.opt["action"].obj == "report"}
    listed = {(m, p.replace("/overview", "/{key:str}") if p.startswith("/reports/export/") else p)
              for _n, m, p, _a in REPORT_ROUTES}
    listed.add(("GET", "/reports/monthly/sent/{report_id:int}"))  # tests/test_reports.py: leaders above only
    assert declared == listed


# ---------------------------------------------------------------- member events

# Which event actions each story user may take on alice's client (register, check in) and on an
# event of 755A (manage, summary); who sees 755A's event at all. Written out by hand.
EV_REG, EV_IN, EV_MAN, EV_SUM = (Action.EVENT_REGISTER, Action.EVENT_CHECKIN, Action.EVENT_MANAGE,
                                 Action.EVENT_SUMMARY)
EVENT_MATRIX = {
    "alice": ({EV_REG, EV_IN}, True),
    "charlie": (set(), False),
    "frank": (set(), False),
    "bob": ({EV_REG, EV_IN, EV_MAN, EV_SUM}, True),
    "grace": ({EV_REG, EV_IN, EV_MAN, EV_SUM}, True),
    "henry": (set(), False),
    "cathy": ({EV_REG, EV_IN}, True),
    "dave": (set(), False),
    "erin": (set(), False),
}


@pytest.mark.parametrize("user", list(EVENT_MATRIX))
def test_event_actions_on_alices_client_and_her_teams_event(db, story, user):
    from portal.events import planning
    actor = story.actor(db, user)
    with db.read() as s:
        f = s.get(CustomerFile, uuid.UUID(story.files["alice"][0]))
        team = s.scalar(select(OrgUnit).where(OrgUnit.code == "755A"))
    on_member = {a for a in (EV_REG, EV_IN) if can(actor, a, owner_id=f.owner_id, unit_path=f.unit_path)}
    on_event = {a for a in (EV_MAN, EV_SUM) if can(actor, a, owner_id=0, unit_path=team.path)}
    sees = policy.may_perform(actor, Action.EVENT_VIEW) and planning.is_visible(actor, team.path)
    assert (on_member | on_event, sees) == EVENT_MATRIX[user]


# Every event route, with what a request to it sends (its path for the story's event 1, plan 1,
# registration 1).
EVENT_ROUTES = [
    ("GET", "/events", Action.EVENT_VIEW),
    ("POST", "/events/plans", Action.EVENT_MANAGE),
    ("GET", "/events/plans/1", Action.EVENT_VIEW),
    ("POST", "/events/plans/1/events", Action.EVENT_MANAGE),
    ("GET", "/events/1", Action.EVENT_VIEW),
    ("POST", "/events/1/invitations", Action.EVENT_MANAGE),
    ("POST", "/events/1/cost", Action.EVENT_MANAGE),
    ("POST", "/events/1/registrations", Action.EVENT_REGISTER),
    ("POST", "/events/1/registrations/1/cancel", Action.EVENT_REGISTER),
    ("POST", "/events/1/registrations/1/check-in", Action.EVENT_CHECKIN),
    ("POST", "/events/1/registrations/1/satisfaction", Action.EVENT_CHECKIN),
    ("GET", "/events/1/summary", Action.EVENT_SUMMARY),
]


@pytest.mark.parametrize("user", ["dave", "erin"])
def test_roles_without_events_are_refused_every_event_route(client, db, story, user):
    """Pages, HTMX fragments and POSTs: 403, audited as refused, nothing written."""
    from portal.events.models import EventPlan
    signed_in(client, user)
    for method, path, action in EVENT_ROUTES:
        for headers in ({}, {"HX-Request": "true"}):
            before = last_seq(db)
            if method == "GET":
                r = client.get(path, headers=headers)
            else:
                r = post(client, path, {"unit": "HQ", "year": "2026", "budget": "1", "card": "755 00001"},
                         from_page="/inbox", headers=headers)
            assert r.status_code == 403, (path, r.status_code)
            assert [(e.action, e.outcome) for e in entries_since(db, before, user)] == [(action.value, "denied")]
    with db.read() as s:
        assert s.scalar(select(EventPlan.id)) is None


def test_the_event_matrix_covers_every_event_route(app):
    covered = {(m, re.sub(r"/1(?=/|$)", "/{}", p)) for m, p, _ in EVENT_ROUTES}
    missing = []
    for route in app.routes:
        for handler in route.route_handlers:
            action = handler.opt.get("action")
            if isinstance(action, Action) and action.obj == "event":
                for method in handler.http_methods:
                    key = (method, re.sub(r"\{[a-z_]+:int\}", "{}", route.path))
                    if key not in covered:
                        missing.append(key)
    assert not missing


# ---------------------------------------------------------------- sales on credit

# Which credit actions each story user may take on alice's client (755A) — written out by hand.
# The routes themselves (page, HTMX fragment, every POST, the export) refuse a stranger in
# tests/test_credit_web.py::test_a_stranger_is_refused_every_credit_page_and_step.
CV, CS, CG, CD, RC, RW, RB, LV, LX = (
    Action.CREDIT_VIEW, Action.CREDIT_SELL, Action.CREDIT_GRANT, Action.CREDIT_DECIDE, Action.RECEIVABLE_COLLECT,
    Action.RECEIVABLE_WRITE_OFF, Action.RECEIVABLE_BOARD, Action.LIABILITY_VIEW, Action.LIABILITY_EXPORT)
CREDIT_MATRIX = {
    "alice": {CV, CS, RC, RB},
    "charlie": set(), "frank": set(), "henry": set(),
    "bob": {CV, CS, CG, CD, RC, RW, RB, LV, LX},
    "grace": {CV, CS, CG, CD, RC, RW, RB, LV, LX},
    "cathy": set(), "dave": set(), "erin": set(),
}


@pytest.mark.parametrize("user", list(CREDIT_MATRIX))
def test_credit_actions_on_alices_client(db, story, user):
    actor = story.actor(db, user)
    with db.read() as s:
        f = s.get(CustomerFile, uuid.UUID(story.files["alice"][0]))
    allowed = {a for a in (CV, CS, CG, CD, RC, RW, RB, LV, LX)
               if can(actor, a, owner_id=f.owner_id, unit_path=f.unit_path)}
    assert allowed == CREDIT_MATRIX[user]
    # The catalogue: read by those who sell, changed by the administrator alone.
    assert can(actor, Action.CATALOGUE_EDIT) == (user == "erin")


# ---------------------------------------------------------------- messages to members

# Who may do what with messages on alice's client's file, and with the outbox and care batch.
# consent: the file's consent page (page, fragment), recording consent, saving contact preferences.
MESSAGES_MATRIX = {
    #          consent on alice's file, outbox page, care batch
    "alice": (True, False, False),
    "bob": (True, True, True),
    "grace": (True, True, True),
    "charlie": (False, False, False),
    "frank": (False, False, False),
    "henry": (False, True, True),   # a leader, but not above alice's file: her file is refused
    "cathy": (False, True, False),
    "dave": (False, False, False),
    "erin": (False, False, False),
}


def _denied_entries(db, action: str) -> int:
    with db.read() as s:
        return len(list(s.scalars(select(AuditEvent.seq).where(AuditEvent.action == action,
                                                              AuditEvent.outcome == "denied"))))


@pytest.mark.parametrize("user", list(MESSAGES_MATRIX))
def test_messages_routes_follow_the_matrix(client, db, story, user):
    from portal.consent.models import ConsentRecord
    from portal.messages.models import MemberContact, OutboxMessage

    consent_ok, outbox_ok, care_ok = MESSAGES_MATRIX[user]
    fid = story.files["alice"][0]
    signed_in(client, user)
    before = _denied_entries(db, "messages.consent")
    pages = [client.get(f"/customers/{fid}/consent", follow_redirects=False),
             client.get(f"/customers/{fid}/consent", headers={"HX-Request": "true"}, follow_redirects=False)]
    writes = [post(client, f"/customers/{fid}/consent", {"channel": "sms", "purpose": "marketing", "given": "yes",
                                                         "method": "verbal"}, from_page="/inbox"),
              post(client, f"/customers/{fid}/contact", {"email": "m@example.com", "language": "en",
                                                         "channel": "email"}, from_page="/inbox")]
    with db.read() as s:
        records = list(s.scalars(select(ConsentRecord)))
        contact = s.get(MemberContact, uuid.UUID(fid))
    if consent_ok:
        assert [r.status_code for r in pages + writes] == [200, 200, 303, 303]
        assert len(records) == 1 and contact is not None
    else:
        assert all(r.status_code in (403, 404) for r in pages + writes)
        assert records == [] and contact is None  # nothing changed
        assert _denied_entries(db, "messages.consent") - before == 4  # each refusal audited

    outbox = [client.get("/outbox", follow_redirects=False),
              client.get("/outbox", headers={"HX-Request": "true"}, follow_redirects=False)]
    assert all(r.status_code == (200 if outbox_ok else 403) for r in outbox)

    q = {"month": "2026-12", "offer_zh": "新品八折。", "offer_en": "New wines 20% off."}
    care = [client.get("/messages/care", params=q, follow_redirects=False),
            post(client, "/messages/care", q, from_page="/inbox")]
    assert [r.status_code for r in care] == ([200, 303] if care_ok else [403, 403])
    if not care_ok:
        with db.read() as s:
            assert not list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "care")))


def test_the_outbox_lists_only_messages_of_files_in_scope(db, vault, story):
    from portal.messages import listing, outbox
    alices, franks = uuid.UUID(story.files["alice"][0]), uuid.UUID(story.files["frank"][0])
    with db.write() as s:
        for fid in (alices, franks):
            outbox.enqueue(s, customer_id=fid, kind="event_notice", purpose="service", context={}, reference="e:1")
    seen = {}
    for user in ("bob", "henry", "grace", "cathy"):
        with db.write() as s:
            seen[user] = sorted(r.file_no for r in listing.list_outbox(s, vault, story.actor(db, user)))
    with db.read() as s:
        a, f = s.get(CustomerFile, alices).file_no, s.get(CustomerFile, franks).file_no
    assert seen == {"bob": [a], "henry": [f], "grace": [a], "cathy": sorted([a, f])}


def test_the_opt_out_page_is_the_only_public_messages_route(app):
    public = sorted({r.path for r in app.routes for h in r.route_handlers
                    if h.opt.get("public") and (r.path.startswith("/optout") or r.path.startswith("/opted"))})
    assert public == ["/opted-out", "/optout/{token:str}"]


# ---------------------------------------------------------------- credit terms, liability settlements

# Who may settle a liability of alice (salesperson, 755A) and one of bob (her team's leader): a
# leader above the person, never the person (the domain's may_settle, on the relations by hand).
SETTLE_MATRIX = {"alice": (False, False), "bob": (True, False), "grace": (True, True), "charlie": (False, False),
                 "frank": (False, False), "henry": (False, False), "cathy": (False, False), "dave": (False, False),
                 "erin": (False, False)}


@pytest.mark.parametrize("user", list(SETTLE_MATRIX))
def test_who_settles_a_liability(db, story, user):
    from portal.credit.liabilities import may_settle
    from portal.credit.models import Liability
    actor = story.actor(db, user)
    owed = [Liability(person_id=story.users[p], person_unit_path=story.actor(db, p).unit_path, role=role,
                      amount_fen=100) for p, role in (("alice", "operator"), ("bob", "line_leader"))]
    assert tuple(may_settle(actor, li) for li in owed) == SETTLE_MATRIX[user]
    assert can(actor, Action.CREDIT_TERMS) == (user == "erin")


def _written_off(db, vault, story, clock_at) -> int:
    """A written-off order of alice's client: the id of alice's liability."""
    from portal.credit import accounts as credit, receivables, sales

    from .test_credit import add_products, at
    clock_at(at(2026, 3, 1))
    add_products(db, story)
    clock_at(at(2026, 3, 10))
    fid = uuid.UUID(story.files["alice"][0])
    with db.write() as s:
        credit.grant_credit(s, story.actor(db, "bob"), fid, "long-standing client, pays on time")
    with db.write() as s:
        order, _ = sales.sell_on_terms(s, vault, story.actor(db, "alice"), sales.TermsSale(
            customer_id=fid, receipt_no="PM-1", items=(sales.Item("MT53", 1),)))
        receivables.deliver(s, story.actor(db, "alice"), order.id)
    with db.write() as s:
        lis = receivables.write_off(s, story.actor(db, "bob"), order.id, reason="the customer cannot be found")
    return next(li.id for li in lis if li.role == "operator")


# user: refused at the route (their role has no such action) or by the domain (a leader elsewhere)
@pytest.mark.parametrize("user", ["alice", "charlie", "henry", "cathy", "dave", "erin"])
def test_strangers_are_refused_the_terms_and_a_liability_page_and_its_settlement(client, db, vault, story, clock_at,
                                                                                user):
    from portal.credit.models import CreditTermsVersion, LiabilitySettlement
    lid = _written_off(db, vault, story, clock_at)
    signed_in(client, user)
    before = last_seq(db)
    tried = []
    if user != "erin":  # the credit terms: the administrator's alone
        for headers in ({}, {"HX-Request": "true"}):
            tried.append(("credit.terms", client.get("/credit/terms", headers=headers)))
        tried.append(("credit.terms", post(client, "/credit/terms", {"individual_boxes": "50", "reason": "more"},
                                           from_page="/inbox")))
    for headers in ({}, {"HX-Request": "true"}):
        tried.append(("liability.view", client.get(f"/liabilities/{lid}", headers=headers)))
    tried.append(("liability.settle", post(client, f"/liabilities/{lid}/settlements",
                                           {"amount": "1", "paid_on": "2026-03-10", "method": "cash"},
                                           from_page="/inbox")))
    assert [r.status_code for _, r in tried] == [403] * len(tried)
    assert [(e.action, e.outcome) for e in entries_since(db, before, user) if e.outcome == "denied"] == \
        [(action, "denied") for action, _ in tried]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(CreditTermsVersion)) == 0
        assert s.scalar(select(func.count()).select_from(LiabilitySettlement)) == 0
# ---------------------------------------------------------------- coupons (issue #14, item 11)

# Which coupon actions each story user holds (route level): leaders within their units, the
# administrator everywhere; nobody else. Using a coupon is part of recording a purchase.
C_V, C_I, C_X = Action.COUPON_VIEW, Action.COUPON_ISSUE, Action.COUPON_VOID
COUPON_MATRIX = {"alice": set(), "charlie": set(), "frank": set(), "bob": {C_V, C_I, C_X},
                 "grace": {C_V, C_I, C_X}, "henry": {C_V, C_I, C_X}, "dave": set(), "erin": {C_V, C_I, C_X},
                 "cathy": set()}
COUPON_ROUTES = [("GET", "/coupons", C_V), ("POST", "/coupons/campaigns", C_I), ("POST", "/coupons/void", C_X)]


@pytest.mark.parametrize("user", list(COUPON_MATRIX))
def test_coupon_actions_by_role(db, story, user):
    actor = story.actor(db, user)
    assert {a for a in (C_V, C_I, C_X) if policy.may_perform(actor, a)} == COUPON_MATRIX[user]


@pytest.mark.parametrize("user", ["alice", "dave", "cathy"])
def test_a_stranger_is_refused_every_coupon_route(client, db, story, user):
    from portal.membership.models import Coupon, CouponCampaign
    signed_in(client, user)
    for method, path, action in COUPON_ROUTES:
        for headers in ({}, {"HX-Request": "true"}):
            before = last_seq(db)
            if method == "GET":
                r = client.get(path, headers=headers)
            else:
                r = post(client, path, {"name": "Stranger", "kind": "amount", "amount": "50", "tier_regular": "1",
                                        "valid_from": "2099-01-01", "valid_until": "2099-01-31",
                                        "reason": "a stranger issues coupons", "code": "7KQ2M9XBA410"},
                         from_page="/inbox", headers=headers)
            assert r.status_code == 403, (user, path, headers)
            assert [(e.action, e.outcome) for e in entries_since(db, before, user)] == [(action.value, "denied")]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(CouponCampaign)) == 0
        assert s.scalar(select(func.count()).select_from(Coupon)) == 0


def test_a_leader_withdraws_only_coupons_of_members_in_reach(db, vault, story, member):
    from portal.membership import coupon_rules, coupons
    bob = story.actor(db, "bob")
    with db.write() as s:
        coupons.issue_campaign(s, bob, name="Matrix", reason="matrix test campaign", terms=coupon_rules.CouponTerms(
            kind="amount", amount_fen=100, valid_from=clock.now().date(), valid_until=clock.now().date(),
            tiers=("regular",)))
    from portal.membership.models import Coupon
    with db.read() as s:
        code = s.scalar(select(Coupon.code))
    with db.write() as s, pytest.raises(policy.PermissionDenied):
        coupons.void_coupon(s, story.actor(db, "henry"), code, "another region's coupon")
    for user in ("grace", "erin"):
        assert can(story.actor(db, user), C_X, owner_id=story.users["alice"], unit_path=_unit_of(db, member))


def _unit_of(db, member) -> str:
    with db.read() as s:
        return s.get(CustomerFile, uuid.UUID(member.file_id)).unit_path


def test_the_coupon_matrix_covers_every_coupon_route(app):
    declared = {(m, route.path) for route in app.routes for h in route.route_handlers for m in h.http_methods
                if isinstance(h.opt.get("action"), Action) and h.opt["action"].obj == "coupon"}
    assert declared == {(m, p) for m, p, _ in COUPON_ROUTES}
