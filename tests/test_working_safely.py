"""Working safely: a file read under a grant says so, a pending request names who decides it, and
irreversible steps ask first (the dialog itself is exercised in e2e/test_access_flow.py)."""
from __future__ import annotations

import html
import re
import uuid

from portal.access import service as access
from portal.customers.models import CustomerFile

from .browser import signed_in

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
