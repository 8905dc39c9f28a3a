"""Flows 1 and 2: a salesperson creates, finds and edits her own files, and is refused others'."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import (assert_same_document, create_customer, first_file_of, htmx_ready, mark_document,
                       shot, sign_in)

OWNER_COL = 7  # 1-based: File no., Name, Gender, Mobile, Category, Tier, Owner, Created


def test_salesperson_creates_finds_and_is_refused_others_file(page: Page, server):
    sign_in(page, "alice")
    expect(page).to_have_url(re.compile(r"/$"))  # the home page
    expect(page.get_by_test_id("birthdays-today")).to_be_visible()
    page.goto("/customers")

    # Create a file through the form; the detail page shows the full mobile number.
    c = create_customer(page)
    expect(page.locator("#field-mobile [data-field=mobile]")).to_have_text(c.mobile)
    expect(page.locator("#field-address [data-field=address]")).to_have_text(c.address)
    expect(page.locator("#field-id_number [data-field=id_number]")).to_have_text(c.id_number)
    assert re.fullmatch(r"\d{3} \d{5}", c.file_no), c.file_no  # e.g. "755 00201"
    shot(page, "01-salesperson-new-file")

    # Back to the list: only her own files, every Owner cell says alice.
    page.locator("main a[href='/customers']").first.click()
    expect(page).to_have_url(re.compile(r"/customers$"))
    htmx_ready(page)
    rows = page.locator("#results table.files tbody tr")
    expect(rows.first).to_be_visible()
    owners = page.locator(f"#results table.files tbody td:nth-child({OWNER_COL})")
    expect(owners.filter(has_not_text=re.compile(r"^\s*alice\s*$"))).to_have_count(0)
    assert owners.count() == rows.count() > 1
    # The list never shows a full mobile number.
    expect(page.locator("#results")).not_to_contain_text(c.mobile)

    # Search as you type (HTMX, POST): exactly one row, masked mobile, no page load, no number in the URL.
    mark_document(page)
    page.locator("#q").press_sequentially(c.mobile)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(c.masked_mobile)
    expect(rows.first).to_contain_text(c.file_no)
    expect(rows.first.locator(f"td:nth-child({OWNER_COL})")).to_have_text("alice")
    expect(rows.first).not_to_contain_text(c.mobile)
    assert_same_document(page)
    assert c.mobile not in page.url
    shot(page, "01-salesperson-search")

    # Charlie's file by URL: 403, the refusal message, nothing of the file.
    charlie_id, _charlie_no = first_file_of(server, "charlie")
    resp = page.goto(f"/customers/{charlie_id}")
    assert resp is not None and resp.status == 403
    msg = page.locator(".message.error[role=alert]")
    expect(msg).to_be_visible()
    expect(msg).to_have_attribute("data-status", "403")
    expect(msg.locator("h1")).not_to_be_empty()
    expect(page.get_by_test_id("file-card")).to_have_count(0)
    shot(page, "01-salesperson-refused")


def test_inline_edit_address_updates_in_place(page: Page):
    sign_in(page, "alice")
    c = create_customer(page)
    field = page.locator("#field-address")
    mark_document(page)

    field.locator("button[hx-get$='?edit=true']").click()
    box = page.locator("#field-address input[name=value]")
    expect(box).to_have_value(c.address)
    new_address = c.address.replace("测试路", "改址路") + "B座"
    box.fill(new_address)
    with page.expect_response(lambda r: r.request.method == "POST"
                              and r.url.endswith("/fields/address")) as resp_info:
        page.locator("#field-address button[type=submit]").click()
    assert resp_info.value.status == 200
    expect(page.locator("#field-address [data-field=address]")).to_have_text(new_address)
    expect(page.locator("#field-address input[name=value]")).to_have_count(0)
    assert_same_document(page)
    shot(page, "02-inline-edit-address")

    # The change is stored: a fresh load shows it.
    page.reload()
    expect(page.locator("#field-address [data-field=address]")).to_have_text(new_address)


def test_inline_edit_invalid_mobile_shows_error_in_place(page: Page):
    sign_in(page, "alice")
    c = create_customer(page)
    mark_document(page)

    page.locator("#field-mobile button[hx-get$='?edit=true']").click()
    box = page.locator("#field-mobile input[name=value]")
    expect(box).to_have_value(c.mobile)
    box.fill("12345")
    with page.expect_response(lambda r: r.request.method == "POST"
                              and r.url.endswith("/fields/mobile")) as resp_info:
        page.locator("#field-mobile button[type=submit]").click()
    # The app answers 400 with the editor and its message; either way it must not be a server error.
    assert resp_info.value.status < 500, resp_info.value.status
    error = page.locator("#field-mobile .error[role=alert]")
    expect(error).to_be_visible()
    expect(error).not_to_be_empty()
    # Still editing, with what was typed; the stored number is unchanged.
    expect(page.locator("#field-mobile input[name=value]")).to_have_value("12345")
    assert_same_document(page)
    shot(page, "02-inline-edit-invalid-mobile")
    page.reload()
    expect(page.locator("#field-mobile [data-field=mobile]")).to_have_text(c.mobile)
