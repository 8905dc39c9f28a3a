"""Flow 3 (in English): a team leader sees his team's files only, and pages through them with HTMX."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import assert_same_document, mark_document, shot, sign_in

OWNER_COL = 7  # after File no., Name, Gender, Mobile, Category, Tier
TEAM_755A = {"alice", "amy", "bob"}


def _owners(page: Page) -> list[str]:
    return [t.strip() for t in page.locator(
        f"#results table.files tbody td:nth-child({OWNER_COL})").all_inner_texts()]


def _file_nos(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("#results table.files tbody td:nth-child(1)").all_inner_texts()]


@pytest.mark.browser_context_args(locale="en-US")
def test_leader_sees_team_files_and_pages_with_htmx(page: Page):
    sign_in(page, "bob")
    expect(page.get_by_test_id("access-waiting")).to_be_visible()  # the leader's home page
    page.goto("/customers")
    expect(page.locator("h1")).to_have_text("Customer files")
    rows = page.locator("#results table.files tbody tr")
    expect(rows).to_have_count(50)  # PORTAL_PAGE_SIZE
    first_page = _owners(page)
    assert set(first_page) <= TEAM_755A, set(first_page)
    assert {"alice", "amy"} <= set(first_page), set(first_page)
    first_nos = _file_nos(page)
    shot(page, "03-leader-list")

    # "Next page" swaps the next rows into #results without loading the page.
    mark_document(page)
    nxt = page.locator("#results .pager a[hx-get*='after=']")
    expect(nxt).to_contain_text("Next page")
    nxt.click()
    expect(page.locator("#results table.files tbody tr td:nth-child(1)").first).not_to_have_text(first_nos[0])
    expect(page.locator("#results").get_by_text("Back to the first page")).to_be_visible()
    assert_same_document(page)
    # The page's state is in the address (a cursor, never personal data), so Back and a reload return to it.
    expect(page).to_have_url(re.compile(r"/customers\?after=[A-Za-z0-9_-]+$"))
    second_page = _owners(page)
    assert len(second_page) > 0
    assert set(second_page) <= TEAM_755A, set(second_page)
    assert not set(_file_nos(page)) & set(first_nos), "page 2 repeats rows of page 1"
    shot(page, "03-leader-next-page")

    # Charlie (team 755B) never appears.
    assert "charlie" not in first_page + second_page
    assert "chris" not in first_page + second_page


def test_region_leader_sees_both_teams(page: Page):
    """grace leads region 755: her list includes team 755B (charlie, chris) too."""
    sign_in(page, "grace")
    page.goto("/customers")
    rows = page.locator("#results table.files tbody tr")
    expect(rows).to_have_count(50)
    seen = set(_owners(page))
    nxt = page.locator("#results .pager a[hx-get*='after=']")
    for _ in range(6):  # 300 demo files are 6 pages; stop as soon as both teams showed up
        if seen & {"charlie", "chris"} and seen & {"alice", "amy"}:
            break
        first = page.locator("#results table.files tbody td:nth-child(1)").first.inner_text()
        nxt.click()
        expect(page.locator("#results table.files tbody td:nth-child(1)").first).not_to_have_text(first)
        seen |= set(_owners(page))
    assert seen & {"charlie", "chris"} and seen & {"alice", "amy"}, seen
    assert seen <= {"alice", "amy", "bob", "charlie", "chris", "ivan", "grace"}, seen
