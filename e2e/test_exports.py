"""A salesperson exports her files from the exports page: a form POST (with the CSRF token) that
the browser saves as a download; a link (a GET) to the same address starts nothing."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import shot, sign_in


def test_salesperson_exports_through_the_form_and_a_link_starts_nothing(page: Page, server):
    sign_in(page, "alice")

    # The customer list's export form posts, with the token, like every unsafe form.
    page.goto("/customers")
    form = page.locator("form[action='/customers/export.csv']")
    expect(form).to_have_attribute("method", "post")
    expect(form.locator("input[name=_csrf]")).to_have_count(1)

    page.goto("/exports")
    form = page.locator("form[action='/customers/export.csv']")
    form.locator("input[name=purpose]").fill("quarterly gift mailing")
    with page.expect_download() as info:
        form.locator("button[type=submit]").click()
    download = info.value
    body = open(download.path(), "rb").read().decode("utf-8")
    assert body.startswith("\ufefffile_no,"), body[:80]
    assert len(body.strip().splitlines()) > 1  # alice's files
    shot(page, "exports-after-download")

    # The same address as a link (what another site could embed): 405, no CSV, no new export.
    page.goto("/exports")
    rows_before = page.locator("[data-testid=my-exports] tbody tr").count()
    resp = page.request.get("/customers/export.csv?purpose=a+link+on+another+site")
    assert resp.status == 405 and "text/csv" not in resp.headers.get("content-type", "")
    page.goto("/exports")
    expect(page.locator("[data-testid=my-exports] tbody tr")).to_have_count(rows_before)
