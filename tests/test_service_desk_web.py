"""The customer-service desk, application review and the reminder lists, through the web app."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from portal.customers.models import CustomerFile
from portal.customers.rules import InvalidField
from portal.inbox.service import recent
from portal.membership import applications, cards, members, purchases
from portal.membership.models import MembershipApplication, Purchase
from portal.membership.outcomes import PurchaseRequest
from portal.membership.rules import PurchaseLine
from portal.policy import Action

from .browser import post, signed_in
from .factories import id_number_of

BASE = "http://testserver.local"


def at(y, m, d, h=4):
    # 04:00 UTC is noon in Shanghai: the programme date is the same calendar day.
    return datetime(y, m, d, h, tzinfo=timezone.utc)


def buy(db, vault, actor, receipt, yuan, *, card=None):
    req = PurchaseRequest(receipt_no=receipt, lines=(PurchaseLine("茅台", 1, yuan * 100, False, False),),
                          payment_method="cash", card_number=card)
    with db.write() as s:
        return purchases.record_purchase(s, vault, actor, req)


def enrolled(db, story, owner="alice", i=0):
    fid = uuid.UUID(story.files[owner][i])
    with db.write() as s:
        m = members.enrol(s, story.actor(db, owner), fid, cause="application")
        account = members.primary_account(s, m)
        return fid, members.current_card(s, account.id).number


def file_of(db, vault, fid):
    with db.read() as s:
        f = s.get(CustomerFile, fid)
        name = vault.decrypt(f.name_ct, table="customer_file", column="name", row_id=f.id)
        return f.file_no, name


def desk_lookup(s, vault, actor, number):
    """The card as the desk shows it (customer service looks up under its own action)."""
    return cards.lookup_card(s, vault, actor, number, action=Action.SERVICE_LOOKUP)


def desk_post(client, path, data):
    return post(client, path, data, from_page="/service")


# ---------------------------------------------------------------- the desk

def test_cathy_looks_up_a_card_and_sees_only_the_masked_name(client, db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid, number = enrolled(db, story)
    buy(db, vault, story.actor(db, "alice"), "R-1", 1_200, card=number)
    file_no, name = file_of(db, vault, fid)
    signed_in(client, "cathy")
    assert client.get("/service").status_code == 200
    r = desk_post(client, "/service/lookup", {"card_number": number})
    assert r.status_code == 200
    assert 'data-testid="card-summary"' in r.text
    assert file_no in r.text and number in r.text
    assert name[0] + "*" in r.text  # 王*明
    assert name not in r.text
    assert "1,200" in r.text  # points balance
    # The number went in the body, not the address.
    assert number.replace(" ", "") not in str(r.url) and "card_number" not in str(r.url)


def test_a_bad_card_number_is_shown_next_to_the_field(client, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    signed_in(client, "cathy")
    r = desk_post(client, "/service/lookup", {"card_number": "card #1?"})  # no card, mobile, ID or name
    assert r.status_code == 400 and 'data-error-for="card_number"' in r.text
    r = desk_post(client, "/service/lookup", {"card_number": "755 99999"})
    assert r.status_code == 404 and 'data-error-for="card_number"' in r.text


def test_cathy_reports_a_card_lost_and_it_stops_working(client, db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid, number = enrolled(db, story)
    signed_in(client, "cathy")
    r = desk_post(client, "/service/cards/loss", {"card_number": number, "reason": "x"})
    assert r.status_code == 400 and 'data-error-for="reason"' in r.text
    with db.write() as s:
        assert desk_lookup(s, vault, story.actor(db, "cathy"), number).card_status == "current"
    r = desk_post(client, "/service/cards/loss", {"card_number": number, "reason": "member lost the wallet",
                                                  "id_number": id_number_of(db, vault, fid)})
    assert r.status_code == 200 and 'data-testid="desk-notice"' in r.text
    assert 'data-testid="loss-form"' not in r.text  # a lost card cannot be lost again
    with pytest.raises(InvalidField) as exc:
        buy(db, vault, story.actor(db, "alice"), "R-2", 100, card=number)
    assert exc.value.code == "card.lost"


def test_cathy_freezes_and_unfreezes_a_card(client, db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    _, number = enrolled(db, story)
    signed_in(client, "cathy")
    r = desk_post(client, "/service/cards/freeze", {"card_number": number, "reason": "member asked to freeze"})
    assert r.status_code == 200 and 'data-testid="unfreeze-form"' in r.text
    with db.write() as s:
        assert desk_lookup(s, vault, story.actor(db, "cathy"), number).account_status == "frozen"
    r = desk_post(client, "/service/cards/freeze", {"card_number": number, "reason": "twice over"})
    assert r.status_code == 400 and 'data-error-for="card_number"' in r.text
    r = desk_post(client, "/service/cards/unfreeze", {"card_number": number, "reason": "member is back"})
    assert r.status_code == 200
    with db.write() as s:
        assert desk_lookup(s, vault, story.actor(db, "cathy"), number).account_status == "active"


def test_cathy_claims_missed_points_for_an_anonymous_purchase(client, db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid, number = enrolled(db, story)
    alice = story.actor(db, "alice")
    with db.write() as s:
        purchases.record_purchase(s, vault, alice, PurchaseRequest(
            receipt_no="ANON-1", lines=(PurchaseLine("五粮液", 1, 50_000),), payment_method="cash"))
    clock_at(at(2026, 3, 20))
    signed_in(client, "cathy")
    r = desk_post(client, "/service/claims", {"receipt_no": "ANON-1", "card_number": number, "reason": ""})
    assert r.status_code == 400 and 'data-error-for="reason"' in r.text
    r = desk_post(client, "/service/claims", {"receipt_no": "NOPE-1", "card_number": number,
                                              "reason": "forgot the card"})
    assert r.status_code == 404 and 'data-error-for="receipt_no"' in r.text
    with db.read() as s:
        assert s.scalar(select(Purchase).where(Purchase.receipt_no == "ANON-1")).customer_id is None
    r = desk_post(client, "/service/claims", {"receipt_no": "ANON-1", "card_number": number,
                                              "reason": "forgot the card"})
    assert r.status_code == 200 and 'data-testid="claimed"' in r.text and "500" in r.text
    with db.write() as s:
        assert desk_lookup(s, vault, story.actor(db, "cathy"), number).points_balance == 500
        assert s.scalar(select(Purchase).where(Purchase.receipt_no == "ANON-1")).customer_id == fid
    r = desk_post(client, "/service/claims", {"receipt_no": "ANON-1", "card_number": number,
                                              "reason": "forgot the card"})
    assert r.status_code == 400 and 'data-error-for="receipt_no"' in r.text


def test_alice_cannot_claim_points_and_dave_cannot_open_the_desk(app, client, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    with TestClient(app=app, base_url=BASE) as dave:
        signed_in(dave, "dave")
        assert dave.get("/service").status_code == 403
    signed_in(client, "alice")
    r = post(client, "/service/claims", {"receipt_no": "ANON-1", "card_number": "755 00001",
                                         "reason": "forgot the card"})
    assert r.status_code == 403


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_the_desk_is_customer_services_own(app, db, vault, story, clock_at, user):
    """Salespeople and leaders take card steps on the file page; the desk's actions (a look-up of
    any member's card, its loss and freeze) belong to customer service alone."""
    clock_at(at(2026, 3, 10))
    _, number = enrolled(db, story)
    with TestClient(app=app, base_url=BASE) as c:
        signed_in(c, user)
        assert c.get("/service").status_code == 403
        for path, data in (("/service/lookup", {}), ("/service/cards/freeze", {"reason": "member asked"}),
                           ("/service/cards/loss", {"reason": "member lost it"})):
            r = post(c, path, {"card_number": number, **data})
            assert r.status_code == 403 and number not in r.text, path
    with db.write() as s:
        summary = desk_lookup(s, vault, story.actor(db, "cathy"), number)
        assert (summary.card_status, summary.account_status) == ("current", "active")


def test_the_desk_link_is_in_the_nav_for_customer_service_only(app, client, story, clock_at):
    clock_at(at(2026, 3, 10))
    signed_in(client, "cathy")
    page = client.get("/").text
    assert 'href="/service"' in page and 'href="/service/applications"' in page
    assert 'href="/members/expiring"' not in page
    with TestClient(app=app, base_url=BASE) as alice:
        signed_in(alice, "alice")
        page = alice.get("/").text
        assert 'href="/service"' not in page
        assert 'href="/members/expiring"' in page and 'href="/members/birthdays"' in page


# ---------------------------------------------------------------- applications

def _apply(db, story, owner="alice", i=0):
    fid = uuid.UUID(story.files[owner][i])
    with db.write() as s:
        app = applications.submit_application(s, story.actor(db, owner), fid, card_type="standard",
                                              note="long-standing client")
        applications.grant_exception(s, story.actor(db, "bob" if owner == "alice" else "grace"), app.id,
                                     "long-standing client, joins without spend")
        return app.id, fid


def test_cathy_approves_an_application_and_alice_is_told(client, db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    app_id, fid = _apply(db, story)
    file_no, name = file_of(db, vault, fid)
    signed_in(client, "cathy")
    r = client.get("/service/applications")
    assert r.status_code == 200 and 'data-testid="pending-applications"' in r.text
    assert file_no in r.text and name not in r.text and name[0] + "*" in r.text
    r = post(client, f"/service/applications/{app_id}/approve", {}, from_page="/service/applications")
    assert r.status_code == 303 and r.headers["location"] == "/service/applications"
    with db.read() as s:
        assert s.get(MembershipApplication, app_id).status == "approved"
        assert members.membership_of(s, fid).status == "active"
        notices = recent(s, story.users["alice"])
    assert any(n.kind == "member.approved" for n in notices)
    r = client.get("/service/applications")
    assert 'data-testid="decided-applications"' in r.text and 'data-testid="pending-applications"' not in r.text


def test_a_rejection_needs_a_reason(client, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    app_id, fid = _apply(db, story)
    signed_in(client, "cathy")
    r = post(client, f"/service/applications/{app_id}/reject", {"reason": ""}, from_page="/service/applications")
    assert r.status_code == 400 and 'data-error-for="reason"' in r.text
    with db.read() as s:
        assert s.get(MembershipApplication, app_id).status == "pending"
    r = post(client, f"/service/applications/{app_id}/reject", {"reason": "no purchase history"},
             from_page="/service/applications")
    assert r.status_code == 303
    with db.read() as s:
        assert s.get(MembershipApplication, app_id).status == "rejected"
        assert any(n.kind == "member.rejected" for n in recent(s, story.users["alice"]))
    r = post(client, f"/service/applications/{app_id}/approve", {}, from_page="/service/applications")
    assert r.status_code == 400  # already decided


def test_an_unknown_application_is_a_404(client, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    signed_in(client, "cathy")
    r = post(client, "/service/applications/999999/approve", {}, from_page="/service/applications")
    assert r.status_code == 404


def test_alice_cannot_open_the_review_queue(client, story, clock_at):
    clock_at(at(2026, 3, 10))
    signed_in(client, "alice")
    assert client.get("/service/applications").status_code == 403


# ---------------------------------------------------------------- reminder lists

def test_alice_sees_her_member_whose_points_are_due_to_expire_and_charlie_does_not(app, db, vault, story,
                                                                                     clock_at):
    clock_at(at(2026, 3, 10))
    fid, number = enrolled(db, story)
    buy(db, vault, story.actor(db, "alice"), "R-EXP", 800, card=number)
    file_no, name = file_of(db, vault, fid)
    clock_at(at(2028, 2, 24))  # about 23.5 months later: the points expire on 2028-03-10
    with TestClient(app=app, base_url=BASE) as alice:
        signed_in(alice, "alice")
        r = alice.get("/members/expiring")
        assert r.status_code == 200 and 'data-testid="expiring"' in r.text
        assert f'href="/customers/{fid}"' in r.text and file_no in r.text
        assert "2028-03-10" in r.text and "800" in r.text and name not in r.text
    with TestClient(app=app, base_url=BASE) as charlie:
        signed_in(charlie, "charlie")
        r = charlie.get("/members/expiring")
        assert r.status_code == 200 and file_no not in r.text


def test_birthdays_this_week_lists_the_member(app, db, vault, story, clock_at):
    # The story's customers were born on 7 March (from their ID numbers); 2026-03-07 is a Saturday.
    clock_at(at(2026, 3, 4))
    fid, _ = enrolled(db, story)
    file_no, name = file_of(db, vault, fid)
    with TestClient(app=app, base_url=BASE) as alice:
        signed_in(alice, "alice")
        r = alice.get("/members/birthdays")
        assert r.status_code == 200 and 'data-testid="birthdays"' in r.text
        assert f'href="/customers/{fid}"' in r.text and "03-07" in r.text and name not in r.text
    with TestClient(app=app, base_url=BASE) as charlie:
        signed_in(charlie, "charlie")
        assert file_no not in charlie.get("/members/birthdays").text
    clock_at(at(2026, 3, 10))  # the next week: nobody
    with TestClient(app=app, base_url=BASE) as alice:
        signed_in(alice, "alice")
        assert 'data-testid="no-rows"' in alice.get("/members/birthdays").text


def test_cathy_and_dave_have_no_reminder_lists(app, client, story, clock_at):
    clock_at(at(2026, 3, 10))
    signed_in(client, "cathy")
    assert client.get("/members/expiring").status_code == 403
    with TestClient(app=app, base_url=BASE) as dave:
        signed_in(dave, "dave")
        assert dave.get("/members/birthdays").status_code == 403
