"""Flow 7: cross-access. Charlie is refused alice's file, asks for access from the refusal page,
bob approves in place, charlie reads the file, alice sees who else has access and is told in her
inbox, bob revokes, charlie is refused again; the auditor finds the whole chain under the file's
number, with the grant's id on the view made under it."""
from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from .conftest import (nav_to, Server, assert_same_document, confirm, first_file_of, htmx_ready, mark_document, shot,
                       sign_in)

REASON = "Covering alice's client visit while she is on leave"
HOURS_ASKED, HOURS_GRANTED = 8, 4
ACTOR_COL, ACTION_COL, OBJECT_COL, OUTCOME_COL = 3, 6, 7, 9  # 5: the entry in words


def _mobile_of(server: Server, file_id: str) -> str:
    """The file's mobile number, decrypted straight from the database (what a granted view shows)."""
    from portal.customers import service as customers
    from portal.customers.models import CustomerFile
    from portal.db import Database
    from portal.vault import KeyRing, Vault

    db = Database(server.database_url)
    try:
        with db.read() as s:
            f = s.get(CustomerFile, uuid.UUID(file_id))
            return customers._open(Vault(KeyRing.load(server.key_file)), f, ("mobile",))["mobile"]
    finally:
        db.dispose()


def _page_as(new_context, username: str) -> Page:
    ctx: BrowserContext = new_context()
    page = ctx.new_page()
    sign_in(page, username)
    return page


@pytest.mark.browser_context_args(locale="en-US")
def test_charlie_asks_bob_grants_alice_sees_bob_revokes_dave_traces(new_context, server):
    file_id, file_no = first_file_of(server, "alice")
    mobile = _mobile_of(server, file_id)

    # Charlie (team 755B) opens alice's file by its address: refused, and offered the request route.
    charlie = _page_as(new_context, "charlie")
    resp = charlie.goto(f"/customers/{file_id}")
    assert resp is not None and resp.status == 403
    expect(charlie.get_by_test_id("file-card")).to_have_count(0)
    expect(charlie.locator("body")).not_to_contain_text(mobile)
    offer = charlie.locator(".message.error a[href^='/access-requests/new']")
    expect(offer).to_have_text(f"Request access to file {file_no}")
    shot(charlie, "07-access-refused-with-offer")
    offer.click()
    expect(charlie).to_have_url(re.compile(r"/access-requests/new\?file_no="))
    form = charlie.locator("form[action='/access-requests/new']")
    expect(form.locator("input[name=file_no]")).to_have_value(file_no)
    form.locator("textarea[name=reason]").fill(REASON)
    form.locator("select[name=scope]").select_option("view")
    form.locator("input[name=hours]").fill(str(HOURS_ASKED))
    shot(charlie, "07-access-request-form")
    form.locator("button[type=submit]").click()
    expect(charlie).to_have_url(re.compile(r"/access-requests$"))
    mine = charlie.get_by_test_id("my-requests").locator("tbody tr").filter(has_text=file_no)
    expect(mine).to_have_count(1)
    expect(mine.locator(".badge.pending")).to_be_visible()

    # Bob (leader of alice's team) finds it in his queue and approves it in place, for fewer hours.
    bob = _page_as(new_context, "bob")
    bob.goto("/approvals")
    htmx_ready(bob)
    row = bob.get_by_test_id("approval-queue").locator("tbody tr").filter(has_text=file_no) \
        .filter(has_text="charlie")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(REASON)
    expect(row).to_contain_text(f"{HOURS_ASKED} h")
    request_id = int(row.get_attribute("id").removeprefix("request-"))
    shot(bob, "07-access-approvals-queue")
    mark_document(bob)
    approve = row.locator(f"form[action='/approvals/{request_id}/approve']")
    approve.locator("input[name=hours]").fill(str(HOURS_GRANTED))
    approve.locator("button[type=submit]").click()
    confirm(bob)
    granted_row = bob.locator(f"#queue tr#request-{request_id}")
    expect(granted_row.locator(".badge.active")).to_be_visible()
    expect(granted_row).to_contain_text(re.compile(rf"{HOURS_GRANTED - 1} h \d+ min left"))
    expect(granted_row.locator(f"form[action='/approvals/{request_id}/revoke']")).to_be_visible()
    assert_same_document(bob)
    expect(bob).to_have_url(re.compile(r"/approvals$"))
    shot(bob, "07-access-approved-in-place")

    # Charlie now reads the file in full.
    resp = charlie.goto(f"/customers/{file_id}")
    assert resp is not None and resp.status == 200
    expect(charlie.get_by_test_id("file-card")).to_be_visible()
    expect(charlie.locator("#field-mobile [data-field=mobile]")).to_have_text(mobile)
    expect(charlie.get_by_test_id("file-grants")).to_have_count(0)  # not his to see
    shot(charlie, "07-access-granted-file")
    charlie.goto("/access-requests")
    expect(charlie.get_by_test_id("my-requests").locator("tbody tr").filter(has_text=file_no)
           .locator(".badge.active")).to_be_visible()

    # Alice: her file names charlie under "who else has access", with the time left; her inbox
    # counts the notices (the request, then the grant).
    alice = _page_as(new_context, "alice")
    unread = alice.get_by_test_id("unread")
    expect(unread).to_be_visible()
    assert int(unread.inner_text()) >= 2
    alice.goto(f"/customers/{file_id}")
    grants = alice.get_by_test_id("file-grants")
    expect(grants).to_be_visible()
    holder = grants.locator("tbody tr").filter(has_text="charlie")
    expect(holder).to_have_count(1)
    expect(holder.locator(".badge.active")).to_be_visible()
    expect(holder).to_contain_text(re.compile(rf"{HOURS_GRANTED - 1} h \d+ min left"))
    shot(alice, "07-access-owner-sees-who-else")
    nav_to(alice, "/inbox")
    expect(alice).to_have_url(re.compile(r"/inbox$"))
    notices = alice.get_by_test_id("notices")
    expect(notices).to_contain_text(f"charlie asked for access to your file {file_no}.")
    expect(notices).to_contain_text(f"charlie was granted access to your file {file_no} by bob.")
    shot(alice, "07-access-owner-inbox")
    alice.locator("form[action='/inbox/read'] button").click()
    expect(alice.get_by_test_id("unread")).to_have_count(0)

    # Bob revokes, in place as well; the queue has nothing left for him.
    bob.reload()
    htmx_ready(bob)
    mark_document(bob)
    revoke = bob.locator(f"#queue tr#request-{request_id} form[action='/approvals/{request_id}/revoke']")
    revoke.locator("input[name=note]").fill("Alice is back")
    # Asked first: going back leaves the grant as it is; confirming revokes it.
    revoke.locator("button[type=submit]").click()
    confirm(bob, go=False)
    expect(bob.locator(f"#queue tr#request-{request_id} .badge.active")).to_be_visible()
    revoke.locator("button[type=submit]").click()
    confirm(bob)
    expect(bob.locator(f"#queue tr#request-{request_id}")).to_have_count(0)
    assert_same_document(bob)
    shot(bob, "07-access-revoked")

    # Charlie is refused again, at once.
    resp = charlie.goto(f"/customers/{file_id}")
    assert resp is not None and resp.status == 403
    expect(charlie.get_by_test_id("file-card")).to_have_count(0)
    expect(charlie.locator("body")).not_to_contain_text(mobile)
    charlie.goto("/access-requests")
    expect(charlie.get_by_test_id("my-requests").locator("tbody tr").filter(has_text=file_no)
           .locator(".badge.revoked")).to_be_visible()
    shot(charlie, "07-access-refused-again")
    for p in (charlie, bob, alice):
        p.context.close()

    # Dave, the auditor, follows the file's number through the log.
    dave = _page_as(new_context, "dave")
    dave.goto("/audit")  # the auditor signs in to the home page; the log is one click away
    filters = dave.locator("form.filters")
    filters.locator("input[name=file]").fill(file_no)
    filters.locator("button[type=submit]").click()
    expect(dave).to_have_url(re.compile(r"file="))
    rows = dave.locator("#audit-rows table.audit tbody tr")
    expect(rows.first).to_be_visible()
    expect(dave.locator(f"#audit-rows tbody td:nth-child({OBJECT_COL})")
           .filter(has_not_text=file_no)).to_have_count(0)
    seen = []
    for r in rows.all():
        cells = r.locator("td").all_inner_texts()
        seen.append((int(cells[0]), cells[ACTOR_COL - 1].strip(), cells[ACTION_COL - 1].strip(),
                     "denied" if "denied" in (r.get_attribute("class") or "") else "allowed"))
    seen.sort()  # oldest first
    chain = [(who, action, outcome) for _seq, who, action, outcome in seen
             if who in ("charlie", "bob") and action.startswith(("access.", "customer.view"))]
    expected = [("charlie", "customer.view", "denied"), ("charlie", "access.request", "allowed"),
                ("bob", "access.approve", "allowed"), ("charlie", "customer.view", "allowed"),
                ("bob", "access.revoke", "allowed"), ("charlie", "customer.view", "denied")]
    assert chain == expected, chain
    shot(dave, "07-access-audit-chain")

    # The export of the same filter carries the grant's id on every step made under it.
    export = dave.request.get(f"/audit/export.csv?file={file_no}")
    assert export.status == 200
    entries = list(csv.DictReader(io.StringIO(export.text().lstrip("\ufeff"))))
    by_step = {(e["actor"], e["action"], e["outcome"]): e for e in entries}
    for step in (("charlie", "access.request", "allowed"), ("bob", "access.approve", "allowed"),
                 ("charlie", "customer.view", "allowed"), ("bob", "access.revoke", "allowed")):
        assert by_step[step]["grant_id"] == str(request_id), (step, by_step[step])
    denied_views = [e for e in entries if (e["actor"], e["action"], e["outcome"])
                    == ("charlie", "customer.view", "denied")]
    assert len(denied_views) == 2 and all(not e["grant_id"] for e in denied_views)
    assert mobile not in export.text()
