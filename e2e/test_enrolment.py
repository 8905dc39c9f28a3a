"""Flow 8: a leader signing in for the first time must set up a second factor before deciding
anything: every page leads to /account/2fa until she has; then she reaches her approvals."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import PASSWORD, TOTP_SECRETS, confirm, enrol, shot, sign_in


def _reset_by_admin(new_context, username: str) -> None:
    """Erin turns the second factor off (lost phone), so the next sign-in is a first one again."""
    erin = new_context().new_page()
    sign_in(erin, "erin")
    erin.goto("/admin/users")
    erin.locator(f"form[action='/admin/users/{username}/reset-2fa'] button").click()
    confirm(erin)  # the reset asks first
    expect(erin.locator(f"form[action='/admin/users/{username}/reset-2fa']")).to_have_count(0)
    erin.context.close()
    TOTP_SECRETS.pop(username, None)


@pytest.mark.browser_context_args(locale="en-US")
def test_grace_must_enrol_before_reaching_approvals(page: Page, new_context):
    if "grace" in TOTP_SECRETS:  # another test signed her in earlier in this run
        _reset_by_admin(new_context, "grace")

    # Her bookmark: the approvals queue. Signed out, it asks for a sign-in first.
    page.goto("/approvals")
    expect(page).to_have_url(re.compile(r"/login\?next=/approvals$"))
    page.locator("input[name=username]").fill("grace")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()

    # The password alone leads to the set-up page, whatever she asked for.
    expect(page).to_have_url(re.compile(r"/account/2fa$"))
    expect(page.get_by_test_id("who")).to_have_count(0)  # not signed in yet
    for path in ("/approvals", "/customers", "/inbox", "/access-requests"):
        page.goto(path)
        expect(page).to_have_url(re.compile(r"/account/2fa$"))
    expect(page.locator("main")).to_contain_text("a second factor is required before you continue")
    qr = page.locator(".qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100, box
    expect(page.get_by_test_id("totp-secret")).to_have_text(re.compile(r"^[A-Z2-7]{32}$"))
    shot(page, "08-enrol-qr")

    # A wrong code is refused on the page; the key stays the same.
    secret = page.get_by_test_id("totp-secret").inner_text()
    page.locator("form[action='/account/2fa'] input[name=code]").fill("000000")
    page.locator("form[action='/account/2fa'] button[type=submit]").click()
    expect(page.locator("main .error[role=alert]")).to_be_visible()
    expect(page.get_by_test_id("totp-secret")).to_have_text(secret)

    # The right code: ten recovery codes, shown once, and a full session.
    codes = enrol(page, "grace")
    assert len(set(codes)) == 10 and all(re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", c) for c in codes)
    shot(page, "08-enrol-recovery-codes")
    page.goto("/approvals")
    expect(page).to_have_url(re.compile(r"/approvals$"))
    expect(page.get_by_test_id("who")).to_be_visible()
    expect(page.locator("h1")).to_have_text("Access requests to decide")
    page.goto("/account/2fa")
    expect(page.get_by_test_id("mfa-status")).to_be_visible()
    shot(page, "08-enrol-approvals")
