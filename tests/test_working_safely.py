"""Working safely: a file read under a grant says so, a pending request names who decides it, and
irreversible steps ask first (the dialog itself is exercised in e2e/test_access_flow.py)."""
from __future__ import annotations

import html
import re
import uuid

from portal.access import service as access
from portal.customers.models import CustomerFile

from .browser import post, signed_in

REASON = "Covering alice's clients while she is on leave"


def file_no(db, story, owner="alice", i=0) -> str:
    with db.read() as s:
        return s.get(CustomerFile, uuid.UUID(story.files[owner][i])).file_no


def ask(db, story, number: str, who="charlie") -> int:
    with db.write() as s:
        return access.request_access(s, story.actor(db, who), number, REASON, "view", 4).id


def test_a_file_read_under_a_grant_shows_whose_it_is_why_and_until_when(client, db, story):
    rid = ask(db, story, file_no(db, story))
    with db.write() as s:
        access.decide(s, story.actor(db, "bob"), rid, True)
    client.headers["Accept-Language"] = "en"
    signed_in(client, "charlie")
    page = html.unescape(client.get(f"/customers/{story.files['alice'][0]}").text)
    banner = re.search(r'data-testid="grant-banner">(.*?)</p>', page, re.S)
    assert banner, "no grant banner"
    assert "alice's file under a temporary grant" in banner.group(1)
    assert REASON in banner.group(1) and "It ends" in banner.group(1)


def test_the_owner_reading_her_own_file_sees_no_grant_banner(client, db, story):
    signed_in(client, "alice")
    assert 'data-testid="grant-banner"' not in client.get(f"/customers/{story.files['alice'][0]}").text


def test_a_pending_request_names_the_leaders_who_can_decide_it(client, db, story):
    ask(db, story, file_no(db, story))
    client.headers["Accept-Language"] = "en"
    signed_in(client, "charlie")
    page = html.unescape(client.get("/access-requests").text)
    deciders = re.search(r'data-testid="deciders">(.*?)</small>', page, re.S)
    assert deciders and "Decided by one of:" in deciders.group(1)
    assert "bob" in deciders.group(1) or "Bob" in deciders.group(1)
    assert "charlie" not in deciders.group(1).lower()


def test_irreversible_steps_carry_their_question(client, db, story):
    ask(db, story, file_no(db, story))
    signed_in(client, "bob")
    page = client.get("/approvals").text
    assert page.count("data-confirm=") >= 2  # approve and deny
    assert 'id="confirm-dialog"' in page and "/static/confirm.js" in page


def test_a_card_of_another_team_typed_at_redemption_says_no_card_found_and_keeps_the_form(client, db, story):
    from sqlalchemy import select

    from portal.audit.models import AuditEvent
    from portal.membership import members

    with db.write() as s:
        m = members.enrol(s, story.actor(db, "charlie"), uuid.UUID(story.files["charlie"][0]), cause="application")
        number = members.current_card(s, members.primary_account(s, m).id).number
    client.headers["Accept-Language"] = "en"
    signed_in(client, "alice")
    r = post(client, "/redeem", {"card": number, "item": "gift-100", "step": "lookup"}, from_page="/redeem")
    assert r.status_code == 400 and "Access denied" not in r.text
    said = re.search(r'data-error-for="card">([^<]+)<', r.text)
    assert said and said.group(1) == "No card found that you may use."
    assert f'value="{number}"' in r.text  # kept to correct the typing
    with db.read() as s:
        e = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert (e.actor_username, e.action, e.outcome, e.reason) == ("alice", "member.redeem", "denied", "card not in scope")


def test_long_text_is_refused_with_a_message_not_cut(client, db, story):
    """Over its limit a reason is refused next to the field (4xx), and nothing is written."""
    from portal.access.models import AccessRequest

    client.headers["Accept-Language"] = "en"
    signed_in(client, "charlie")
    r = post(client, "/access-requests/new", {"file_no": file_no(db, story), "reason": "客户来电询问积分余额" * 101,
                                              "scope": "view", "hours": "4"}, from_page="/access-requests/new")
    assert r.status_code == 400
    assert "At most 1000 characters." in html.unescape(r.text)
    with db.read() as s:
        assert s.query(AccessRequest).count() == 0
    rid = ask(db, story, file_no(db, story))
    signed_in(client, "bob")
    r = post(client, f"/approvals/{rid}/deny", {"note": "x" * 501}, from_page="/approvals")
    assert r.status_code == 400 and "At most 500 characters." in html.unescape(r.text)
    with db.read() as s:
        assert s.get(AccessRequest, rid).status == "pending"
    page = client.get("/approvals").text
    assert 'name="note" placeholder="Reason for refusal" aria-label="Reason for refusal" maxlength="500"' in page
    assert "/static/limits.js" in page


def test_a_bulk_reassignment_redirects_so_a_reload_repeats_nothing(client, db, story):
    client.headers["Accept-Language"] = "en"
    signed_in(client, "bob")
    r = post(client, "/customers/reassign", {"from": "alice", "owner": "bob", "reason": "Alice has left the team"},
             from_page="/customers/reassign")
    assert r.status_code == 303 and r.headers["location"].startswith("/customers/reassign?moved=")
    page = client.get(r.headers["location"])
    moved = re.search(r'data-testid="moved">([^<]+)<', page.text)
    assert moved and re.fullmatch(r"\d+ file\(s\) moved from alice to bob\.", html.unescape(moved.group(1)))
    assert client.get("/customers/reassign?moved=3&from=<b>&to=x").text.count('data-testid="moved"') == 0
