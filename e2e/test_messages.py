"""Messages to members: alice records a client's marketing consent on the file, then its withdrawal,
and the history keeps both; bob previews the monthly care message and sends it, and finds it in the
outbox with the address masked."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import create_customer, htmx_ready, shot, sign_in


def _record(page: Page, given: str, method: str) -> None:
    form = page.get_by_test_id("record-consent")
    form.locator("select[name=channel]").select_option("sms")
    form.locator("select[name=purpose]").select_option("marketing")
    form.locator("select[name=given]").select_option(given)
    form.locator("select[name=method]").select_option(method)
    form.locator("input[name=collected_mobile]").check()
    with page.expect_navigation():
        form.locator("button[type=submit]").click()


def test_alice_records_consent_and_bob_sends_the_care_message(page: Page, server):
    sign_in(page, "alice")
    create_customer(page)
    page.get_by_test_id("consent-link").click()
    expect(page).to_have_url(re.compile(r"/customers/[0-9a-f-]{36}/consent$"))
    _record(page, "yes", "paper_form")
    row = page.locator("[data-consent=sms-marketing]")
    expect(row).to_contain_text(re.compile("given|已同意"))
    _record(page, "no", "phone")
    expect(row).to_contain_text(re.compile("withdrawn|已撤回"))
    expect(page.get_by_test_id("consent-history").locator("tbody tr")).to_have_count(2)
    shot(page, "consent")
    page.context.clear_cookies()

    sign_in(page, "bob")
    page.goto("/messages/care")
    form = page.get_by_test_id("care-form")
    form.locator("input[name=month]").fill("2030-01")
    form.locator("textarea[name=offer_zh]").fill("新年会员专享：精选酒品八八折。")
    form.locator("textarea[name=offer_en]").fill("New year for members: 12% off selected wines.")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    preview = page.get_by_test_id("care-preview")
    expect(preview).to_contain_text("精选酒品八八折")
    shot(page, "care-preview")
    with page.expect_navigation():
        preview.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/outbox\?status=pending$"))
    htmx_ready(page)
    expect(page.get_by_test_id("outbox-filters")).to_be_visible()
