"""Customer service finds a member at /service by card number, mobile, ID number or full name:
masked rows, only members (never other files), every search audited without what was typed."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from portal.accounts.actor import Actor
from portal.audit.models import AuditEvent
from portal.membership import members

from .browser import post, signed_in
from .factories import valid_id


@pytest.fixture
def enrolled(db, story):
    """alice's 王小明, bob's 王小明 and charlie's 刘洋 are members; alice's 李娜 is not."""
    with db.write() as s:
        for owner in ("alice", "bob", "charlie"):
            members.enrol(s, Actor.system("test"), uuid.UUID(story.files[owner][0]), cause="import")


def desk(client, q: str):
    return post(client, "/service/lookup", {"card_number": q}, from_page="/service")


def last_lookup(db) -> AuditEvent:
    with db.read() as s:
        return s.scalar(select(AuditEvent).where(AuditEvent.action == "service.lookup")
                        .order_by(AuditEvent.seq.desc()).limit(1))


def test_cathy_finds_members_by_full_name_masked(client, db, story, enrolled):
    signed_in(client, "cathy")
    r = desk(client, "王小明")
    assert r.status_code == 200
    assert 'data-testid="member-matches"' in r.text
    assert r.text.count("王*明") == 2 and "138****0000" in r.text and "138****0006" in r.text
    assert "王小明</td>" not in r.text and "13800130000" not in r.text
    entry = last_lookup(db)
    assert entry.fields == "name" and "王" not in entry.detail + entry.object_id
    assert "2 member(s)" in entry.detail


def test_one_match_by_mobile_opens_the_card(client, db, story, enrolled):
    signed_in(client, "cathy")
    r = desk(client, "13800130003")  # charlie's 刘洋
    assert r.status_code == 200 and 'data-testid="card-summary"' in r.text
    assert "刘*" in r.text and "13800130003" not in r.text.replace('value="13800130003"', "")


def test_by_id_number(client, story, enrolled):
    signed_in(client, "cathy")
    r = desk(client, valid_id(seq="000"))  # alice's 王小明
    assert 'data-testid="card-summary"' in r.text


def test_a_file_that_is_not_a_member_is_not_found(client, story, enrolled):
    signed_in(client, "cathy")
    r = desk(client, "李娜")
    assert r.status_code == 200 and 'data-testid="no-member"' in r.text and "李*" not in r.text


def test_a_text_that_is_nothing_we_search_by_is_refused_at_the_field(client, story, enrolled):
    client.headers["Accept-Language"] = "en"
    signed_in(client, "cathy")
    r = desk(client, "12-ab!")
    assert r.status_code == 400
    assert "Enter a card number, a mobile or ID number, or the member" in r.text


def test_a_salesperson_finds_only_her_own_members_at_the_desk(client, story, enrolled):
    """The desk's search is scoped like every list: alice does not see bob's 王小明."""
    signed_in(client, "alice")
    r = desk(client, "王小明")
    if r.status_code == 403:
        return  # the desk is customer service's; a salesperson refused outright is fine too
    assert "138****0006" not in r.text


@pytest.mark.parametrize("user", ["dave", "erin"])
def test_roles_without_members_cannot_search_the_desk(client, db, story, enrolled, user):
    signed_in(client, user)
    r = post(client, "/service/lookup", {"card_number": "王小明"}, from_page="/welcome")
    assert r.status_code == 403 and "王*明" not in r.text
