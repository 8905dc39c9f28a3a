"""Flow: a complaint goes round until the member is satisfied. Cathy (customer service) records a
member's complaint, passes it on for investigation, proposes a resolution, tells the member; the
member is not satisfied, so it is reopened with a new promised date and goes round again; this
time the member is satisfied and it is closed. Every step is in the history with who and when."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import Server, shot, sign_in


def _a_members_file_no(server: Server) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(server.database_url)
    try:
        with engine.connect() as c:
            return c.execute(text("SELECT f.file_no FROM customer_file f JOIN membership m ON m.customer_id = f.id "
                                  "ORDER BY m.id LIMIT 1")).scalar_one()
    finally:
        engine.dispose()


def _status(page: Page, status: str) -> None:
    expect(page.get_by_test_id("complaint-status")).to_have_attribute("data-status", status)


def _submit(page: Page, step: str, **fields) -> None:
    form = page.get_by_test_id(f"step-{step}")
    for name, value in fields.items():
        field = form.locator(f"[name={name}]")
        if name in ("cause", "how"):
            field.select_option(value)
        elif name == "verdict":
            form.locator(f"input[name=verdict][value={value}]").check()
        else:
            field.fill(value)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()


def _one_round(page: Page, verdict: str, **satisfaction) -> None:
    _submit(page, "investigate", passed_to="物流部 王经理", finding="快递途中外箱受压", cause="logistics",
            responsible="合作快递公司")
    _status(page, "investigated")
    _submit(page, "propose", resolution="补发新礼盒")
    _status(page, "proposed")
    _submit(page, "tell", how="phone", reply="已为您补发新礼盒")
    _status(page, "told")
    _submit(page, "satisfaction", verdict=verdict, **satisfaction)


def test_a_complaint_goes_round_until_the_member_is_satisfied(page: Page, server: Server):
    file_no = _a_members_file_no(server)
    sign_in(page, "cathy")
    page.goto("/complaints")
    with page.expect_navigation():
        page.get_by_test_id("new-complaint").click()
    form = page.get_by_test_id("complaint-form")
    form.locator("[name=member]").fill(file_no)
    form.locator("[name=channel]").select_option("hotline")
    form.locator("[name=kind]").select_option("product")
    form.locator("[name=content]").fill("收到的礼盒破损，要求更换")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    _status(page, "recorded")
    expect(page.get_by_test_id("complaint")).to_contain_text("收到的礼盒破损")

    _one_round(page, "not_satisfied", note="希望当面致歉")
    _status(page, "reopened")
    shot(page, "complaint-reopened")
    _one_round(page, "satisfied")
    _status(page, "closed")
    expect(page.locator("form[data-testid^=step-]")).to_have_count(0)
    steps = page.get_by_test_id("complaint-history").locator("li")
    assert [steps.nth(i).get_attribute("data-step") for i in range(steps.count())] == [
        "recorded", "investigated", "proposed", "told", "satisfaction", "reopened",
        "investigated", "proposed", "told", "satisfaction", "closed"]
    expect(steps.first).to_contain_text("cathy")
    shot(page, "complaint-closed")

    # It left the open queue.
    page.goto("/complaints?show=closed")
    expect(page.get_by_test_id("complaints")).to_contain_text(file_no)
