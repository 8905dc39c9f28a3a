"""Membership in the browser: the section on a file, the purchase form, card steps, leaders' adjustments,
the catalogue and redemption page, and applying for a non-member."""
from __future__ import annotations

import html
import re
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.customers.rules import InvalidField
from portal.membership import members
from portal.membership.models import CardAccount, MembershipApplication, Purchase
from portal.views.membership import fen_of, whole_number, yuan

from .browser import post, signed_in
from .factories import id_number_of


def at(y, m, d, h=4, minute=0):
    # 04:00 UTC is noon in Shanghai: the programme date is the same calendar day.
    return datetime(y, m, d, h, minute, tzinfo=timezone.utc)


@pytest.fixture
def en(client):
    client.headers["Accept-Language"] = "en"
    return client


def enrol(db, story, owner="alice", i=0) -> tuple[str, str]:
    """Make one of the owner's files a member; (file id, card number)."""
    fid = uuid.UUID(story.files[owner][i])
    with db.write() as s:
        m = members.enrol(s, story.actor(db, owner), fid, cause="application")
        return str(fid), members.current_card(s, members.primary_account(s, m).id).number


def purchase_count(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(Purchase))


def balance(db, number: str) -> int:
    from portal.membership.models import MemberCard
    with db.read() as s:
        card = s.scalar(select(MemberCard).where(MemberCard.number == number))
        return s.get(CardAccount, card.account_id).points_balance


def error_for(page: str, field: str) -> str:
    m = re.search(rf'data-error-for="{re.escape(field)}">([^<]+)<', page)
    return html.unescape(m.group(1)).strip() if m else ""


def shown(page: str, name: str) -> str:
    m = re.search(rf'data-testid="{name}"[^>]*>([^<]*)<', page)
    return html.unescape(m.group(1)).strip() if m else ""


def buy(client, fid: str, rows: list[tuple[str, str, str]], **extra):
    data = {"receipt_no": extra.pop("receipt_no", f"T{uuid.uuid4().hex[:8]}"), "purchased_on": "2026-03-10",
            "payment_method": "cash", **extra}
    for i, (product, qty, price) in enumerate(rows, start=1):
        data.update({f"product_{i}": product, f"qty_{i}": qty, f"price_{i}": price})
    r = post(client, f"/customers/{fid}/purchases/new", data, from_page=f"/customers/{fid}/purchases/new")
    if r.status_code == 303:  # recorded: POST/redirect/GET to what was recorded
        done = client.get(r.headers["location"])
        done.redirected_from = r
        return done
    return r


# ---------------------------------------------------------------- money in the forms

def test_yuan_is_parsed_from_the_string_exactly_and_shown_with_two_decimals():
    assert fen_of("128.50", "p") == 12_850
    assert fen_of("¥1,234.5", "p") == 123_450
    assert fen_of("0.07", "p") == 7
    assert fen_of("-12.30", "p", signed=True) == -1_230
    for bad in ("12.345", "abc", "", "1e3", "-1", "NaN"):
        with pytest.raises(InvalidField):
            fen_of(bad, "p")
    assert whole_number("-200", "points", signed=True) == -200
    assert yuan(123_450) == "¥1,234.50" and yuan(-5) == "-¥0.05" and yuan(0) == "¥0.00"


# ---------------------------------------------------------------- purchases

def test_alice_records_a_purchase_through_the_form_and_sees_points_and_the_panel(en, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid, number = enrol(db, story)
    signed_in(en, "alice")
    form = en.get(f"/customers/{fid}/purchases/new")
    assert form.status_code == 200
    assert re.search(r'name="receipt_no"[^>]*value="P20260310\d{4}"', form.text)
    assert 'value="2026-03-10"' in form.text
    r = buy(en, fid, [("茅台 飞天", "2", "128.50"), ("", "1", ""), ("礼盒", "1", "100")],
            special_3="1", receipt_no="P202603100001")
    assert r.status_code == 200, r.text[:2000]
    assert re.fullmatch(rf"/customers/{fid}/purchases/new\?done=\d+", r.redirected_from.headers["location"])
    assert shown(r.text, "paid") == "¥357.00"
    assert shown(r.text, "points-earned") == "257"  # the special-price line earns nothing
    assert shown(r.text, "points-balance") == "257"
    page = en.get(f"/customers/{fid}")
    assert 'id="membership"' in page.text
    assert shown(page.text, "points-balance") == "257"
    assert shown(page.text, "card-number") == number
    assert "P202603100001" in page.text and "茅台 飞天" in page.text
    assert shown(page.text, "tier") == "Regular"


def test_a_large_enough_purchase_makes_a_non_member_join_and_shows_the_new_card(en, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid = story.files["alice"][1]
    signed_in(en, "alice")
    r = buy(en, fid, [("茅台", "1", "680.00")])
    assert r.status_code == 200
    assert re.search(r"New card: 755 \d{5}", r.text)


def test_a_joining_purchase_names_its_referrer_who_earns_referral_points(en, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    _, referrer = enrol(db, story, i=0)
    signed_in(en, "alice")
    r = buy(en, story.files["alice"][1], [("茅台", "1", "680.00")], referrer_card="755 99999")
    assert r.status_code == 400 and error_for(r.text, "referrer_card") and purchase_count(db) == 0
    r = buy(en, story.files["alice"][1], [("茅台", "1", "680.00")], referrer_card=referrer)
    assert r.status_code == 200 and balance(db, referrer) == 100


def test_a_price_with_three_decimals_is_refused_next_to_the_field_and_nothing_is_written(en, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid, _ = enrol(db, story)
    signed_in(en, "alice")
    before = purchase_count(db)
    r = buy(en, fid, [("茅台", "1", "12.345")], pin="123456")
    assert r.status_code == 400
    assert "two decimals" in error_for(r.text, "price_1")
    assert 'value="12.345"' in r.text  # kept for correction ...
    assert 'value="123456"' not in r.text  # ... but never the PIN
    assert purchase_count(db) == before


def test_the_domain_refusal_lands_on_the_right_row(en, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid, _ = enrol(db, story)
    signed_in(en, "alice")
    r = buy(en, fid, [("", "", ""), ("茅台", "0", "10")])
    assert r.status_code == 400 and error_for(r.text, "qty_2")
    r = buy(en, fid, [("茅台", "1", "10")], receipt_no="bad receipt!")
    assert r.status_code == 400 and error_for(r.text, "receipt_no")
    assert purchase_count(db) == 0


def test_charlie_cannot_open_the_purchase_form_of_alices_client_and_the_attempt_is_recorded(client, db, story):
    signed_in(client, "charlie")
    fid = story.files["alice"][0]
    r = client.get(f"/customers/{fid}/purchases/new")
    assert r.status_code == 403
    r = post(client, f"/customers/{fid}/purchases/new", {"receipt_no": "X1", "purchased_on": "2026-03-10",
                                                          "payment_method": "cash", "product_1": "x",
                                                          "price_1": "1"})
    assert r.status_code == 403
    with db.read() as s:
        denied = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "member.purchase",
                                                         AuditEvent.outcome == "denied")))
    assert len(denied) == 2 and {e.actor_username for e in denied} == {"charlie"}
    assert purchase_count(db) == 0


def test_a_purchase_is_returned_from_the_panel(en, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid, number = enrol(db, story)
    signed_in(en, "alice")
    buy(en, fid, [("茅台", "1", "300")], receipt_no="R-RET-1")
    page = f"/customers/{fid}"
    r = post(en, f"/customers/{fid}/purchases/return", {"receipt_no": "R-RET-1", "reason": "no"}, from_page=page)
    assert r.status_code == 400 and error_for(r.text, "reason")
    r = post(en, f"/customers/{fid}/purchases/return", {"receipt_no": "R-RET-1", "reason": "customer changed mind"},
             from_page=page)
    assert r.status_code == 303 and r.headers["location"].endswith(f"/customers/{fid}#membership")
    assert balance(db, number) == 0


# ---------------------------------------------------------------- leaders only

def test_only_leaders_see_and_make_adjustments(en, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid, number = enrol(db, story)
    page = f"/customers/{fid}"
    signed_in(en, "alice")
    text = en.get(page).text
    assert 'data-testid="redeem"' in text and 'data-testid="freeze"' in text
    for leaders_only in ("adjust", "sv_adjust", "cancel", "set-tier"):
        assert f'data-testid="{leaders_only}"' not in text, leaders_only
    r = post(en, f"/customers/{fid}/points/adjust", {"card": number, "points": "500", "reason": "goodwill gesture"},
             from_page=page)
    assert r.status_code == 403
    r = post(en, f"/customers/{fid}/tier", {"tier": "platinum", "reason": "big client"}, from_page=page)
    assert r.status_code == 403
    assert balance(db, number) == 0

    en.cookies.clear()
    signed_in(en, "bob")
    text = en.get(page).text
    for leaders_only in ("adjust", "sv_adjust", "cancel", "set-tier"):
        assert f'data-testid="{leaders_only}"' in text, leaders_only
    r = post(en, f"/customers/{fid}/points/adjust", {"card": number, "points": "500", "reason": "x"}, from_page=page)
    assert r.status_code == 400 and error_for(r.text, "reason")
    r = post(en, f"/customers/{fid}/points/adjust", {"card": number, "points": "1.5", "reason": "goodwill gesture"},
             from_page=page)
    assert r.status_code == 400 and error_for(r.text, "points")
    r = post(en, f"/customers/{fid}/points/adjust", {"card": number, "points": "500", "reason": "goodwill gesture"},
             from_page=page)
    assert r.status_code == 303
    assert balance(db, number) == 500
    r = post(en, f"/customers/{fid}/tier", {"tier": "platinum", "floor": "", "ceiling": "", "reason": "big client"},
             from_page=page)
    assert r.status_code == 303
    assert shown(en.get(page).text, "tier") == "Platinum"
    r = post(en, f"/customers/{fid}/cards/cancel", {"card": number, "reason": "client asked to cancel"},
             from_page=page)
    assert r.status_code == 303
    assert 'data-testid="restore"' in en.get(page).text


def test_a_card_of_another_file_is_refused_on_this_file(en, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid, _ = enrol(db, story, i=0)
    _, other = enrol(db, story, i=1)
    signed_in(en, "alice")
    r = post(en, f"/customers/{fid}/cards/freeze", {"card": other, "reason": "suspicious use"},
             from_page=f"/customers/{fid}")
    assert r.status_code == 404


# ---------------------------------------------------------------- cards

def test_a_lost_card_is_replaced_with_a_new_number_and_the_old_one_stops_working(en, db, vault, story,
                                                                                 clock_at):
    clock_at(at(2026, 3, 10))
    fid, old = enrol(db, story)
    holder = id_number_of(db, vault, fid)
    page = f"/customers/{fid}"
    signed_in(en, "alice")
    r = post(en, f"/customers/{fid}/cards/loss", {"card": old, "reason": "lost the wallet", "id_number": holder},
             from_page=page)
    assert r.status_code == 303
    assert "Reported lost" in en.get(page).text
    r = post(en, f"/customers/{fid}/cards/replace",
             {"card": old, "reason": "replacement after loss", "id_number": holder}, from_page=page)
    assert r.status_code == 303
    text = en.get(page).text
    new = shown(text, "card-number")
    assert re.fullmatch(r"755 \d{5}", new) and new != old
    assert "Replaced" in text  # the old number is listed as replaced
    r = post(en, "/redeem", {"card": old, "item": "coupon-50", "step": "redeem"}, from_page="/redeem")
    assert r.status_code == 400
    assert "no longer works" in error_for(r.text, "card")
    r = post(en, f"/customers/{fid}/stored-value/recharge", {"card": old, "amount": "100", "payment_method": "cash"},
             from_page=page)
    assert r.status_code == 400 and "no longer works" in r.text


def test_stored_value_recharge_pin_and_spend_from_the_panel(en, db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid, number = enrol(db, story)
    holder = id_number_of(db, vault, fid)
    page = f"/customers/{fid}"
    signed_in(en, "alice")
    r = post(en, f"/customers/{fid}/stored-value/recharge",
             {"card": number, "amount": "500.005", "payment_method": "cash"}, from_page=page)
    assert r.status_code == 400 and "two decimals" in error_for(r.text, "amount")
    assert post(en, f"/customers/{fid}/stored-value/recharge",
                {"card": number, "amount": "500", "payment_method": "cash"}, from_page=page).status_code == 303
    r = post(en, f"/customers/{fid}/cards/pin", {"card": number, "pin": "12345", "id_number": holder},
             from_page=page)
    assert r.status_code == 400 and error_for(r.text, "pin")
    assert post(en, f"/customers/{fid}/cards/pin", {"card": number, "pin": "246810", "id_number": holder},
                from_page=page).status_code == 303
    r = post(en, f"/customers/{fid}/stored-value/spend", {"card": number, "amount": "20", "pin": "000000"},
             from_page=page)
    assert r.status_code == 400 and error_for(r.text, "pin")
    r = post(en, f"/customers/{fid}/stored-value/spend", {"card": number, "amount": "20.50", "pin": "246810"},
             from_page=page)
    assert r.status_code == 303
    assert shown(en.get(page).text, "stored-value") == "¥479.50"


def test_a_recharge_form_sent_twice_is_acted_on_once(en, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid, number = enrol(db, story)
    page = f"/customers/{fid}"
    signed_in(en, "alice")
    form = {"card": number, "amount": "100", "payment_method": "cash", "form_key": "one-click"}
    assert post(en, f"/customers/{fid}/stored-value/recharge", form, from_page=page).status_code == 303
    assert post(en, f"/customers/{fid}/stored-value/recharge", form, from_page=page).status_code == 303
    assert shown(en.get(page).text, "stored-value") == "¥100.00"
    # A new form (a new key) is a new recharge.
    form["form_key"] = "second-form"
    assert post(en, f"/customers/{fid}/stored-value/recharge", form, from_page=page).status_code == 303
    assert shown(en.get(page).text, "stored-value") == "¥200.00"


# ---------------------------------------------------------------- catalogue and redemption

def test_redemption_through_the_catalogue_page_deducts_points(en, db, story, clock_at):
    # 23:50 in Shanghai: points earned today are redeemable from tomorrow, 15 minutes away.
    clock_at(at(2026, 3, 10, 15, 50))
    fid, number = enrol(db, story)
    signed_in(en, "alice")
    assert buy(en, fid, [("茅台", "1", "1500")]).status_code == 200
    page = en.get("/redeem")
    assert page.status_code == 200 and 'data-item="gift-100"' in page.text
    r = post(en, "/redeem", {"card": number, "item": "gift-100", "step": "redeem"}, from_page="/redeem")
    assert r.status_code == 400 and "only 0 can be redeemed" in error_for(r.text, "item")
    clock_at(at(2026, 3, 10, 16, 5))
    r = post(en, "/redeem", {"card": number, "step": "lookup"}, from_page="/redeem")
    assert r.status_code == 200 and shown(r.text, "redeemable") == "1,500"
    sent = {"card": number, "item": "coupon-50", "step": "redeem", "form_key": "one-form"}
    r = post(en, "/redeem", sent, from_page="/redeem")
    assert r.status_code == 200
    assert shown(r.text, "points-deducted") == "500" and shown(r.text, "points-balance") == "1,000"
    # The same form sent again (a reload of the result, a double click) takes nothing more.
    r = post(en, "/redeem", sent, from_page="/redeem")
    assert r.status_code == 200 and shown(r.text, "points-balance") == "1,000"
    assert balance(db, number) == 1_000
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "member.redeem", AuditEvent.object_type == "card")) >= 2  # look-up and redemption


def test_an_unknown_card_number_is_shown_next_to_the_field(en, story):
    signed_in(en, "alice")
    r = post(en, "/redeem", {"card": "755 99999", "step": "lookup"}, from_page="/redeem")
    assert r.status_code == 400 and error_for(r.text, "card")
    r = post(en, "/redeem", {"card": "not a card", "step": "lookup"}, from_page="/redeem")
    assert r.status_code == 400 and error_for(r.text, "card")


def test_charlie_cannot_look_up_alices_card(en, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    _, number = enrol(db, story)
    signed_in(en, "charlie")
    r = post(en, "/redeem", {"card": number, "step": "lookup"}, from_page="/redeem")
    # Refused (and audited) plainly: most often a mistyped number, so the form stays as typed.
    assert r.status_code == 400 and error_for(r.text, "card") == "No card found that you may use."
    with db.read() as s:
        e = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert (e.actor_username, e.action, e.outcome) == ("charlie", "member.redeem", "denied")


# ---------------------------------------------------------------- applying for a non-member

def test_a_non_member_file_offers_the_application_form_and_it_creates_a_pending_application(en, db, story):
    fid = story.files["alice"][2]
    page = f"/customers/{fid}"
    signed_in(en, "alice")
    text = en.get(page).text
    assert 'data-testid="non-member"' in text and 'data-testid="apply"' in text
    r = post(en, f"/customers/{fid}/apply", {"card_type": "no-such-card", "note": "kept note"}, from_page=page)
    assert r.status_code == 400 and error_for(r.text, "card_type")
    assert ">kept note</textarea>" in r.text  # what was typed comes back with the error
    r = post(en, f"/customers/{fid}/apply", {"card_type": "dining", "note": "regular diner"}, from_page=page)
    assert r.status_code == 303
    with db.read() as s:
        apps = list(s.scalars(select(MembershipApplication).where(
            MembershipApplication.customer_id == uuid.UUID(fid))))
    assert [(a.status, a.card_type, a.note) for a in apps] == [("pending", "dining", "regular diner")]
    text = en.get(page).text
    assert "Waiting for review" in text and 'data-testid="apply"' not in text


# ---------------------------------------------------------------- the purchase form's lines and running total

def test_the_form_grows_a_line_without_script_and_keeps_what_was_typed(en, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid, _ = enrol(db, story)
    signed_in(en, "alice")
    form = en.get(f"/customers/{fid}/purchases/new").text
    assert 'name="product_1"' in form and 'name="product_2"' not in form and "data-line-template" in form
    r = post(en, f"/customers/{fid}/purchases/new", {"receipt_no": "P1", "purchased_on": "2026-03-10",
                                                     "payment_method": "cash", "product_1": "茅台", "qty_1": "2",
                                                     "price_1": "100", "add_line": "1"},
             from_page=f"/customers/{fid}/purchases/new")
    assert r.status_code == 200 and purchase_count(db) == 0
    assert 'name="product_2"' in r.text and 'value="茅台"' in r.text
    assert shown(r.text, "quote-paid") == "¥200.00"  # the figures come with the page, without script too
    r = post(en, f"/customers/{fid}/purchases/new", {"product_1": "茅台", "price_1": "100", "product_2": "x",
                                                     "remove_line": "2"}, from_page=f"/customers/{fid}/purchases/new")
    assert 'name="product_2"' not in r.text and 'name="product_1"' in r.text


def test_the_running_total_says_what_the_purchase_will_come_to_and_records_nothing(en, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid, number = enrol(db, story)
    signed_in(en, "alice")
    lines = {"product_1": "茅台 飞天", "qty_1": "2", "price_1": "128.50", "product_3": "礼盒", "qty_3": "1",
             "price_3": "100", "special_3": "1"}
    r = post(en, f"/customers/{fid}/purchases/new", {"purchased_on": "2026-03-10", "payment_method": "cash",
                                                     "quote": "1", **lines},
             from_page=f"/customers/{fid}/purchases/new", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text and purchase_count(db) == 0
    paid, points = shown(r.text, "quote-paid"), shown(r.text, "quote-points")
    done = buy(en, fid, [("茅台 飞天", "2", "128.50"), ("", "1", ""), ("礼盒", "1", "100")], special_3="1")
    assert (shown(done.text, "paid"), shown(done.text, "points-earned")) == (paid, points) == ("¥357.00", "257")
    half = post(en, f"/customers/{fid}/purchases/new", {"quote": "1", "product_1": "茅台", "price_1": "12.345"},
                from_page=f"/customers/{fid}/purchases/new", headers={"HX-Request": "true"})
    assert 'data-testid="quote-note"' in half.text and "quote-paid" not in half.text


def test_a_product_name_over_its_limit_is_refused_not_cut(en, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid, _ = enrol(db, story)
    signed_in(en, "alice")
    r = buy(en, fid, [("茅" * 201, "1", "10")])
    assert r.status_code == 400 and error_for(r.text, "product_1") == "At most 200 characters."
    assert purchase_count(db) == 0
