"""The POS API (/api/v1): terminal keys, unit scope, idempotent retries, JSON errors that write
nothing, the OpenAPI document, and the admin page and CLI that issue and revoke keys."""
from __future__ import annotations

import re
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from portal.accounts.actor import Actor
from portal.cli import main as portal_cli
from portal.audit.models import AuditEvent
from portal.membership import cards, members, points
from portal.membership.models import (ApiIdempotency, CardAccount, MemberCard, PointsEntryRow, PosTerminal,
                                      Purchase, Redemption, StoredValueEntryRow)
from portal.pos import idempotency, terminals

from .browser import csrf_of, signed_in
from .factories import stored_values

ADMIN = Actor.system("test-admin")
NOON = datetime(2025, 3, 14, 4, 0, tzinfo=timezone.utc)  # 12:00 in Shanghai
API_PATHS = {"/api/v1/cards/{number}", "/api/v1/purchases", "/api/v1/purchases/{receipt_no}/return",
             "/api/v1/redemptions", "/api/v1/stored-value/spend"}


# ---------------------------------------------------------------- helpers

def issue(db, unit: str = "755A", name: str = "Till 1") -> tuple[int, str]:
    with db.write() as s:
        t, key = terminals.issue_key(s, ADMIN, name, unit)
        return t.id, key


def enrol(db, story, owner: str = "alice", index: int = 0) -> str:
    """Make one of the owner's files a member; the number of its first card."""
    with db.write() as s:
        m = members.enrol(s, story.actor(db, owner), uuid.UUID(story.files[owner][index]),
                          cause="application", card_type="standard")
        account = members.primary_account(s, m)
        return members.current_card(s, account.id).number


def account_of(db, number: str) -> CardAccount:
    with db.read() as s:
        card = s.scalar(select(MemberCard).where(MemberCard.number == number))
        return s.get(CardAccount, card.account_id)


def count(db, model, *where) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def events(db, **match) -> list[AuditEvent]:
    with db.read() as s:
        q = select(AuditEvent).order_by(AuditEvent.seq)
        for k, v in match.items():
            q = q.where(getattr(AuditEvent, k) == v)
        return list(s.scalars(q))


def auth(key: str, idem: str | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {key}"}
    if idem is not None:
        h["Idempotency-Key"] = idem
    return h


def sale(receipt: str = "R-0001", card: str | None = None, **over) -> dict:
    body = {"receipt_no": receipt, "payment_method": "cash",
            "lines": [{"product": "茅台 53度", "quantity": 2, "unit_price_yuan": "128.50"}]}
    if card:
        body["card_number"] = card
    body.update(over)
    return body


def assert_error(r, status: int, code: str | None = None, field: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]
    err = r.json()["error"]
    assert set(err) == {"code", "field", "message"} and err["message"]
    assert "Traceback" not in r.text and "<html" not in r.text.lower()
    if code is not None:
        assert err["code"] == code, err
    if field is not None:
        assert err["field"] == field, err
    return err


def nothing_written(db) -> tuple[int, ...]:
    """The figures a refused call must leave as they were."""
    return (count(db, Purchase), count(db, PointsEntryRow), count(db, StoredValueEntryRow),
            count(db, Redemption), count(db, ApiIdempotency))


@pytest.fixture
def noon(clock_at):
    clock_at(NOON)
    return NOON


@pytest.fixture
def till(db):
    return issue(db)


# ---------------------------------------------------------------- keys

def test_a_key_is_random_prefixed_and_only_its_hash_is_kept(db):
    tid, key = issue(db)
    assert key.startswith("vip_") and len(key) >= 40
    with db.read() as s:
        t = s.get(PosTerminal, tid)
        assert t.key_prefix == key[:12]
        assert t.key_hash == terminals.key_hash(key) and key not in t.key_hash
        assert t.unit_path and t.revoked_at is None
    assert not any(key.encode() in v for v in stored_values(db))
    (ev,) = events(db, action="admin.terminals")
    assert ev.object_type == "terminal" and ev.object_id == str(tid) and key not in ev.detail


def test_authenticate_gives_a_terminal_actor_for_its_unit(db):
    tid, key = issue(db, unit="755")
    with db.write() as s:
        actor = terminals.authenticate(s, key, "10.0.0.9")
        assert actor.role == "terminal" and actor.terminal_id == tid and actor.user_id is None
        assert actor.username == "terminal:Till 1" and actor.client_addr == "10.0.0.9"
        assert actor.unit_path == s.get(PosTerminal, tid).unit_path
        assert terminals.authenticate(s, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert terminals.authenticate(s, "") is None
        assert terminals.authenticate(s, "vip_short") is None
        assert terminals.authenticate(s, "not-a-key-at-all-but-long-enough") is None


def test_a_revoked_key_stops_working(db):
    tid, key = issue(db)
    with db.write() as s:
        terminals.revoke(s, ADMIN, tid, "till stolen from the shop")
    with db.write() as s:
        assert terminals.authenticate(s, key) is None
        with pytest.raises(terminals.TerminalError):
            terminals.revoke(s, ADMIN, tid, "again, for good measure")
    ev = events(db, action="admin.terminals")[-1]
    assert ev.reason == "till stolen from the shop" and ev.detail.startswith("revoke")


def test_issuing_refuses_unknown_units_and_blank_names(db):
    with db.write() as s:
        with pytest.raises(terminals.TerminalError) as e:
            terminals.issue_key(s, ADMIN, "Till", "NOPE")
        assert e.value.field == "unit"
        with pytest.raises(terminals.TerminalError) as e:
            terminals.issue_key(s, ADMIN, "   ", "755A")
        assert e.value.field == "name"


def test_last_used_is_written_at_most_once_a_minute(db, clock_at):
    tid, key = issue(db)

    def last_used():
        with db.read() as s:
            return s.get(PosTerminal, tid).last_used_at

    clock_at(NOON)
    with db.write() as s:
        terminals.authenticate(s, key)
    assert last_used() == NOON
    clock_at(NOON + timedelta(seconds=30))
    with db.write() as s:
        terminals.authenticate(s, key)
    assert last_used() == NOON
    clock_at(NOON + timedelta(seconds=61))
    with db.write() as s:
        terminals.authenticate(s, key)
    assert last_used() == NOON + timedelta(seconds=61)


# ---------------------------------------------------------------- authentication

@pytest.mark.parametrize("headers,problem", [
    ({}, "no key"),
    ({"Authorization": "Bearer vip_" + "x" * 43}, "unknown key"),
    ({"X-API-Key": "vip_" + "y" * 43}, "unknown key"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "no key"),
])
def test_a_call_without_a_good_key_is_refused_and_audited(client, db, till, noon, clock_at, headers, problem):
    r = client.get("/api/v1/cards/75500001", headers=headers)
    assert_error(r, 401, "api_key.invalid")
    assert r.headers["www-authenticate"].startswith("Bearer")
    # Counted for its address and minute, audited once the minute is over (by the next call).
    clock_at(noon + timedelta(minutes=1))
    client.get("/api/v1/cards/75500001", headers=auth(till[1]))
    (ev,) = events(db, outcome="denied", object_type="terminal")
    assert ev.action == "member.pos" and ev.client_addr == "testclient"
    assert problem in ev.reason and "GET /api/v1/cards/75500001" in ev.detail
    assert ev.detail.startswith("1 call refused")
    for value in headers.values():
        assert value.split()[-1] not in f"{ev.reason}{ev.detail}{ev.object_id}"


def test_a_revoked_terminal_is_refused(client, db, till):
    tid, key = till
    assert client.get("/api/v1/cards/75500001", headers=auth(key)).status_code == 404  # works
    with db.write() as s:
        terminals.revoke(s, ADMIN, tid, "terminal retired")
    assert_error(client.get("/api/v1/cards/75500001", headers=auth(key)), 401, "api_key.invalid")
    assert_error(client.get("/api/v1/cards/75500001", headers={"X-API-Key": key}), 401)
    # (The first look-up's 404 is recorded too, against the API address, not the terminal.)
    denied = [e for e in events(db, outcome="denied") if e.object_type != "api"]
    assert len(denied) == 2 and all(e.object_id == str(tid) and "revoked" in e.reason for e in denied)
    assert not any(key in e.detail + e.reason for e in events(db))


def test_a_wrong_secret_with_a_real_prefix_is_refused(client, db, till, noon, clock_at):
    tid, key = till
    forged = key[:12] + "A" * (len(key) - 12)
    assert_error(client.get("/api/v1/cards/75500001", headers=auth(forged)), 401)
    # Nobody holds this key: counted with the invented ones, naming the terminal it aimed at.
    clock_at(noon + timedelta(minutes=1))
    client.get("/api/v1/cards/75500001", headers=auth(key))
    (ev,) = events(db, outcome="denied", object_type="terminal")
    assert f"wrong key for terminal {tid}" in ev.reason and forged[12:] not in ev.reason + ev.detail


def test_a_signed_in_session_does_not_reach_the_api(client, db, story, noon):
    number = enrol(db, story)
    signed_in(client, "alice")
    r = client.get(f"/api/v1/cards/{number}")
    assert_error(r, 401)
    # ... and a write needs no CSRF token, but a key: a forged cross-site form has neither.
    r = client.post("/api/v1/purchases", json=sale(card=number), headers={"Idempotency-Key": "k"})
    assert_error(r, 401)
    assert count(db, Purchase) == 0


def test_the_api_sets_no_cookies(client, db, till):
    r = client.get("/api/v1/cards/75500001", headers=auth(till[1]))
    assert "set-cookie" not in r.headers


# ---------------------------------------------------------------- card lookup and unit scope

def test_lookup_shows_the_card_masked_and_is_audited(client, db, story, till, noon):
    number = enrol(db, story)
    r = client.get(f"/api/v1/cards/{number}", headers=auth(till[1]))
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["number"] == number and card["usable"] is True and card["tier"] == "regular"
    assert card["points_balance"] == 0 and card["stored_value_fen"] == 0 and card["stored_value_yuan"] == "0.00"
    assert "*" in card["masked_name"] and "王小明" not in r.text
    assert "file_no" not in card
    # Compact and spaced forms both work.
    assert client.get(f"/api/v1/cards/{number.replace(' ', '')}", headers=auth(till[1])).json() == card
    ev = events(db, action="member.pos", outcome="allowed")
    assert ev and ev[-1].object_id == number and ev[-1].actor_username == "terminal:Till 1"


def test_a_terminal_cannot_look_up_a_member_of_another_unit(client, db, story, noon):
    frank_card = enrol(db, story, owner="frank")  # region 010
    _, key = issue(db, unit="755A")
    r = client.get(f"/api/v1/cards/{frank_card}", headers=auth(key))
    assert_error(r, 403, "forbidden")
    (ev,) = events(db, outcome="denied")
    assert ev.action == "member.pos" and ev.actor_role == "terminal"


def test_a_terminal_serves_the_units_below_its_own(client, db, story, noon):
    alice_card = enrol(db, story, owner="alice")        # 755A
    charlie_card = enrol(db, story, owner="charlie")    # 755B
    _, region_key = issue(db, unit="755", name="Region till")
    _, team_key = issue(db, unit="755B", name="Team B till")
    assert client.get(f"/api/v1/cards/{alice_card}", headers=auth(region_key)).status_code == 200
    assert client.get(f"/api/v1/cards/{charlie_card}", headers=auth(region_key)).status_code == 200
    assert client.get(f"/api/v1/cards/{charlie_card}", headers=auth(team_key)).status_code == 200
    assert_error(client.get(f"/api/v1/cards/{alice_card}", headers=auth(team_key)), 403)


def test_unknown_and_malformed_card_numbers(client, db, till):
    assert_error(client.get("/api/v1/cards/75599999", headers=auth(till[1])), 404, "not_found")
    assert_error(client.get("/api/v1/cards/not-a-card", headers=auth(till[1])), 400, "card.invalid",
                 "number")


def test_unknown_api_addresses_and_methods_answer_json(client, till):
    assert_error(client.get("/api/v1/nothing-here", headers=auth(till[1])), 404)
    assert_error(client.get("/api/v1/purchases", headers=auth(till[1])), 405)
    assert_error(client.get("/api/v1/schema/nothing-here"), 404)
    assert_error(client.options("/api/v1/purchases"), 401)


def test_every_api_write_takes_an_idempotency_key(app):
    writes = [h for route in app.routes for h in route.route_handlers
              if h.opt.get("api") is True and h.http_methods & {"POST", "PUT", "PATCH", "DELETE"}]
    assert len(writes) == 4
    for h in writes:
        assert "idempotency_key" in h.parsed_fn_signature.parameters, h


# ---------------------------------------------------------------- purchases

def test_a_purchase_reports_amounts_and_points(client, db, story, till, noon):
    number = enrol(db, story)
    r = client.post("/api/v1/purchases", json=sale(card=number), headers=auth(till[1], "sale-1"))
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["list_total_fen"] == 25700 and out["list_total_yuan"] == "257.00"
    assert out["paid_total_fen"] == 25700 - out["discount_total_fen"]
    assert out["paid_total_yuan"] == f"{out['paid_total_fen'] // 100}.{out['paid_total_fen'] % 100:02d}"
    assert out["points_earned"] == 257 and out["points_balance"] == 257  # regular: 1 point per yuan
    assert out["card_number"] == number and out["tier"] == "regular"
    assert account_of(db, number).points_balance == 257
    with db.read() as s:
        p = s.scalar(select(Purchase).where(Purchase.receipt_no == "R-0001"))
        assert p.terminal_id == till[0] and p.recorded_by_id is None
    assert events(db, action="member.purchase")[-1].actor_username == "terminal:Till 1"


def test_amounts_in_yuan_become_fen_exactly(client, db, till, noon):
    lines = [{"product": "a", "quantity": 3, "unit_price_yuan": "0.1"},
             {"product": "b", "quantity": 1, "unit_price_yuan": "19.99"},
             {"product": "c", "quantity": 1, "unit_price_yuan": "7"}]
    r = client.post("/api/v1/purchases", json=sale(lines=lines), headers=auth(till[1], "k"))
    assert r.status_code == 201, r.text
    assert r.json()["list_total_fen"] == 30 + 1999 + 700
    assert r.json()["points_balance"] is None  # an anonymous sale


def test_a_retried_purchase_is_answered_again_and_counted_once(client, db, story, till, noon):
    number = enrol(db, story)
    headers = auth(till[1], "2c9f1f9e-retry")
    first = client.post("/api/v1/purchases", json=sale(card=number), headers=headers)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    before = nothing_written(db), account_of(db, number).points_balance, len(events(db))
    again = client.post("/api/v1/purchases", json=sale(card=number), headers=headers)
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert (nothing_written(db), account_of(db, number).points_balance, len(events(db))) == before
    assert count(db, Purchase) == 1 and len(events(db, action="member.purchase")) == 1


def test_a_retry_matches_on_content_not_on_json_layout(client, db, till, noon):
    body = sale()
    r1 = client.post("/api/v1/purchases", json=body, headers=auth(till[1], "same"))
    reordered = '{"lines": [{"unit_price_yuan": "128.50", "quantity": 2, "product": "茅台 53度"}],\n' \
                ' "payment_method": "cash", "receipt_no": "R-0001"}'
    r2 = client.post("/api/v1/purchases", content=reordered.encode(),
                     headers={**auth(till[1], "same"), "content-type": "application/json"})
    assert r2.status_code == 201 and r2.content == r1.content and count(db, Purchase) == 1


def test_the_same_key_with_another_body_is_refused(client, db, till, noon):
    client.post("/api/v1/purchases", json=sale(), headers=auth(till[1], "k-1"))
    before = nothing_written(db)
    r = client.post("/api/v1/purchases", json=sale(receipt="R-0002"), headers=auth(till[1], "k-1"))
    assert_error(r, 422, "idempotency_key.reused", "Idempotency-Key")
    r = client.post("/api/v1/redemptions", json={"card_number": "75500001", "item_code": "coupon-50"},
                    headers=auth(till[1], "k-1"))
    assert_error(r, 422, "idempotency_key.reused")
    assert nothing_written(db) == before


def test_keys_belong_to_one_terminal(client, db, till, noon):
    _, other = issue(db, name="Till 2")
    r1 = client.post("/api/v1/purchases", json=sale(receipt="R-A"), headers=auth(till[1], "shared"))
    r2 = client.post("/api/v1/purchases", json=sale(receipt="R-B"), headers=auth(other, "shared"))
    assert r1.status_code == r2.status_code == 201 and count(db, Purchase) == 2


def test_a_write_without_an_idempotency_key_is_refused(client, db, till, noon):
    r = client.post("/api/v1/purchases", json=sale(), headers=auth(till[1]))
    assert_error(r, 400, "idempotency_key.missing", "Idempotency-Key")
    r = client.post("/api/v1/purchases", json=sale(), headers=auth(till[1], "bad key with spaces"))
    assert_error(r, 400, "idempotency_key.invalid")
    assert nothing_written(db) == (0, 0, 0, 0, 0)


@pytest.mark.parametrize("body,field", [
    ({"lines": []}, "lines"),
    ({"lines": [{"product": "x", "quantity": 1, "unit_price_yuan": "12.345"}]}, "lines[0].unit_price_yuan"),
    ({"lines": [{"product": "x", "quantity": 1, "unit_price_yuan": "-5.00"}]}, "lines[0].unit_price_yuan"),
    ({"lines": [{"product": "x", "quantity": 1, "unit_price_yuan": "1e3"}]}, "lines[0].unit_price_yuan"),
    ({"lines": [{"product": "x", "quantity": 1, "unit_price_yuan": " 5"}]}, "lines[0].unit_price_yuan"),
    ({"lines": [{"product": "x", "quantity": 1, "unit_price_yuan": 12.5}]}, "lines[0].unit_price_yuan"),
    ({"lines": [{"product": "x", "quantity": 0, "unit_price_yuan": "5"}]}, "lines[0].quantity"),
    ({"lines": [{"product": "", "quantity": 1, "unit_price_yuan": "5"}]}, "lines[0].product"),
    ({"payment_method": "bitcoin"}, "payment_method"),
    ({"receipt_no": None}, "receipt_no"),
    ({"surprise": 1}, ""),
])
def test_bad_purchases_are_400_and_write_nothing(client, db, till, noon, body, field):
    r = client.post("/api/v1/purchases", json=sale(**body), headers=auth(till[1], "k"))
    err = assert_error(r, 400)
    assert err["code"] in ("request.invalid", "amount.invalid", "product.required", "receipt.invalid")
    if field:
        assert err["field"] == field
    assert nothing_written(db) == (0, 0, 0, 0, 0)
    # The key was not used up: the corrected request goes through with it.
    assert client.post("/api/v1/purchases", json=sale(), headers=auth(till[1], "k")).status_code == 201


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", "{\"receipt_no\": \"\u00ff".encode()])
def test_malformed_json_is_400(client, db, till, raw):
    r = client.post("/api/v1/purchases", content=raw,
                    headers={**auth(till[1], "k"), "content-type": "application/json"})
    err = assert_error(r, 400)
    assert err["field"] == "" and err["code"] in ("request.malformed", "request.invalid")
    assert nothing_written(db) == (0, 0, 0, 0, 0)


def test_values_the_programme_refuses_are_422_and_write_nothing(client, db, story, till, noon):
    number = enrol(db, story)
    future = (NOON + timedelta(days=3)).date().isoformat()
    for body, code, field in [
        (sale(purchased_on=future), "date.future", "purchased_on"),
        (sale(payment_method="stored_value"), "payment.no_card", "payment_method"),
    ]:
        assert_error(client.post("/api/v1/purchases", json=body, headers=auth(till[1], code)), 422, code, field)
    # Values outside the schema's patterns are malformed requests (400), named by their field.
    for body, code, field in [
        (sale(receipt="R 1 with spaces"), "receipt.invalid", "receipt_no"),
        (sale(card="not-a-card"), "card.invalid", "card_number"),
    ]:
        assert_error(client.post("/api/v1/purchases", json=body, headers=auth(till[1], code)), 400, code, field)
    assert nothing_written(db) == (0, 0, 0, 0, 0)
    assert account_of(db, number).points_balance == 0


def test_a_refused_call_is_audited_with_its_error_code(client, db, story, till, noon):
    enrol(db, story)
    assert_error(client.post("/api/v1/purchases", json=sale(purchased_on="2999-01-01"),
                             headers=auth(till[1], "x")), 422, "date.future", "purchased_on")
    refused = events(db, action="member.pos", outcome="denied")
    assert refused and refused[-1].reason == "date.future"
    assert refused[-1].actor_username.startswith("terminal:")


def test_a_receipt_recorded_twice_is_a_conflict(client, db, till, noon):
    assert client.post("/api/v1/purchases", json=sale(), headers=auth(till[1], "a")).status_code == 201
    before = nothing_written(db)
    assert_error(client.post("/api/v1/purchases", json=sale(), headers=auth(till[1], "b")), 409,
                 "receipt.duplicate", "receipt_no")
    assert nothing_written(db) == before


def test_a_lost_card_is_a_conflict(client, db, story, till, noon):
    number = enrol(db, story)
    with db.write() as s:
        cards.report_loss(s, story.actor(db, "alice"), number, "member lost the card")
    assert_error(client.post("/api/v1/purchases", json=sale(card=number), headers=auth(till[1], "k")),
                 409, "card.lost", "card_number")
    assert count(db, Purchase) == 0
    assert client.get(f"/api/v1/cards/{number}", headers=auth(till[1])).json()["usable"] is False


def test_a_purchase_for_a_member_of_another_unit_is_403_and_writes_nothing(client, db, story, till, noon):
    frank_card = enrol(db, story, owner="frank")
    r = client.post("/api/v1/purchases", json=sale(card=frank_card), headers=auth(till[1], "k"))
    assert_error(r, 403)
    assert nothing_written(db) == (0, 0, 0, 0, 0)


# ---------------------------------------------------------------- returns

def test_a_return_reverses_points_once(client, db, story, till, noon):
    number = enrol(db, story)
    client.post("/api/v1/purchases", json=sale(card=number), headers=auth(till[1], "sale"))
    body = {"reason": "customer changed their mind"}
    r = client.post("/api/v1/purchases/R-0001/return", json=body, headers=auth(till[1], "ret"))
    assert r.status_code == 200, r.text
    assert r.json()["points_reversed"] == 257 and r.json()["points_balance"] == 0
    again = client.post("/api/v1/purchases/R-0001/return", json=body, headers=auth(till[1], "ret"))
    assert again.status_code == 200 and again.content == r.content
    assert len(events(db, action="member.return")) == 1
    assert_error(client.post("/api/v1/purchases/R-0001/return", json=body, headers=auth(till[1], "ret-2")),
                 409, "purchase.returned")
    assert_error(client.post("/api/v1/purchases/R-9999/return", json=body, headers=auth(till[1], "ret-3")),
                 404)
    assert_error(client.post("/api/v1/purchases/R-0001/return", json={"reason": "no"},
                             headers=auth(till[1], "ret-4")), 400, "reason.invalid", "reason")


# ---------------------------------------------------------------- points and stored value

def test_redeeming_points(client, db, story, till, noon):
    number = enrol(db, story)
    with db.write() as s:
        account = s.get(CardAccount, account_of(db, number).id)
        points.credit_points(s, story.actor(db, "alice"), account, 600, kind="earn",
                             on=(NOON - timedelta(days=2)).date(), ref="seed")
    body = {"card_number": number, "item_code": "coupon-50"}
    r = client.post("/api/v1/redemptions", json=body, headers=auth(till[1], "red-1"))
    assert r.status_code == 201, r.text
    assert r.json()["points"] == 500 and r.json()["points_balance"] == 100
    assert r.json()["value_fen"] == 5000 and r.json()["value_yuan"] == "50.00"
    assert client.post("/api/v1/redemptions", json=body, headers=auth(till[1], "red-1")).content == r.content
    assert count(db, Redemption) == 1 and account_of(db, number).points_balance == 100
    assert_error(client.post("/api/v1/redemptions", json=body, headers=auth(till[1], "red-2")),
                 409, "points.insufficient")
    assert_error(client.post("/api/v1/redemptions", json={**body, "item_code": "yacht"},
                             headers=auth(till[1], "red-3")), 422, "item.unknown", "item_code")
    with db.read() as s:
        assert s.scalar(select(Redemption)).terminal_id == till[0]


def test_spending_stored_value_needs_the_pin_and_the_balance(client, db, story, till, noon):
    number = enrol(db, story)
    alice = story.actor(db, "alice")
    with db.write() as s:
        cards.set_pin(s, alice, number, "246810")
        points.recharge_stored_value(s, alice, number, 10_000)
    body = {"card_number": number, "amount_yuan": "30.50", "pin": "246810", "reference": "R-77"}
    r = client.post("/api/v1/stored-value/spend", json=body, headers=auth(till[1], "sv-1"))
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "spend" and r.json()["amount_fen"] == -3050  # as the ledger has it
    assert r.json()["amount_yuan"] == "-30.50"
    assert r.json()["balance_fen"] == 6950 and r.json()["balance_yuan"] == "69.50"
    again = client.post("/api/v1/stored-value/spend", json=body, headers=auth(till[1], "sv-1"))
    assert again.content == r.content and account_of(db, number).stored_value_fen == 6950
    before = nothing_written(db)
    assert_error(client.post("/api/v1/stored-value/spend", json={**body, "pin": "000000"},
                             headers=auth(till[1], "sv-2")), 422, "pin.invalid", "pin")
    assert_error(client.post("/api/v1/stored-value/spend", json={**body, "amount_yuan": "100.00"},
                             headers=auth(till[1], "sv-3")), 409, "stored_value.insufficient", "amount_yuan")
    assert_error(client.post("/api/v1/stored-value/spend", json={**body, "amount_yuan": "0.00"},
                             headers=auth(till[1], "sv-4")), 400, "amount.invalid", "amount_yuan")
    assert_error(client.post("/api/v1/stored-value/spend", json={**body, "amount_yuan": "1.001"},
                             headers=auth(till[1], "sv-5")), 400, "amount.invalid", "amount_yuan")
    assert nothing_written(db) == before
    assert account_of(db, number).stored_value_fen == 6950


# ---------------------------------------------------------------- idempotency under races

def test_concurrent_duplicates_run_the_use_case_once(db, till):
    tid = till[0]
    calls = []
    gate = threading.Barrier(4)
    answers = []

    def use_case(s):
        calls.append(1)
        s.add(PosTerminal(name="made once", unit_id=1, unit_path="/1/", key_prefix=f"x{len(calls)}",
                          key_hash="0" * 64, created_at=NOON))
        return 201, '{"ok": true}'

    def worker():
        gate.wait()
        answers.append(idempotency.run_once(db, tid, "race", "h" * 64, use_case))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and count(db, PosTerminal, PosTerminal.name == "made once") == 1
    assert {(a.status_code, a.body) for a in answers} == {(201, '{"ok": true}')}
    assert sorted(a.replayed for a in answers) == [False, True, True, True]


def test_a_duplicate_that_lost_the_race_rolls_back_and_replays(db, till, monkeypatch):
    """The primary key catches a duplicate that did not see the first answer when it started."""
    tid = till[0]
    with db.write() as s:
        idempotency.replay_or_reserve(s, tid, "race", "h" * 64)
        idempotency.store(s, tid, "race", 201, '{"first": true}')
    real, looks = idempotency._stored, []

    def blind_first_look(*args):  # the first look happens "before" the other answer committed
        looks.append(1)
        return None if len(looks) == 1 else real(*args)

    monkeypatch.setattr(idempotency, "_stored", blind_first_look)
    wrote = []

    def use_case(s):
        wrote.append(1)
        return 201, '{"second": true}'

    answer = idempotency.run_once(db, tid, "race", "h" * 64, use_case)
    assert answer.body == '{"first": true}' and answer.replayed and not wrote


# ---------------------------------------------------------------- OpenAPI

def test_the_openapi_document_describes_exactly_the_api(client):
    r = client.get("/api/v1/schema")
    assert r.status_code == 200 and "json" in r.headers["content-type"]
    doc = r.json()
    assert doc["openapi"].startswith("3.") and doc["info"]["title"]
    assert set(doc["paths"]) == API_PATHS
    assert client.get("/api/v1/schema/openapi.json").json() == doc
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["Bearer"]["scheme"] == "bearer"
    schemas = doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert {"ApiKey": []} in op["security"], (path, method)
            ok = op["responses"]["201" if method == "post" and "return" not in path else "200"]
            assert ok["content"]["application/json"]["schema"]["$ref"].startswith("#/components/schemas/")
            for code in ("401", "403", "404"):
                assert op["responses"][code]["content"]["application/json"]["schema"]["$ref"] \
                    == "#/components/schemas/ErrorOut"
            if method == "post":
                assert op["requestBody"]["required"] is True
                assert "$ref" in op["requestBody"]["content"]["application/json"]["schema"]
                header = [p for p in op["parameters"] if p["in"] == "header"]
                assert header[0]["name"] == "Idempotency-Key" and header[0]["required"] is True
                assert {"400", "409", "422"} <= set(op["responses"])
    line = schemas["PurchaseLineIn"]
    assert line["properties"]["unit_price_yuan"]["pattern"]
    assert set(schemas["PurchaseIn"]["required"]) == {"receipt_no", "payment_method", "lines"}
    assert "stored_value" in schemas["PurchaseIn"]["properties"]["payment_method"]["enum"]
    assert {"paid_total_fen", "paid_total_yuan", "points_earned", "points_balance"} \
        <= set(schemas["PurchaseOut"]["properties"])
    assert set(schemas["ErrorOut"]["properties"]) == {"error"}


def test_no_page_is_in_the_schema(app):
    paths = app.openapi_schema.paths
    assert all(p.startswith("/api/v1/") for p in paths)


# ---------------------------------------------------------------- admin page and CLI

def test_erin_issues_and_revokes_a_terminal_key(client, db):
    signed_in(client, "erin")
    page = client.get("/admin/terminals")
    assert page.status_code == 200
    r = client.post("/admin/terminals", data={"name": "Shop till", "unit": "755A",
                                              "_csrf": csrf_of(page.text)})
    assert r.status_code == 201, r.text[:500]
    (key,) = set(re.findall(r"vip_[A-Za-z0-9_-]{43}", r.text))
    with db.write() as s:
        assert terminals.authenticate(s, key).unit_path
    listing = client.get("/admin/terminals")
    assert key not in listing.text and key[:12] in listing.text and "Shop till" in listing.text
    tid = count(db, PosTerminal)
    r = client.post(f"/admin/terminals/{tid}/revoke", data={"reason": "", "_csrf": csrf_of(listing.text)},
                    follow_redirects=False)
    assert r.status_code == 400
    r = client.post(f"/admin/terminals/{tid}/revoke", data={"reason": "shop closed", "_csrf": csrf_of(listing.text)},
                    follow_redirects=False)
    assert r.status_code == 303
    with db.write() as s:
        assert terminals.authenticate(s, key) is None
    assert [e.actor_username for e in events(db, action="admin.terminals")] == ["erin", "erin"]


def test_the_issue_form_shows_errors_in_place(client, db):
    signed_in(client, "erin")
    page = client.get("/admin/terminals")
    r = client.post("/admin/terminals", data={"name": "", "unit": "755A", "_csrf": csrf_of(page.text)})
    assert r.status_code == 400 and "vip_" not in r.text and count(db, PosTerminal) == 0


def test_the_terminal_page_needs_csrf(client, db):
    signed_in(client, "erin")
    r = client.post("/admin/terminals", data={"name": "Till", "unit": "755A"})
    assert r.status_code == 403 and count(db, PosTerminal) == 0


@pytest.mark.parametrize("who", ["alice", "bob", "dave"])
def test_only_admins_manage_terminals(client, db, who):
    signed_in(client, who)
    assert client.get("/admin/terminals").status_code == 403


def test_cli_adds_lists_and_revokes_terminals(settings, db):
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file)}
    runner = CliRunner()
    r = runner.invoke(portal_cli, ["terminal", "add", "Kiosk", "--unit", "755B"], env=env)
    assert r.exit_code == 0, r.output
    key = [ln for ln in r.output.splitlines() if ln.startswith("vip_")][0]
    with db.write() as s:
        assert terminals.authenticate(s, key) is not None
    r = runner.invoke(portal_cli, ["terminal", "list"], env=env)
    assert r.exit_code == 0 and "Kiosk" in r.output and key[:12] in r.output and key not in r.output
    tid = count(db, PosTerminal)
    r = runner.invoke(portal_cli, ["terminal", "revoke", str(tid), "--reason", "kiosk removed"], env=env)
    assert r.exit_code == 0, r.output
    with db.write() as s:
        assert terminals.authenticate(s, key) is None
    r = runner.invoke(portal_cli, ["terminal", "revoke", str(tid), "--reason", "kiosk removed"], env=env)
    assert r.exit_code == 2 and "already revoked" in r.output
    r = runner.invoke(portal_cli, ["terminal", "add", "Kiosk", "--unit", "NOPE"], env=env)
    assert r.exit_code == 2 and "unit" in r.output


def test_old_stored_answers_can_be_purged(client, db, till, clock_at, settings):
    clock_at(NOON)
    client.post("/api/v1/purchases", json=sale(), headers=auth(till[1], "old"))
    clock_at(NOON + timedelta(days=40))
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file)}
    r = CliRunner().invoke(portal_cli, ["terminal", "purge-replies", "--days", "30"], env=env)
    assert r.exit_code == 0 and "forgot 1" in r.output, r.output
    assert count(db, ApiIdempotency) == 0 and count(db, Purchase) == 1


def test_wrong_pins_at_the_till_are_kept_and_lock_the_card(client, db, story, till, noon):
    """The till's path keeps each wrong PIN (while undoing the call): the sixth guess is refused
    unchecked, even with the right PIN, and no Idempotency-Key was used up."""
    number = enrol(db, story)
    alice = story.actor(db, "alice")
    with db.write() as s:
        cards.set_pin(s, alice, number, "246810")
        points.recharge_stored_value(s, alice, number, 10_000)
    body = {"card_number": number, "amount_yuan": "10.00", "pin": "246810"}
    for i in range(cards.PIN_TRIES):
        assert_error(client.post("/api/v1/stored-value/spend", json={**body, "pin": f"00000{i}"},
                                 headers=auth(till[1], f"guess-{i}")), 422, "pin.invalid", "pin")
    assert_error(client.post("/api/v1/stored-value/spend", json=body, headers=auth(till[1], "guess-0")),
                 409, "card.pin_locked")
    assert account_of(db, number).stored_value_fen == 10_000
