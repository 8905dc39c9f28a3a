"""Flow 7: htmx works under the strict Content Security Policy, with no violation reported.

Every test is also checked after it ends (conftest `_e2e_guard`); this one makes the check explicit
on pages that exercise htmx.
"""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import BrowserLog, shot, sign_in


def test_htmx_runs_under_strict_csp(page: Page, browser_log: BrowserLog):
    resp = page.goto("/login")
    assert resp is not None
    csp = resp.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "style-src 'self'" in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp

    sign_in(page, "bob")  # more than one page of files
    page.goto("/customers")  # sign-in lands on the home page
    assert page.evaluate("typeof htmx") == "object", "htmx did not load"
    assert page.evaluate("htmx.version").startswith("2.")
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False
    assert page.evaluate("htmx.config.historyCacheSize") == 0
    # htmx would inject an inline <style> for indicators unless told not to.
    assert page.locator("head style").count() == 0

    # An htmx search (POST with the CSRF header from hx-headers) and the pager.
    page.locator("#q").fill("not-a-number")
    expect(page.locator("#results .notice")).to_be_visible()
    page.locator("#q").fill("")
    expect(page.locator("#results table.files tbody tr").first).to_be_visible()
    page.locator("#results .pager a[hx-get*='after=']").click()
    expect(page.locator("#results .pager a[hx-get='/customers']")).to_be_visible()
    shot(page, "07-csp-htmx")

    assert browser_log.csp_violations() == []
    assert browser_log.page_errors == []
    assert [e for e in browser_log.errors() if not re.search(r"status of 4\d\d", e)] == []
