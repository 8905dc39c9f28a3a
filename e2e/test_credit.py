"""Flow (in English): a sale on credit, refused over the limit, a written application that the
leader approves, then the sale, the delivery and the collection, in a real browser."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import confirm, first_file_of, shot, sign_in, sign_out


@pytest.mark.browser_context_args(locale="en-US")
def test_sell_on_credit_refused_apply_approve_deliver_collect(page: Page, server):
    file_id, _file_no = first_file_of(server, "alice")
    credit = f"/customers/{file_id}/credit"

    sign_in(page, "bob")  # a leader above the file grants credit
    page.goto(credit)
    page.get_by_test_id("credit-grant").locator("input[name=reason]").fill("regular client, pays on time")
    page.get_by_role("button", name="Grant credit").click()
    expect(page.get_by_test_id("credit-grant")).to_contain_text("Credit granted")
    sign_out(page)

    sign_in(page, "alice")
    page.goto(credit)
    sale = page.get_by_test_id("credit-sale")
    sale.locator("input[name=receipt_no]").fill("E2E-CR-1")
    sale.locator("select[name=product]").select_option("MT53")
    sale.locator("input[name=boxes]").fill("11")  # above either class's limit
    sale.get_by_role("button", name="Record the sale").click()
    expect(page.locator("[data-error=lines]")).to_contain_text("Over the credit limit")
    shot(page, "credit-refused")
    apply = page.get_by_test_id("credit-apply")
    apply.locator("input[name=extra_boxes]").fill("6")
    apply.locator("textarea[name=reason]").fill("annual dinner of the client's company")
    apply.get_by_role("button", name="Submit the application").click()
    row = page.get_by_test_id("credit-applications").locator("tbody tr").first
    expect(row).to_contain_text("pending")
    application_id = row.get_attribute("data-application")
    sign_out(page)

    sign_in(page, "bob")
    page.goto(credit)
    page.locator(f"tr[data-application='{application_id}']").get_by_role("button", name="Approve").click()
    confirm(page)
    expect(page.locator(f"tr[data-application='{application_id}']")).to_contain_text("approved")
    sign_out(page)

    sign_in(page, "alice")
    page.goto(credit)
    sale = page.get_by_test_id("credit-sale")
    sale.locator("input[name=receipt_no]").fill("E2E-CR-1")
    sale.locator("select[name=product]").select_option("MT53")
    sale.locator("input[name=boxes]").fill("11")
    sale.locator("input[name=application_id]").fill(application_id)
    sale.get_by_role("button", name="Record the sale").click()
    order = page.get_by_test_id("credit-orders").locator("tbody tr", has_text="E2E-CR-1")
    expect(order).to_be_visible()
    order.get_by_role("button", name="Delivered").click()
    order = page.get_by_test_id("credit-orders").locator("tbody tr", has_text="E2E-CR-1")
    balance = order.locator("td[data-balance]").inner_text().replace("¥", "").replace(",", "")
    order.locator("input[name=amount]").fill(balance)
    order.get_by_role("button", name="Record the payment").click()
    expect(page.get_by_test_id("credit-orders").locator("tbody tr", has_text="E2E-CR-1")).to_contain_text("settled")
    shot(page, "credit-collected")
