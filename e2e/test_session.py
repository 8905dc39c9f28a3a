"""Flow 6: signing out ends the session, in this browser and for the old cookie."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import shot, sign_in, sign_out


def test_sign_out_ends_the_session(page: Page):
    page.goto("/customers")
    expect(page).to_have_url(re.compile(r"/login\?next=/customers$"))

    sign_in(page, "chris")  # the helper signs in from /login: a salesperson lands on the home page
    expect(page).to_have_url(re.compile(r"/$"))
    old = [c for c in page.context.cookies() if c["name"] == "portal_session"]
    assert old and old[0]["httpOnly"], "session cookie missing or readable by scripts"

    sign_out(page)
    expect(page.get_by_test_id("who")).to_have_count(0)
    shot(page, "06-signed-out")
    assert not [c for c in page.context.cookies() if c["name"] == "portal_session" and c["value"]]

    page.goto("/customers")
    expect(page).to_have_url(re.compile(r"/login\?next=/customers$"))

    # The old session id is dead on the server too, not merely forgotten by the browser.
    page.context.add_cookies(old)
    page.goto("/customers")
    expect(page).to_have_url(re.compile(r"/login\?next=/customers$"))
    expect(page.get_by_test_id("who")).to_have_count(0)
