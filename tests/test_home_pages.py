"""Each role's home page at `/`: figures counted in SQL within the policy's scope, linking to
their lists; no personal data on the admin's and the auditor's pages."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from portal import clock
from portal.access import service as access
from portal.accounts.actor import Actor
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.customers import service as customers
from portal.membership import members
from portal.membership.models import (CardAccount, MemberEvent, Membership, MembershipApplication,
                                      PointsEntryRow, Purchase)
from portal.membership.rules import programme_today
from portal.membership.settings import Tier

from .browser import post, signed_in
from .factories import customer_input

SYSTEM = Actor.system("test")


def figure(html: str, testid: str) -> int:
    m = re.search(rf'data-testid="{testid}">\s*(?:<a href="[^"]*">)?<span class="figure">(\d+)</span>', html)
    assert m, f"no figure {testid}"
    return int(m.group(1))


@pytest.fixture
def day(db, vault, story):
    """A day's worth of work: members, a birthday today, points about to expire, requests, an
    application, a sale without a card, a lost card, a disabled user."""
    today = programme_today()
    now = clock.now()
    alice, charlie = story.actor(db, "alice"), story.actor(db, "charlie")
    a0, a1 = (uuid.UUID(f) for f in story.files["alice"][:2])
    with db.write() as s:
        born = today.replace(year=1980) if (today.month, today.day) != (2, 29) else today.replace(year=1980)
        f = customers.create_file(s, vault, alice, customer_input(30, id_number=None, birthday=born,
                                                                  name="生日客户"))
        birthday_member = members.enrol(s, SYSTEM, f.id, cause="import")
        gold = members.enrol(s, SYSTEM, a0, cause="import")
        members.change_tier(s, SYSTEM, gold, Tier.GOLD, "manual", "a loyal client")  # the reports' summaries follow
        bobs = members.enrol(s, SYSTEM, uuid.UUID(story.files["bob"][0]), cause="import")
        charlies = members.enrol(s, SYSTEM, uuid.UUID(story.files["charlie"][0]), cause="import")
        s.flush()
        account = members.primary_account(s, gold)
        s.add(PointsEntryRow(account_id=account.id, kind="earn", points=120, on=today - timedelta(days=700),
                             expires_on=today + timedelta(days=10), created_at=now))
        account.points_balance = 120
        # charlie's client too: not alice's reminder, nor bob's.
        acc_c = members.primary_account(s, charlies)
        s.add(PointsEntryRow(account_id=acc_c.id, kind="earn", points=50, on=today - timedelta(days=700),
                             expires_on=today + timedelta(days=5), created_at=now))
        acc_c.points_balance = 50
        s.add(MembershipApplication(customer_id=a1, submitted_by_id=story.users["alice"], card_type="standard",
                                    submitted_at=now))
        s.add(Purchase(receipt_no="HOME-1", purchased_on=today, payment_method="cash", list_total_fen=10000,
                       discount_total_fen=0, paid_total_fen=10000, rate_per_mille=0, discount_reason="none",
                       created_at=now))
        s.add(MemberEvent(membership_id=bobs.id, kind="loss", at=now))
        s.execute(update(User).where(User.username == "frank").values(is_active=False))
    with db.write() as s:
        charlie_file = s.get(customers.CustomerFile, uuid.UUID(story.files["charlie"][1]))
        access.request_access(s, alice, charlie_file.file_no, "client moved to me, need history")
        access.request_access(s, charlie, s.get(customers.CustomerFile, a0).file_no, "covering for alice this week")
    return today


def test_alices_home_counts_her_reminders_requests_and_files(client, day, story):
    signed_in(client, "alice")
    html = client.get("/").text
    assert figure(html, "birthdays-today") == 1
    assert figure(html, "points-expiring") == 1  # her gold client; not charlie's
    assert figure(html, "requests-pending") == 1
    assert figure(html, "requests-answered") == 0
    assert 'href="/members/birthdays"' in html and 'href="/members/expiring"' in html
    assert re.search(r'data-testid="my-files">[^<]*\b4\b', html)  # her three and the birthday client
    assert 'data-testid="access-waiting"' not in html  # no decisions for a salesperson
    for fid in story.files["charlie"]:
        assert fid not in html


def test_the_home_page_reads_in_a_snapshot_then_audits_then_shows(client, db, day, story, monkeypatch):
    """The figures are counted without a write transaction (on SQLite the writer lock is not held
    while a leader's page counts); the birthdays read and the recent files are then audited, each
    entry committed on its own, before anything is shown; and if an entry cannot be written, the
    answer is an error page with none of what was read."""
    from portal.audit import service as audit_service
    from portal.db import Database
    signed_in(client, "alice")
    with db.read() as s:
        last = s.scalar(select(func.max(AuditEvent.seq)))
    writes = []
    write = Database.write

    def spy(self):
        writes.append(1)
        return write(self)

    monkeypatch.setattr(Database, "write", spy)
    html = client.get("/").text
    assert figure(html, "birthdays-today") == 1 and not writes
    with db.read() as s:
        new = s.execute(select(AuditEvent.action, AuditEvent.object_id).where(AuditEvent.seq > last)
                        .order_by(AuditEvent.seq)).all()
    assert [tuple(e) for e in new] == [("home.view", "birthdays_today"), ("customer.list", "")]
    recent = re.findall(r'href="/customers/([0-9a-f-]{36})"', html)
    assert recent
    with db.read() as s:
        last = s.scalar(select(func.max(AuditEvent.seq)))

    append = audit_service.append_all_committed

    def failing(db_, entries):
        if any(action == "home.view" for _actor, action, _outcome, _kw in entries):
            raise RuntimeError("the audit log is full")
        return append(db_, entries)

    monkeypatch.setattr(audit_service, "append_all_committed", failing)
    r = client.get("/")
    assert r.status_code == 500
    assert "birthdays-today" not in r.text and not any(fid in r.text for fid in recent)
    with db.read() as s:  # nothing was written: the page's entries are committed together
        assert s.scalar(select(func.max(AuditEvent.seq))) == last


def test_answered_requests_show_on_the_requesters_home(client, db, day, story):
    bob = story.actor(db, "bob")
    with db.write() as s:
        (req,) = access.approval_queue(s, bob)
        access.decide(s, bob, req.request.id, approve=True, hours=2)
    signed_in(client, "charlie")
    html = client.get("/").text
    assert figure(html, "requests-answered") == 1 and figure(html, "requests-pending") == 0


def test_bobs_home_shows_his_teams_decisions_and_members(client, day, story):
    signed_in(client, "bob")
    html = client.get("/").text
    assert figure(html, "access-waiting") == 1  # charlie asks for alice's file (755A)
    assert figure(html, "exports-waiting") == 0
    assert figure(html, "applications-waiting") == 1
    assert figure(html, "team-files") == 5  # alice's four and his own
    assert figure(html, "tier-gold") == 1 and figure(html, "tier-regular") == 2
    assert figure(html, "tier-silver") == 0
    assert figure(html, "new-members") == 3
    assert figure(html, "birthdays-today") == 1 and figure(html, "points-expiring") == 1
    assert 'href="/customers?tier=gold"' in html and 'href="/approvals"' in html


def test_graces_home_covers_her_whole_region(client, day):
    signed_in(client, "grace")
    html = client.get("/").text
    assert figure(html, "access-waiting") == 2  # both teams' requests
    assert figure(html, "points-expiring") == 2
    assert figure(html, "team-files") == 7


def test_henrys_home_sees_nothing_of_shenzhen(client, day):
    signed_in(client, "henry")
    html = client.get("/").text
    assert figure(html, "access-waiting") == 0 and figure(html, "applications-waiting") == 0
    assert figure(html, "points-expiring") == 0 and figure(html, "birthdays-today") == 0
    assert figure(html, "team-files") == 1  # frank's


def test_cathys_home_shows_the_service_queues(client, day):
    signed_in(client, "cathy")
    html = client.get("/").text
    assert figure(html, "applications-waiting") == 1
    assert figure(html, "claimable-sales") == 1
    assert figure(html, "losses-recent") == 1
    assert 'href="/service/applications"' in html


def test_daves_home_shows_alerts_refusals_and_the_chain_without_personal_data(client, db, vault, day, story):
    signed_in(client, "alice")
    assert client.get("/audit").status_code == 403
    signed_in(client, "dave")
    html = client.get("/").text
    with db.read() as s:
        denied = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.outcome == "denied"))
        head = s.scalar(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1))
    assert figure(html, "denied-today") == denied >= 1
    assert "Head matches the newest entry" in html or "与最新条目一致" in html
    assert head[:16] in html
    assert 'data-testid="checkpoint-age"' in html
    _no_personal_data(db, vault, html)


def test_erins_home_shows_users_and_units_without_personal_data(client, db, vault, day):
    signed_in(client, "erin")
    html = client.get("/").text
    assert figure(html, "disabled-users") == 1
    assert figure(html, "units") == 6
    assert 'href="/admin/units"' in html
    _no_personal_data(db, vault, html)


def test_erins_home_counts_users_waiting_for_set_up_and_forgotten_passwords(client, db, vault, day):
    signed_in(client, "erin")
    before = figure(client.get("/").text, "waiting-for-setup")
    assert figure(client.get("/").text, "password-help") == 0
    r = post(client, "/login/forgot", {"username": "alice"}, from_page="/login/forgot")
    assert r.status_code in (200, 303)
    html = client.get("/").text
    assert figure(html, "password-help") == 1
    assert figure(html, "waiting-for-setup") == before == 0
    with db.write() as s:  # a new account with no password yet
        s.execute(update(User).where(User.username == "charlie").values(password_hash=""))
    assert figure(client.get("/").text, "waiting-for-setup") == 1


def _no_personal_data(db, vault, html: str) -> None:
    with db.read() as s:
        files = list(s.scalars(select(customers.CustomerFile)))
        for f in files:
            p = customers._open(vault, f, ("name", "mobile"))
            assert f.file_no not in html and p["name"] not in html and p["mobile"] not in html


@pytest.mark.parametrize("user", ["alice", "bob", "cathy", "dave", "erin"])
def test_every_role_has_a_home_page(client, story, user):
    signed_in(client, user)
    r = client.get("/")
    assert r.status_code == 200 and "There is nothing for your role here yet." not in r.text


def test_a_leaders_team_figures_from_the_summaries_are_the_live_counts(db, day, story, monkeypatch):
    """The prebuilt reads of report_member and report_flow give what counting the memberships
    in scope gives (the path taken when a scope has grants, which the summaries cannot key)."""
    from portal.home import sales
    from portal.policy.actions import Relation
    for user in ("bob", "grace", "henry", "alice"):
        actor = story.actor(db, user)
        with db.read() as s:
            summed = sales._team_members(s, actor, day)
        with monkeypatch.context() as m:
            m.setattr(sales, "scope_shape", lambda *_: ((Relation.GRANTED,), ("view",)))
            with db.read() as s:
                live = sales._team_members(s, actor, day)
        assert ({t: n for t, n in summed[0].items() if n}, summed[1]) == (live[0], live[1]), user
        if user == "bob":
            assert summed == ({"gold": 1, "regular": 2}, 3)  # the figures his page shows
