"""Flow: a leader's report charts render under the strict Content Security Policy (vendored ECharts,
data from JSON script elements, no inline script), with the same numbers as tables; the auditor's
analytics likewise. No CSP violation, no page error."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import nav_to, BrowserLog, shot, sign_in

# Collect CSP violations in the page itself too (the console capture is the harness's).
LISTEN = "window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"


def _charts_drawn(page: Page) -> None:
    charts = page.locator(".chart")
    expect(charts.first).to_have_attribute("data-rendered", "1")
    n = charts.count()
    assert n >= 2
    for i in range(n):
        expect(charts.nth(i)).to_have_attribute("data-rendered", "1")
        assert charts.nth(i).locator("canvas").count() >= 1, f"chart {i} drew nothing"
    assert page.evaluate("window.__csp") == []
    assert page.locator("script:not([src]):not([type='application/json'])").count() == 0


def test_report_charts_render_under_the_strict_csp(new_context, browser_log: BrowserLog):
    page = new_context().new_page()
    page.add_init_script(LISTEN)
    sign_in(page, "grace")
    nav_to(page, "/reports")
    page.locator("main a[href='/reports/overview']").first.click()
    page.wait_for_url("**/reports/overview")
    _charts_drawn(page)
    expect(page.get_by_test_id("table-spend_month").locator("tbody tr").first).to_be_visible()
    shot(page, "reports-overview")
    page.goto("/reports/monthly")
    _charts_drawn(page)
    expect(page.get_by_test_id("sent-reports")).to_be_visible()  # bob's team report, sent by the demo
    page.get_by_test_id("sent-reports").locator("a").first.click()
    expect(page.get_by_test_id("intact")).to_be_visible()  # the frozen figures
    _charts_drawn(page)
    shot(page, "reports-monthly-sent")

    auditor = new_context().new_page()
    auditor.add_init_script(LISTEN)
    sign_in(auditor, "dave")
    nav_to(auditor, "/reports/audit")
    auditor.wait_for_url("**/reports/audit")
    _charts_drawn(auditor)
    shot(auditor, "reports-audit")
    auditor.context.close()

    assert browser_log.csp_violations() == []
    assert browser_log.page_errors == []
    assert browser_log.errors() == []
