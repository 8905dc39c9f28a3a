"""Flow (in English): alice records a customer's request to correct their mobile number and answers
it by correcting the file (the request links to that edit's audit entry); she records their request
to erase their data, bob (her leader) approves it, and the file shows as erased; bob's subject
access report of the file prints who accessed it, under which role. (Consent is recorded and
withdrawn in test_messages.py.)"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from .conftest import confirm, shot, sign_in

NAME = "隐私测试"
MOBILE = "13911112222"
CORRECTED = "13911113333"


def _page_as(new_context, username: str) -> Page:
    ctx: BrowserContext = new_context()
    page = ctx.new_page()
    sign_in(page, username)
    return page


@pytest.mark.browser_context_args(locale="en-US")
def test_alice_answers_a_correction_and_requests_erasure_bob_approves_and_the_file_shows_erased(new_context):
    alice = _page_as(new_context, "alice")
    alice.goto("/customers/new")
    form = alice.locator("form[action='/customers/new']")
    form.locator("input[name=name]").fill(NAME)
    form.locator("select[name=gender]").select_option("F")
    form.locator("input[name=mobile]").fill(MOBILE)
    form.locator("select[name=category]").select_option(index=1)
    form.locator("button[type=submit]").click()
    expect(alice).to_have_url(re.compile(r"/customers/[0-9a-f-]{36}$"))
    file_url = alice.url
    file_no = alice.locator(".file-no").inner_text().strip()

    alice.get_by_test_id("privacy-link").click()
    ask = alice.get_by_test_id("request-correction")
    ask.locator("select[name=field_name]").select_option("mobile")
    ask.locator("textarea[name=details]").fill("The customer changed their mobile number")
    ask.locator("button[type=submit]").click()
    expect(alice.get_by_test_id("corrections").locator("tbody tr").first).to_contain_text("open")
    answer = alice.get_by_test_id("answer-correction")
    answer.locator("input[name=value]").fill("1391111")  # too short: told next to the field
    answer.locator("button[type=submit]").click()
    expect(alice.locator("[data-error=value]")).to_be_visible()
    alice.get_by_test_id("answer-correction").locator("input[name=value]").fill(CORRECTED)
    alice.get_by_test_id("answer-correction").locator("button[type=submit]").click()
    expect(alice.get_by_test_id("corrections").locator("tbody tr").first) \
        .to_contain_text(re.compile(r"answered\s+by alice, edit recorded as audit entry \d+"))
    shot(alice, "15-correction-answered")
    alice.goto(file_url)
    expect(alice.get_by_test_id("file-card")).to_contain_text(CORRECTED)

    alice.get_by_test_id("privacy-link").click()
    erase = alice.get_by_test_id("request-erasure")
    erase.locator("input[name=reason]").fill("The customer asked us to erase their data")
    erase.locator("button[type=submit]").click()
    expect(alice.get_by_test_id("erasures")).to_contain_text("waiting")

    bob = _page_as(new_context, "bob")
    # The report first, while the file is whole: fields, and alice's opening of the file.
    bob.goto(file_url + "/access-report")
    report = bob.get_by_test_id("access-report")
    expect(report).to_contain_text(NAME)
    expect(report).to_contain_text(CORRECTED)
    expect(bob.get_by_test_id("accesses").locator("tbody tr").filter(has_text="alice")
           .filter(has_text="salesperson").first).to_be_visible()
    shot(bob, "15-subject-access-report")

    bob.goto("/privacy/erasures")
    row = bob.get_by_test_id("erasure-requests").locator("tbody tr").filter(has_text=file_no)
    expect(row).to_contain_text("waiting")
    row.get_by_role("button", name="Approve erasure").click()
    confirm(bob)  # erasure cannot be undone: the page asks first
    expect(bob).to_have_url(re.compile(r"/privacy/erasures$"))
    expect(bob.get_by_test_id("erasure-requests").locator("tbody tr").filter(has_text=file_no)) \
        .to_contain_text("approved")

    alice.goto(file_url)
    expect(alice.get_by_test_id("erased")).to_be_visible()
    expect(alice.locator("body")).not_to_contain_text(CORRECTED)
    expect(alice.locator("body")).not_to_contain_text(NAME)
    alice.goto("/customers?q=" + file_no.replace(" ", "+"))
    shot(alice, "15-erased-in-list")
    bob.goto(file_url + "/access-report")
    expect(bob.get_by_test_id("access-report").get_by_test_id("erased")).to_be_visible()
    expect(bob.get_by_test_id("access-report")).not_to_contain_text(CORRECTED)
