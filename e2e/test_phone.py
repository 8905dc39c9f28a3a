"""On a phone (375 px wide): the main pages of each role fit the screen without the page scrolling
sideways (tables scroll in their own box), and the navigation folds behind "Menu" and still works."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import first_file_of, nav_to, sign_in

PHONE = {"width": 375, "height": 740}
PAGES = {
    "alice": ["/", "/customers", "/customers/{file}/purchases/new", "/redeem", "/members/expiring", "/receivables", "/complaints", "/events",
              "/reports/overview", "/access-requests"],
    "bob": ["/", "/approvals", "/reports/classes", "/liabilities", "/events"],
    "cathy": ["/", "/service", "/service/applications", "/complaints"],
    "dave": ["/", "/audit", "/audit/alerts", "/reports/audit"],
    "erin": ["/", "/admin/users", "/admin/units", "/catalogue"],
}


def _fits(page: Page, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{path} is {width} px wide on a 375 px screen"


@pytest.mark.browser_context_args(viewport=PHONE, is_mobile=True, has_touch=True)
@pytest.mark.parametrize("user", list(PAGES))
def test_main_pages_fit_a_phone_and_the_menu_folds(new_context, server, user):
    page = new_context().new_page()
    sign_in(page, user)
    expect(page.locator("#site-nav")).to_be_hidden()  # folded behind the Menu button
    for path in PAGES[user]:
        _fits(page, path.replace("{file}", first_file_of(server, "alice")[0]))
    # The menu opens and its links lead where they say, groups included.
    page.goto("/")
    target = {"alice": "/redeem", "bob": "/approvals", "cathy": "/service/applications",
              "dave": "/audit/integrity", "erin": "/admin/terminals"}[user]
    nav_to(page, target)
    page.wait_for_url(f"**{target}")
