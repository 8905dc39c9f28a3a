"""Flow: member events. bob plans his team's year and adds an event for today with one place,
invites the members; alice registers two of her clients (the second goes on the waiting list),
checks the first in at the event, and the member gets the event points in the points ledger."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from playwright.sync_api import Page, expect

from .conftest import Server, confirm, shot, sign_in, sign_out

POINTS = 120


def _alices_members(server: Server) -> list[str]:
    """Card numbers of two of alice's members (read from the server's database)."""
    from sqlalchemy import select

    from portal.accounts.models import User
    from portal.db import Database
    from portal.membership import members
    from portal.membership.models import Membership

    db = Database(server.database_url)
    try:
        with db.read() as s:
            alice = s.scalar(select(User.id).where(User.username == "alice"))
            numbers = []
            for m in s.scalars(select(Membership).where(Membership.owner_id == alice,
                                                        Membership.status == "active").order_by(Membership.id)):
                account = members.primary_account(s, m)
                card = members.current_card(s, account.id) if account else None
                if card is not None and account.status == "active":
                    numbers.append(card.number)
            return numbers[:2]
    finally:
        db.dispose()


def _event_points(server: Server, event_id: str) -> list[int]:
    from sqlalchemy import select

    from portal.db import Database
    from portal.membership.models import PointsEntryRow

    db = Database(server.database_url)
    try:
        with db.read() as s:
            return list(s.scalars(select(PointsEntryRow.points).where(PointsEntryRow.ref == f"event:{event_id}")))
    finally:
        db.dispose()


def test_an_event_is_planned_members_register_check_in_and_get_their_points(page: Page, server: Server):
    from portal.membership.rules import PROGRAMME_TZ

    now = datetime.now(PROGRAMME_TZ)
    if now.hour == 23 and now.minute >= 55:  # the event is today's: never straddle midnight
        import time
        time.sleep((60 - now.minute) * 60 - now.second + 2)
        now = datetime.now(PROGRAMME_TZ)
    today, yesterday = now.date(), now.date() - timedelta(days=1)
    first, second = _alices_members(server)

    sign_in(page, "bob")
    page.goto("/events")
    form = page.get_by_test_id("new-plan")
    form.locator("select[name=unit]").select_option("755A")
    form.locator("input[name=budget]").fill("120000")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/events/plans/\d+$"))
    form = page.get_by_test_id("new-event")
    form.locator("select[name=kind]").select_option("experience")
    form.locator("input[name=theme]").fill("名酒品鉴会")
    form.locator("input[name=place]").fill("前海会所")
    form.locator("input[name=starts_at]").fill(f"{today}T00:00")
    form.locator("input[name=ends_at]").fill(f"{today}T23:59")
    form.locator("input[name=registration_opens_at]").fill(f"{yesterday}T09:00")
    form.locator("input[name=capacity]").fill("1")
    form.locator("input[name=budget]").fill("6000")
    form.locator("input[name=points]").fill(str(POINTS))
    form.locator("input[name=tiers][value=regular]").check()
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/events/\d+$"))
    event_url = page.url
    event_id = event_url.rsplit("/", 1)[1]
    page.get_by_test_id("invite").locator("button").click()
    confirm(page)  # invitations go out: the page asks first
    expect(page.get_by_test_id("outcome")).to_be_visible()
    invited = int(page.get_by_test_id("invited").inner_text())
    assert invited >= 2
    shot(page, "events-1-planned-and-invited")
    sign_out(page)

    sign_in(page, "alice")
    page.goto(event_url)
    for number in (first, second):
        form = page.get_by_test_id("register")
        form.locator("input[name=card]").fill(number)
        with page.expect_navigation():
            form.locator("button[type=submit]").click()
    table = page.get_by_test_id("registrations")
    expect(table.locator(f"tr[data-card='{first}'] [data-testid=status]")).to_contain_text("已报名")
    expect(table.locator(f"tr[data-card='{second}'] [data-testid=status]")).to_contain_text("候补")
    expect(page.get_by_test_id("places")).to_have_text("1 / 1")
    expect(page.get_by_test_id("waiting")).to_have_text("1")
    with page.expect_navigation():
        table.locator(f"tr[data-card='{first}']").get_by_test_id("check-in").click()
    expect(page.get_by_test_id("outcome")).to_contain_text(str(POINTS))
    expect(table.locator(f"tr[data-card='{first}'] [data-testid=status]")).to_contain_text("已到场")
    shot(page, "events-2-checked-in")
    assert _event_points(server, event_id) == [POINTS]
