"""The POS API does what its published OpenAPI document says (issue 19's nine points), answers
every body it cannot parse with a 400 JSON error, and keeps refusals of keys nobody holds to one
audit entry per client address and minute, throttled with 429."""
from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from portal.app import create_app
from portal.cli import main as portal_cli
from portal.membership.models import Purchase
from portal.pos import refusals
from portal.pos.refusals import ApiRefusalWindow

from .test_pos_api import API_PATHS, NOON, assert_error, auth, count, events, issue, nothing_written, sale

INVENTED = {"Authorization": "Bearer vip_" + "x" * 43}


@pytest.fixture
def noon(clock_at):
    clock_at(NOON)
    return NOON


@pytest.fixture
def till(db):
    return issue(db)


@pytest.fixture
def doc(client):
    return client.get("/api/v1/schema/openapi.json").json()


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


def matches(pattern: str, value: str) -> bool:
    return re.search(pattern, value) is not None


# ---------------------------------------------------------------- 1. 405 carries Allow

@pytest.mark.parametrize("method,path,allow", [
    ("DELETE", "/api/v1/cards/75500001", "GET, OPTIONS"),
    ("PUT", "/api/v1/purchases", "OPTIONS, POST"),
    ("GET", "/api/v1/redemptions", "OPTIONS, POST"),
    ("PATCH", "/api/v1/stored-value/spend", "OPTIONS, POST"),
    ("GET", "/api/v1/purchases/R-1/return", "OPTIONS, POST"),
])
def test_a_405_names_the_allowed_methods(client, till, method, path, allow):
    r = client.request(method, path, headers=auth(till[1]))
    assert_error(r, 405, "method.not_allowed")
    assert sorted(m.strip() for m in r.headers["allow"].split(",")) == sorted(allow.split(", "))


# ---------------------------------------------------------------- 2. one error body, documented

def test_every_documented_error_is_the_api_error_body(doc):
    for path, method, op in operations(doc):
        assert "400" in op["responses"], (path, method)
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"] == \
                    {"$ref": "#/components/schemas/ErrorOut"}, (path, method, status)


def test_a_400_from_a_card_look_up_is_the_documented_body(client, till, doc):
    r = client.get("/api/v1/cards/" + "9" * 30, headers=auth(till[1]))
    assert_error(r, 400, field="number")
    assert set(r.json()) == set(doc["components"]["schemas"]["ErrorOut"]["properties"])


# ---------------------------------------------------------------- 3. no extra properties

def test_request_bodies_allow_no_extra_properties(doc, client, till, noon):
    schemas = doc["components"]["schemas"]
    for name in ("PurchaseIn", "PurchaseLineIn", "RedemptionIn", "StoredValueSpendIn", "ReturnIn"):
        assert schemas[name]["additionalProperties"] is False, name
    r = client.post("/api/v1/purchases", json=sale(extra=1), headers=auth(till[1], "x-1"))
    assert_error(r, 400)


# ---------------------------------------------------------------- 4. Idempotency-Key

def test_the_idempotency_key_is_documented_as_visible_ascii(doc, client, till, noon):
    for path, method, op in operations(doc):
        if method == "post":
            (param,) = [p for p in op["parameters"] if p["name"] == "Idempotency-Key"]
            pattern = param["schema"]["pattern"]
            assert matches(pattern, "a-UUID_1~!") and not matches(pattern, "two words")
            assert not matches(pattern, "x" * 101) and not matches(pattern, "ключ")
    assert_error(client.post("/api/v1/purchases", json=sale(), headers=auth(till[1], "two words")),
                 400, "idempotency_key.invalid", "Idempotency-Key")


# ---------------------------------------------------------------- 5. a return's reason

def test_a_returns_reason_is_documented_as_five_characters_after_trimming(doc, client, till, noon):
    pattern = doc["components"]["schemas"]["ReturnIn"]["properties"]["reason"]["pattern"]
    assert matches(pattern, "  broken  ") and matches(pattern, "a   b") and not matches(pattern, "   abcd   ")
    r = client.post("/api/v1/purchases/R-1/return", json={"reason": "   abcd   "}, headers=auth(till[1], "r-1"))
    assert_error(r, 400, "reason.invalid", "reason")


# ---------------------------------------------------------------- 6. patterns

def test_card_receipt_and_product_patterns_say_what_the_server_takes(doc, client, db, till, noon):
    schemas = doc["components"]["schemas"]
    card = schemas["RedemptionIn"]["properties"]["card_number"]["pattern"]
    receipt = schemas["PurchaseIn"]["properties"]["receipt_no"]["pattern"]
    product = schemas["PurchaseLineIn"]["properties"]["product"]["pattern"]
    for good in ("755 00243", "75500243", "755-00243", " 1 00001 "):
        assert matches(card, good), good
    for bad in ("755 00000", "not-a-card", "755 0024", "７５５ 00243"):
        assert not matches(card, bad), bad
    assert matches(receipt, "R20250301-0001") and matches(receipt, "a./_-")
    assert not matches(receipt, "R 1") and not matches(receipt, "-R1")
    assert matches(product, "茅台") and not matches(product, "   ")
    path_params = {p["name"]: p["schema"] for _, _, op in operations(doc) for p in op.get("parameters", [])}
    assert path_params["number"]["pattern"] == card and path_params["receipt_no"]["pattern"] == receipt
    for body, field in [(sale(card="755 00000"), "card_number"), (sale(receipt="-R1"), "receipt_no"),
                        (sale(lines=[{"product": "  ", "quantity": 1, "unit_price_yuan": "5"}]),
                         "lines[0].product")]:
        assert_error(client.post("/api/v1/purchases", json=body, headers=auth(till[1], field)), 400, field=field)
    assert count(db, Purchase) == 0


# ---------------------------------------------------------------- 7. spend amounts

def test_a_spend_amount_is_documented_from_one_fen_to_a_million_yuan(doc):
    pattern = doc["components"]["schemas"]["StoredValueSpendIn"]["properties"]["amount_yuan"]["pattern"]
    for good in ("0.01", "0.1", "1", "30.50", "999999.99", "1000000", "1000000.00"):
        assert matches(pattern, good), good
    for bad in ("0", "0.00", "0.0", "1000000.01", "1000001", "01", "-1", "1e3"):
        assert not matches(pattern, bad), bad


# ---------------------------------------------------------------- 8. 415

@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_a_body_not_sent_as_json_is_415_and_records_nothing(client, db, till, noon, content_type):
    import json
    headers = auth(till[1], f"ct-{content_type}")
    if content_type:
        headers["Content-Type"] = content_type
    r = client.post("/api/v1/purchases", content=json.dumps(sale()).encode(), headers=headers)
    if content_type is None:  # httpx sends no Content-Type for raw content
        assert "content-type" not in {k.lower() for k in r.request.headers}
    assert_error(r, 415, "request.media_type")
    assert nothing_written(db) == (0, 0, 0, 0, 0)
    r = client.post("/api/v1/purchases", json=sale(),
                    headers={**auth(till[1], "ct-ok"), "Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201, r.text


def test_415_is_documented_on_every_write(doc):
    for path, method, op in operations(doc):
        assert ("415" in op["responses"]) == (method == "post"), (path, method)


# ---------------------------------------------------------------- 9. OPTIONS

def test_options_with_a_valid_key_lists_the_methods(client, till):
    for path, allow in [("/api/v1/cards/75500001", {"GET", "OPTIONS"}), ("/api/v1/purchases", {"POST", "OPTIONS"})]:
        r = client.options(path, headers=auth(till[1]))
        assert r.status_code == 204, r.text
        assert {m.strip() for m in r.headers["allow"].split(",")} == allow
    assert_error(client.options("/api/v1/purchases"), 401)  # ... and like every call, needs the key


def test_the_schema_still_lists_exactly_the_operations(doc):
    assert set(doc["paths"]) == API_PATHS
    assert not any(method == "options" for _, method, _ in operations(doc))


# ---------------------------------------------------------------- finding 13: bodies that do not parse

@pytest.mark.parametrize("raw", [
    b"[" * 5000 + b"]" * 5000,                       # nested far deeper than the decoder goes
    b'{"receipt_no": "R\xff\xfe1"}',                  # invalid UTF-8 inside a string
    b'{"receipt_no": "\\ud800"}',                     # a lone surrogate escape
    b"\xef\xbb\xbf" + b"{}",                          # a byte-order mark
    b'{"a": ' * 3000 + b"1" + b"}" * 3000,            # deep objects
])
def test_a_body_that_does_not_parse_is_400_json(client, db, till, noon, raw):
    r = client.post("/api/v1/purchases", content=raw,
                    headers={**auth(till[1], "k"), "Content-Type": "application/json"})
    assert_error(r, 400, "request.malformed")
    assert nothing_written(db) == (0, 0, 0, 0, 0)


# ---------------------------------------------------------------- finding 11: refusals of unknown keys

def test_invented_keys_leave_one_audit_entry_per_address_and_minute_with_the_count(client, db, till, noon,
                                                                                   clock_at):
    limit = refusals.LIMIT_PER_MINUTE
    statuses = [client.get("/api/v1/cards/75500001", headers=INVENTED).status_code for _ in range(limit + 5)]
    assert statuses == [401] * limit + [429] * 5
    r = client.get("/api/v1/cards/75500001", headers={"X-API-Key": "invented"})
    err = assert_error(r, 429, "api_key.throttled")
    assert 1 <= int(r.headers["retry-after"]) <= 60 and err["message"]
    # Nothing appended yet: the count sits in one row for this address.
    assert events(db, action="member.pos", object_type="terminal") == []
    # A good key is never throttled, even from that address.
    assert client.get("/api/v1/cards/75500001", headers=auth(till[1])).status_code == 404
    clock_at(noon + timedelta(seconds=61))
    assert_error(client.get("/api/v1/cards/75500001", headers=INVENTED), 401)  # a new minute
    (ev,) = events(db, action="member.pos", object_type="terminal")
    assert ev.outcome == "denied" and ev.client_addr == "testclient"
    assert ev.detail.startswith(f"{limit + 6} calls refused") and "(6 answered 429)" in ev.detail
    assert "unknown key" in ev.reason and "malformed key" in ev.reason


def test_a_revoked_terminals_refusals_stay_one_entry_each(client, db, till, noon):
    from portal.pos import terminals
    from .test_pos_api import ADMIN
    tid, key = till
    with db.write() as s:
        terminals.revoke(s, ADMIN, tid, "terminal retired")
    for _ in range(3):
        assert_error(client.get("/api/v1/cards/75500001", headers=auth(key)), 401)
    assert len([e for e in events(db, action="member.pos", object_type="terminal") if e.object_id == str(tid)]) == 3


def test_refusals_are_counted_in_the_database_across_processes(settings, db, noon):
    """Two app instances (as two processes would) share one window; the total is exact under
    concurrency, and exactly the calls past the limit are throttled."""
    apps = [create_app(settings), create_app(settings)]
    n = refusals.LIMIT_PER_MINUTE + 10
    results: list[int] = []
    lock = threading.Lock()

    def hit(app):
        with TestClient(app=app) as c:
            for _ in range(n // 2):
                code = c.get("/api/v1/cards/75500001", headers=INVENTED).status_code
                with lock:
                    results.append(code)

    threads = [threading.Thread(target=hit, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [401] * refusals.LIMIT_PER_MINUTE + [429] * 10
    with db.read() as s:
        (row,) = s.query(ApiRefusalWindow).all()
        assert (row.refused, row.throttled) == (n, 10)


def test_concurrent_refusals_count_exactly(db, noon):
    n = 24
    barrier = threading.Barrier(n)
    verdicts = []

    def refuse():
        barrier.wait()
        with db.write() as s:
            verdicts.append(refusals.note_refusal(s, "203.0.113.9", "unknown key", "GET /api/v1/x"))

    threads = [threading.Thread(target=refuse) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.read() as s:
        row = s.get(ApiRefusalWindow, "203.0.113.9")
        assert row.refused == n and len(verdicts) == n


def test_the_jobs_command_audits_ended_minutes(settings, db, noon, clock_at):
    with db.write() as s:
        refusals.note_refusal(s, "198.51.100.7", "no key", "POST /api/v1/purchases")
    clock_at(noon + timedelta(minutes=2))
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file)}
    r = CliRunner().invoke(portal_cli, ["jobs", "purge-sessions"], env=env)
    assert r.exit_code == 0, r.output
    assert "1 address-minute" in r.output
    (ev,) = events(db, action="member.pos", object_type="terminal")
    assert ev.client_addr == "198.51.100.7" and ev.detail.startswith("1 call refused")
    with db.read() as s:
        assert s.query(ApiRefusalWindow).count() == 0


# ---------------------------------------------------------------- what Schemathesis found on the way

def test_two_different_keys_are_refused_whichever_is_good(client, till):
    good, bad = till[1], "vip_" + "z" * 43
    for headers in ({"Authorization": f"Bearer {good}", "X-API-Key": bad},
                    {"Authorization": f"Bearer {bad}", "X-API-Key": good},
                    {"Authorization": f"Bearer {good}", "X-API-Key": ""}):
        assert_error(client.get("/api/v1/cards/75500001", headers=headers), 401, "api_key.invalid")
    same = {"Authorization": f"Bearer {good}", "X-API-Key": good}
    assert client.get("/api/v1/cards/75500001", headers=same).status_code == 404


@pytest.mark.parametrize("value", ["\x1e", "\u3000\ufeff", "\x85 "])
def test_a_product_name_of_white_space_in_either_regex_dialect_is_400(client, db, till, noon, value):
    body = sale(lines=[{"product": value, "quantity": 1, "unit_price_yuan": "5"}])
    assert_error(client.post("/api/v1/purchases", json=body, headers=auth(till[1], "ws")), 400,
                 "product.required", "lines[0].product")
    assert nothing_written(db) == (0, 0, 0, 0, 0)


def test_a_value_with_a_trailing_newline_does_not_slip_past_its_pattern(client, db, till, noon):
    for body, field in [(sale(receipt="R-1\n"), "receipt_no"), (sale(card="755 00243\n"), "card_number")]:
        assert_error(client.post("/api/v1/purchases", json=body, headers=auth(till[1], field)), 400, field=field)
    assert_error(client.get("/api/v1/cards/75500243%0A", headers=auth(till[1])), 400, "card.invalid", "number")
    assert nothing_written(db) == (0, 0, 0, 0, 0)
