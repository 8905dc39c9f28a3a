"""Flow 9: membership. Alice records a purchase on a member's file and sees the points and the tier
change (regular -> silver), redeems a catalogue item on /redeem and sees the balance drop, reports
the card lost and replaces it, sees the new number on the file, and the old number is refused.

Points earned today are redeemable only from tomorrow, and the server's clock cannot be moved from
here: the setup enrols the file and records a purchase dated yesterday straight in the server's
database (through the domain functions), so that the points it earned can be redeemed today.
"""
from __future__ import annotations

import re
import time
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from playwright.sync_api import Page, expect

from .conftest import (nav_to, NewCustomer, Server, assert_same_document, confirm, create_customer, htmx_ready,
                       mark_document, new_customer_data, shot, sign_in)

EARLIER_YUAN = 1_500                  # bought yesterday (setup): 1,500 points, redeemable today
FORM_LINES = (("茅台 飞天 53度 500ml", 6, "1499.00"), ("礼盒包装", 1, "200.00"))
FORM_YUAN = 6 * 1_499 + 200           # 9,194: with yesterday's 1,500, past ¥10,000 -> silver
ITEM, ITEM_POINTS = "gift-100", 1_000


def _clear_of_midnight(margin_s: int = 90) -> None:
    """The flow takes seconds and compares dates with the server's: never straddle midnight in
    Asia/Shanghai (the programme's day), wait for the new day instead."""
    from portal.membership.rules import PROGRAMME_TZ

    now = datetime.now(PROGRAMME_TZ)
    left = (datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo) - now).total_seconds()
    if left < margin_s:
        time.sleep(left + 1)


def _n(value: int) -> str:
    return f"{value:,}"


def _customer_without_birthday_near(today: date) -> NewCustomer:
    """A new customer whose birthday (from the ID number) is not around today: no birthday discount
    may change what the purchases pay, earn and count."""
    near = {(d.month, d.day) for d in (today - timedelta(days=1), today, today + timedelta(days=1))}
    while True:
        c = new_customer_data()
        born = date(int(c.id_number[6:10]), int(c.id_number[10:12]), int(c.id_number[12:14]))
        if (born.month, born.day) not in near and (born.month, born.day) != (2, 29):
            return c


def _member_with_points_from_yesterday(server: Server, file_id: str, yesterday: date) -> str:
    """Enrol the file (joined yesterday) and record a purchase of ¥1,500 dated yesterday, as alice;
    returns the card number."""
    from sqlalchemy import select

    from portal import clock
    from portal.accounts.models import User
    from portal.accounts.service import actor_for
    from portal.db import Database
    from portal.membership import members, programme, purchases
    from portal.membership.outcomes import PurchaseRequest
    from portal.membership.rules import PurchaseLine
    from portal.org.models import OrgUnit
    from portal.vault import KeyRing, Vault

    db = Database(server.database_url)
    vault = Vault(KeyRing.load(server.key_file))
    try:
        with db.read() as s:
            u = s.scalar(select(User).where(User.username == "alice"))
            alice = actor_for(u, s.get(OrgUnit, u.unit_id), "127.0.0.1")
            st = programme.current_settings(s)
        # The figures this flow is built on (the seed's): fail here, plainly, if they were changed.
        assert (st.silver_spend_fen, st.silver_points, st.regular_points_per_yuan,
                st.regular_discount_per_mille) == (1_000_000, 10_000, 1, 1000), st
        assert any(i.code == ITEM and i.points == ITEM_POINTS for i in st.catalogue), st.catalogue
        assert not st.redemption_months or (yesterday + timedelta(days=1)).month in st.redemption_months, \
            st.redemption_months
        # Points are credited on the day they are recorded: record them yesterday (noon in
        # Shanghai) on this process's clock; the server's clock is untouched.
        clock.set_now(datetime(yesterday.year, yesterday.month, yesterday.day, 4, tzinfo=timezone.utc))
        try:
            with db.write() as s:
                m = members.enrol(s, alice, uuid.UUID(file_id), cause="application", on=yesterday)
                number = members.current_card(s, members.primary_account(s, m).id).number
            with db.write() as s:
                out = purchases.record_purchase(s, vault, alice, PurchaseRequest(
                    receipt_no=f"E2E{uuid.uuid4().hex[:10].upper()}",
                    lines=(PurchaseLine("五粮液 52度", 1, EARLIER_YUAN * 100),),
                    payment_method="cash", customer_id=uuid.UUID(file_id), purchased_on=yesterday))
        finally:
            clock.set_now(None)
        assert out.points_earned == EARLIER_YUAN and out.points_balance == EARLIER_YUAN, out
        assert out.tier == "regular" and out.card_number == number, out
        return number
    finally:
        db.dispose()


def _open_file(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_test_id("membership")).to_be_visible()
    htmx_ready(page)


def _card_action(page: Page, kind: str, reason: str, id_number: str = "") -> None:
    """Open one card action on the panel (a closed <details>), give the reason (and the holder's ID
    number where the step asks for it), submit; back on the file."""
    action = page.get_by_test_id("card-account").locator("details.member-action") \
        .filter(has=page.get_by_test_id(kind))
    expect(action).to_have_count(1)
    action.locator("summary").click()
    form = action.get_by_test_id(kind)
    expect(form).to_be_visible()
    form.locator("input[name=reason]").fill(reason)
    if id_number:
        form.locator("input[name=id_number]").fill(id_number)
    form.locator("button[type=submit]").click()
    with page.expect_navigation():
        confirm(page)  # loss and replacement cannot be undone: the page asks first
    expect(page).to_have_url(re.compile(r"/customers/[0-9a-f-]{36}(#membership)?$"))
    expect(page.get_by_test_id("member-errors")).to_have_count(0)


@pytest.mark.browser_context_args(locale="en-US")
def test_purchase_tier_redeem_lost_card_replaced(page: Page, server):
    from portal.membership.rules import programme_today

    _clear_of_midnight()
    today = programme_today()  # the server's programme date: same clock, same zone
    yesterday = today - timedelta(days=1)

    # A new file of alice's, made a member yesterday, with 1,500 points earned yesterday.
    sign_in(page, "alice")
    c = create_customer(page, _customer_without_birthday_near(today))
    file_id = c.url.rsplit("/", 1)[1]
    number = _member_with_points_from_yesterday(server, file_id, yesterday)
    _open_file(page, c.url)
    panel = page.get_by_test_id("membership")
    expect(panel.get_by_test_id("tier")).to_have_text("Regular")
    expect(panel.get_by_test_id("card-number")).to_have_text(number)
    expect(panel.get_by_test_id("points-balance")).to_have_text(_n(EARLIER_YUAN))
    expect(panel.get_by_test_id("redeemable")).to_have_text(_n(EARLIER_YUAN))
    shot(page, "09-membership-before")

    # Record a purchase through the form: ¥9,194 at the regular rate, 1 point per yuan.
    panel.get_by_test_id("record-purchase").click()
    expect(page).to_have_url(re.compile(rf"/customers/{file_id}/purchases/new$"))
    expect(page.get_by_test_id("buyer")).to_contain_text(number)
    form = page.get_by_test_id("purchase-form")
    expect(form.locator("input[name=purchased_on]")).to_have_value(today.isoformat())
    expect(form.locator("input[name=receipt_no]")).to_have_value(re.compile(r"^P\d{12}$"))
    receipt = form.locator("input[name=receipt_no]").input_value()
    form.locator("select[name=payment_method]").select_option("cash")
    htmx_ready(page)
    mark_document(page)
    for i, (product, qty, price) in enumerate(FORM_LINES, start=1):
        if i > 1:
            form.locator("[data-add-line]").click()  # a line more, in the page (static/purchase.js)
        form.locator(f"input[name=product_{i}]").fill(product)
        form.locator(f"input[name=qty_{i}]").fill(str(qty))
        form.locator(f"input[name=price_{i}]").fill(price)
    # The running total, before anything is recorded (htmx asks the server to price the lines).
    expect(page.get_by_test_id("quote-paid")).to_have_text(f"¥{_n(FORM_YUAN)}.00")
    expect(page.get_by_test_id("quote-points")).to_have_text(_n(FORM_YUAN))
    assert_same_document(page)
    shot(page, "09-membership-purchase-form")
    with page.expect_navigation():
        form.locator("button[data-record]").click()
    expect(page).to_have_url(re.compile(rf"/customers/{file_id}/purchases/new\?done=\d+"))  # POST/redirect/GET

    done = page.get_by_test_id("purchase-done")
    expect(done).to_be_visible()
    expect(done.locator("h1")).to_contain_text(receipt)
    expect(done.get_by_test_id("paid")).to_have_text(f"¥{_n(FORM_YUAN)}.00")
    expect(done.get_by_test_id("discount")).to_contain_text("¥0.00")
    expect(done.get_by_test_id("points-earned")).to_have_text(_n(FORM_YUAN))
    expect(done.get_by_test_id("points-balance")).to_have_text(_n(EARLIER_YUAN + FORM_YUAN))
    expect(done.get_by_test_id("tier-changed")).to_have_text("New tier: Silver.")
    expect(done.get_by_test_id("joined")).to_have_count(0)  # a member already
    shot(page, "09-membership-purchase-done")

    # The file: silver, the new balance, and today's points not yet redeemable.
    with page.expect_navigation():
        done.locator(f"a.button[href='/customers/{file_id}#membership']").click()
    expect(page).to_have_url(re.compile(rf"/customers/{file_id}#membership$"))
    panel = page.get_by_test_id("membership")
    expect(panel.get_by_test_id("tier")).to_have_text("Silver")
    expect(panel.get_by_test_id("points-balance")).to_have_text(_n(EARLIER_YUAN + FORM_YUAN))
    expect(panel.get_by_test_id("redeemable")).to_have_text(_n(EARLIER_YUAN))
    expect(panel.get_by_test_id("purchases").locator(f"tr[data-receipt='{receipt}']")).to_contain_text(
        _n(FORM_YUAN))
    expect(panel.get_by_test_id("member-history")).to_contain_text("Tier change")
    shot(page, "09-membership-silver")

    # Redeem a catalogue item on /redeem with yesterday's points.
    nav_to(page, "/redeem")
    expect(page).to_have_url(re.compile(r"/redeem$"))
    expect(page.get_by_test_id("catalogue").locator(f"tr[data-item='{ITEM}']")).to_contain_text(_n(ITEM_POINTS))
    redeem = page.get_by_test_id("redeem-form")
    redeem.locator("input[name=card]").fill(number)
    with page.expect_navigation():
        redeem.locator("button[name=step][value=lookup]").click()
    summary = page.get_by_test_id("card-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text(c.file_no)
    expect(summary).not_to_contain_text(c.name)  # the holder is masked
    expect(summary.get_by_test_id("redeemable")).to_have_text(_n(EARLIER_YUAN))
    redeem = page.get_by_test_id("redeem-form")
    expect(redeem.locator("input[name=card]")).to_have_value(number)
    redeem.locator("select[name=item]").select_option(ITEM)
    redeem.locator("button[name=step][value=redeem]").click()
    with page.expect_navigation():
        confirm(page)
    redeemed = page.get_by_test_id("redeemed")
    expect(redeemed).to_be_visible()
    expect(redeemed).to_contain_text(number)
    expect(redeemed.get_by_test_id("points-deducted")).to_have_text(_n(ITEM_POINTS))
    after_redeem = EARLIER_YUAN + FORM_YUAN - ITEM_POINTS
    expect(redeemed.get_by_test_id("points-balance")).to_have_text(_n(after_redeem))
    shot(page, "09-membership-redeemed")

    _open_file(page, c.url)
    panel = page.get_by_test_id("membership")
    expect(panel.get_by_test_id("points-balance")).to_have_text(_n(after_redeem))
    expect(panel.get_by_test_id("redeemable")).to_have_text(_n(EARLIER_YUAN - ITEM_POINTS))
    expect(panel.get_by_test_id("redemptions").locator("tbody tr")).to_have_count(1)
    expect(panel.get_by_test_id("redemptions")).to_contain_text(_n(ITEM_POINTS))

    # The card is lost: report it, then replace it with a new number.
    _card_action(page, "loss", "Member lost the card at the airport", c.id_number)
    card = page.get_by_test_id("card-account")
    expect(card.get_by_test_id("card-number")).to_have_text(number)
    expect(card.locator("h3")).to_contain_text("Reported lost")
    expect(card.get_by_test_id("redeem")).to_have_count(0)  # nothing to redeem with a lost card
    shot(page, "09-membership-card-lost")

    _card_action(page, "replace", "New card for the lost one", c.id_number)
    card = page.get_by_test_id("card-account")
    new_number = card.get_by_test_id("card-number")
    expect(new_number).not_to_have_text(number)
    expect(new_number).to_have_text(re.compile(r"^\d{3} \d{5}$"))
    new_number = new_number.inner_text().strip()
    expect(card.locator("h3")).to_contain_text("In use")
    expect(card).to_contain_text(f"Earlier numbers: {number} (Replaced)")
    expect(card.get_by_test_id("points-balance")).to_have_text(_n(after_redeem))  # the points moved
    expect(page.get_by_test_id("member-history")).to_contain_text(new_number)
    shot(page, "09-membership-card-replaced")

    # The old number is refused on /redeem; the new one carries the points.
    page.goto("/redeem")
    redeem = page.get_by_test_id("redeem-form")
    redeem.locator("input[name=card]").fill(number)
    redeem.locator("select[name=item]").select_option(ITEM)
    redeem.locator("button[name=step][value=redeem]").click()
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/redeem")) as resp:
        confirm(page)
    assert resp.value.status == 400, resp.value.status
    expect(page.locator("main .error[role=alert]")).to_be_visible()
    expect(page.locator("[data-error-for=card]")).to_have_text("This card was replaced and no longer works.")
    expect(page.get_by_test_id("redeemed")).to_have_count(0)
    shot(page, "09-membership-old-card-refused")

    redeem = page.get_by_test_id("redeem-form")
    redeem.locator("input[name=card]").fill(new_number)
    with page.expect_navigation():
        redeem.locator("button[name=step][value=lookup]").click()
    expect(page.get_by_test_id("card-summary").get_by_test_id("redeemable")).to_have_text(
        _n(EARLIER_YUAN - ITEM_POINTS))
    expect(page.locator("[data-error-for=card]")).to_have_count(0)

    # Nothing more was taken by the refused attempt.
    _open_file(page, c.url)
    expect(page.get_by_test_id("card-account").get_by_test_id("points-balance")).to_have_text(_n(after_redeem))
