"""The salesperson's and the leader's journeys on the credit pages, and a stranger refused every
new page, export and POST (audited, nothing changed)."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.credit.models import CreditApplication, CreditOrder, Liability

from .browser import post, signed_in
from .test_credit import add_products, at


@pytest.fixture
def shop(db, story, clock_at):
    clock_at(at(2026, 3, 1))
    add_products(db, story)
    clock_at(at(2026, 3, 10))
    return uuid.UUID(story.files["alice"][0])


def credit(client, fid, path="", data=None):
    page = f"/customers/{fid}/credit"
    return post(client, page + path, data or {}, from_page=page)


def test_the_salesperson_and_leader_journey(app, client, db, story, shop, clock_at):
    fid = shop
    from datetime import timedelta
    minute = iter(range(1, 20))

    def as_bob():  # a new time step for each second factor (a code is never used twice)
        client.cookies.clear()
        clock_at(at(2026, 3, 10) + timedelta(minutes=next(minute)))
        signed_in(client, "bob")
    client.headers["Accept-Language"] = "en"  # the messages are read in English here
    signed_in(client, "alice")
    r = credit(client, fid, "/sales", {"receipt_no": "W-1", "terms": "credit", "product": "MT53", "boxes": "2"})
    assert r.status_code == 400 and "no credit" in r.text.lower()
    as_bob()
    assert credit(client, fid, "/grant", {"reason": "good customer for years"}).status_code == 303
    client.cookies.clear()
    signed_in(client, "alice")
    assert credit(client, fid, "/sales", {"receipt_no": "W-1", "terms": "credit", "product": "MT53",
                                          "boxes": "5"}).status_code == 303
    r = credit(client, fid, "/sales", {"receipt_no": "W-2", "terms": "credit", "product": "MT53", "boxes": "2"})
    assert r.status_code == 400 and "the limit is 5 boxes, 5 are outstanding" in r.text
    assert credit(client, fid, "/applications", {"kind": "credit", "reason": "wedding banquet order",
                                                 "extra_boxes": "2"}).status_code == 303
    with db.read() as s:
        app_id = s.scalar(select(CreditApplication.id))
    as_bob()
    assert credit(client, fid, f"/applications/{app_id}/decide", {"decision": "approve"}).status_code == 303
    client.cookies.clear()
    signed_in(client, "alice")
    assert credit(client, fid, "/sales", {"receipt_no": "W-2", "terms": "credit", "product": "MT53", "boxes": "2",
                                          "application_id": str(app_id)}).status_code == 303
    with db.read() as s:
        oid = s.scalar(select(CreditOrder.id).where(CreditOrder.receipt_no == "W-2"))
    assert credit(client, fid, f"/orders/{oid}/deliver", {"delivered_on": "2026-03-10"}).status_code == 303
    assert credit(client, fid, f"/orders/{oid}/payments", {"amount": "1000", "method": "transfer"}).status_code == 303
    r = client.get("/receivables")
    assert r.status_code == 200 and "W-2" in r.text
    as_bob()
    assert credit(client, fid, f"/orders/{oid}/write-off", {"reason": "customer has disappeared"}).status_code == 303
    r = client.get("/liabilities")
    assert r.status_code == 200 and "alice" in r.text
    r = post(client, "/liabilities/export", {"format": "xlsx"}, from_page="/liabilities")
    assert r.status_code == 200 and r.content[:2] == b"PK"
    from io import BytesIO

    from openpyxl import load_workbook
    sheet = load_workbook(BytesIO(r.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][3] == "amount_yuan" and {row[2] for row in rows[1:]} == {"operator", "line_leader"}
    assert all(sheet.cell(row=i, column=4).number_format.startswith('"¥"') for i in range(2, len(rows) + 1))
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Liability)) == 2


STRANGER_POSTS = [("/grant", {"reason": "charlie grants credit"}),
                  ("/sales", {"receipt_no": "X-1", "terms": "credit", "product": "MT53", "boxes": "1"}),
                  ("/applications", {"kind": "credit", "reason": "charlie asks", "extra_boxes": "1"}),
                  ("/applications/1/decide", {"decision": "approve"}),
                  ("/orders/1/deliver", {}), ("/orders/1/payments", {"amount": "1", "method": "cash"}),
                  ("/orders/1/write-off", {"reason": "charlie writes it off"})]


@pytest.mark.parametrize("user", ["charlie", "dave", "erin", "cathy"])
def test_a_stranger_is_refused_every_credit_page_and_step(client, db, story, shop, user):
    fid = shop
    signed_in(client, user)
    with db.read() as s:
        seq = s.scalar(select(func.max(AuditEvent.seq)))
    for hx in (False, True):
        headers = {"HX-Request": "true"} if hx else {}
        assert client.get(f"/customers/{fid}/credit", headers=headers).status_code == 403
    for path, data in STRANGER_POSTS:
        r = post(client, f"/customers/{fid}/credit{path}", data, from_page="/welcome")
        assert r.status_code == 403, path
    r = post(client, "/liabilities/export", {"format": "csv"}, from_page="/welcome")
    assert r.status_code == 403
    if user != "charlie":
        assert client.get("/receivables").status_code == 403
    assert client.get("/liabilities").status_code == 403
    with db.read() as s:
        denied = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.seq > seq, AuditEvent.outcome == "denied"))
        assert denied >= len(STRANGER_POSTS) + 3
        assert s.scalar(select(func.count()).select_from(CreditOrder)) == 0


def test_the_credit_routes_are_all_in_the_stranger_test(app):
    from portal.policy import Action
    credit_actions = {a for a in Action if a.obj in ("credit", "receivable", "liability", "catalogue")}
    paths = {route.path for route in app.routes for h in route.route_handlers
             if h.opt.get("action") in credit_actions}
    covered = {"/customers/{file_id:uuid}/credit" + p.replace("/1/", "/{application_id:int}/", 1)
               if p.startswith("/applications/1") else "/customers/{file_id:uuid}/credit" +
               p.replace("/1/", "/{order_id:int}/", 1) for p, _ in STRANGER_POSTS}
    covered |= {"/customers/{file_id:uuid}/credit", "/receivables", "/liabilities", "/liabilities/export",
                "/catalogue"}
    # tests/test_policy_matrix.py::test_strangers_are_refused_the_terms_and_a_liability_page_and_its_settlement
    covered |= {"/credit/terms", "/liabilities/{liability_id:int}", "/liabilities/{liability_id:int}/settlements"}
    assert paths <= covered, paths - covered


@pytest.mark.parametrize("user", ["alice", "bob", "cathy"])
def test_only_the_administrator_changes_the_catalogue(client, db, story, shop, user, clock_at):
    signed_in(client, user)
    r = post(client, "/catalogue", {"code": "NEW1", "name": "新酒", "bottles_per_box": "6", "list_price": "100",
                                    "group_price": "90", "active_from": "2026-03-10"}, from_page="/welcome")
    assert r.status_code == 403
    from portal.catalogue.models import ProductVersion
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProductVersion).where(ProductVersion.code == "NEW1")) == 0


def test_erin_adds_a_product_version_and_a_bad_price_is_refused_at_the_field(client, db, story, shop, clock_at):
    signed_in(client, "erin")
    bad = post(client, "/catalogue", {"code": "NEW1", "name": "新酒", "bottles_per_box": "6", "list_price": "100",
                                      "group_price": "120", "active_from": "2026-03-10"}, from_page="/catalogue")
    assert bad.status_code == 400 and 'data-error="group_price"' in bad.text
    ok = post(client, "/catalogue", {"code": "NEW1", "name": "新酒", "bottles_per_box": "6", "list_price": "100",
                                     "group_price": "90", "active_from": "2026-03-10"}, from_page="/catalogue")
    assert ok.status_code == 303
    assert "NEW1" in client.get("/catalogue").text
