"""Flow 4: the auditor filters the log, finds a salesperson's views and refusals, sees no personal
data, and checks the chain."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import CREATED, create_customer, first_file_of, shot, sign_in

ACTOR_COL, WHAT_COL, ACTION_COL, OBJECT_COL = 3, 5, 6, 7


def _assert_no_personal_data(text: str, where: str) -> None:
    assert CREATED, "no customers were created to look for"
    for c in CREATED:
        for label, value in (("mobile", c.mobile), ("ID number", c.id_number),
                             ("name", c.name), ("address", c.address)):
            assert value not in text, f"{where} shows a customer's {label}"
        # A masked form still says more than an auditor needs.
        assert c.masked_mobile not in text, f"{where} shows a masked mobile"


def test_auditor_filters_log_and_sees_no_personal_data(new_context, server):
    # What the auditor will look for: alice views her new file and is refused one of charlie's.
    alice = new_context().new_page()
    sign_in(alice, "alice")
    c = create_customer(alice)  # the page view writes a customer.view entry
    charlie_id, charlie_no = first_file_of(server, "charlie")
    resp = alice.goto(f"/customers/{charlie_id}")
    assert resp is not None and resp.status == 403
    alice.context.close()

    page = new_context().new_page()
    sign_in(page, "dave")
    expect(page.get_by_test_id("chain")).to_be_visible()  # the auditor's home page
    _assert_no_personal_data(page.content(), "/")
    page.goto("/audit")
    rows = page.locator("#audit-rows table.audit tbody tr")
    expect(rows.first).to_be_visible()
    _assert_no_personal_data(page.content(), "/audit")

    # Filter by user: only alice's entries, among them the view of her new file.
    filters = page.locator("form.filters")
    filters.locator("input[name=actor]").fill("alice")
    filters.locator("button[type=submit]").click()
    actors = page.locator(f"#audit-rows table.audit tbody td:nth-child({ACTOR_COL})")
    expect(actors.filter(has_not_text=re.compile(r"^\s*alice\s*$"))).to_have_count(0)
    expect(page).to_have_url(re.compile(r"actor=alice"))
    view = rows.filter(has=page.locator(f"td:nth-child({ACTION_COL})", has_text=re.compile(r"^customer\.view$"))) \
               .filter(has=page.locator(f"td:nth-child({OBJECT_COL})", has_text=c.file_no))
    expect(view.first).to_be_visible()
    _assert_no_personal_data(page.content(), "/audit?actor=alice")
    shot(page, "04-audit-actor-alice")

    # ... and outcome=denied: her refused attempt on charlie's file.
    filters.locator("select[name=outcome]").select_option("denied")
    filters.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"outcome=denied"))
    expect(page.locator("#audit-rows table.audit tbody tr:not(.denied)")).to_have_count(0)
    denied = rows.filter(has=page.locator(f"td:nth-child({ACTION_COL})", has_text=re.compile(r"^customer\.view$"))) \
                 .filter(has=page.locator(f"td:nth-child({OBJECT_COL})", has_text=charlie_no))
    expect(denied.first).to_be_visible()
    expect(denied.first.locator(f"td:nth-child({ACTOR_COL})")).to_have_text("alice")
    expect(denied.first.locator(".badge.denied")).to_be_visible()
    _assert_no_personal_data(page.content(), "/audit?actor=alice&outcome=denied")
    shot(page, "04-audit-denied")

    # The same filter reached by URL (a bookmark, or the history entry hx-push-url made).
    page.goto("/audit?actor=alice&outcome=denied")
    expect(denied.first).to_be_visible()

    # The CSV export is an audit page too.
    csv = page.request.get("/audit/export.csv?actor=alice")
    assert csv.status == 200
    _assert_no_personal_data(csv.text(), "/audit/export.csv")

    # Integrity: the chain verifies.
    page.goto("/audit/integrity")
    status = page.get_by_test_id("chain-status")
    expect(status).to_be_visible()
    expect(status).to_have_class(re.compile(r"\bok\b"))
    expect(page.locator("code").first).to_have_text(re.compile(r"^[0-9a-f]{64}$"))  # the head; checkpoints follow
    _assert_no_personal_data(page.content(), "/audit/integrity")
    shot(page, "04-audit-integrity")


def test_auditor_reads_the_log_in_words_and_opens_a_run_of_list_views(new_context, server):
    """zh-CN: the entry is a sentence, its code beside it; a run of list views is one line with a
    count that opens (a details element, no script) to every entry; a file's history is one click."""
    alice = new_context().new_page()
    sign_in(alice, "alice")
    c = create_customer(alice)
    for _ in range(3):
        alice.goto("/customers")
    alice.context.close()

    page = new_context().new_page()
    sign_in(page, "dave")
    page.goto("/audit?actor=alice")
    rows = page.locator("#audit-rows table.audit tbody tr")
    view = rows.filter(has=page.locator(f"td:nth-child({ACTION_COL})", has_text=re.compile(r"^customer\.view$"))) \
               .filter(has=page.locator(f"td:nth-child({OBJECT_COL})", has_text=c.file_no))
    expect(view.first.locator(f"td:nth-child({WHAT_COL})")).to_have_text(f"查看档案 {c.file_no}")
    folded = page.locator("[data-testid=folded-line]").first
    expect(folded.locator("[data-testid=folded-count]")).to_contain_text("3")
    inner = folded.locator("details table.audit tr")
    expect(inner.first).to_be_hidden()
    folded.locator("summary").click()
    expect(inner).to_have_count(3)
    expect(inner.first).to_be_visible()
    shot(page, "04-audit-in-words")
    view.first.locator(f"td:nth-child({OBJECT_COL}) a").click()
    expect(page).to_have_url(re.compile(r"/audit/history\?file="))
    expect(page.locator("h1")).to_contain_text(f"档案 {c.file_no} 的访问历史")
    _assert_no_personal_data(page.content(), "/audit/history")
