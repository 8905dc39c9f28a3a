"""Settling liabilities (seed 000): a leader above the person records what was paid back, in parts
if need be, as append-only settlements; the report and its exports show settled and outstanding."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from portal.credit import liabilities, receivables
from portal.credit.models import Liability, LiabilitySettlement
from portal.customers.service import InvalidInput
from portal.policy import Action, PermissionDenied

from .browser import post, signed_in
from .test_credit import grant, sell, shop  # noqa: F401 - the fixture

ALICE_OWES, BOB_FINE = 6 * 149_900, 6 * 149_900 // 10  # one box written off; the line leader's 10 %


def written_off(db, vault, story) -> dict[str, int]:
    """alice's client's order of one box, delivered and written off by bob: {role: liability id}."""
    fid = grant(db, story)
    oid = sell(db, vault, story, fid, 1, "CR-S1")
    with db.write() as s:
        receivables.deliver(s, story.actor(db, "alice"), oid)
    with db.write() as s:
        return {li.role: li.id for li in receivables.write_off(s, story.actor(db, "bob"), oid,
                                                               reason="the customer cannot be found")}


def settle(db, story, user, liability_id, amount, **kw):
    kw.setdefault("paid_on", date(2026, 3, 10))
    kw.setdefault("method", "payroll")
    with db.write() as s:
        return liabilities.settle(s, story.actor(db, user), liability_id, amount_fen=amount, **kw)


def test_bob_settles_alices_liability_in_two_parts(db, vault, story, shop):
    ids = written_off(db, vault, story)
    settle(db, story, "bob", ids["operator"], 400_000, note="first month's deduction")
    with db.read() as s:
        li = s.get(Liability, ids["operator"])
        assert (li.settled_fen, li.settled_at) == (400_000, None)
    settle(db, story, "bob", ids["operator"], ALICE_OWES - 400_000, method="transfer")
    with db.read() as s:
        li = s.get(Liability, ids["operator"])
        assert li.settled_fen == ALICE_OWES and li.settled_at is not None
        assert li.settled_by_id == story.users["bob"]
        assert [r.amount_fen for r in s.scalars(select(LiabilitySettlement).order_by(LiabilitySettlement.id))] == \
            [400_000, ALICE_OWES - 400_000]
    with pytest.raises(InvalidInput) as exc:
        settle(db, story, "bob", ids["operator"], 1)
    assert exc.value.errors == {"_form": "This liability is settled: nothing is outstanding."}
    for sql in ("UPDATE liability_settlement SET amount_fen = 1", "DELETE FROM liability_settlement"):
        with pytest.raises(DBAPIError):  # settlements are records: never changed
            with db.write() as s:
                s.execute(text(sql))
    with pytest.raises(DBAPIError):  # and the cached sum never passes the amount
        with db.write() as s:
            s.execute(text(f"UPDATE liability SET settled_fen = amount_fen + 1 WHERE id = {ids['operator']}"))


def test_a_bad_settlement_is_refused_at_its_fields_and_nothing_is_written(db, vault, story, shop):
    ids = written_off(db, vault, story)
    with pytest.raises(InvalidInput) as exc:
        settle(db, story, "bob", ids["operator"], ALICE_OWES + 1, paid_on=date(2026, 3, 11), method="cheque",
               note="x" * 501)
    assert set(exc.value.errors) == {"amount", "paid_on", "method", "note"}
    with pytest.raises(InvalidInput) as exc:
        settle(db, story, "bob", ids["operator"], 100, paid_on=date(2026, 3, 9))  # before the write-off
    assert set(exc.value.errors) == {"paid_on"}
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(LiabilitySettlement)) == 0
        assert s.get(Liability, ids["operator"]).settled_fen == 0


@pytest.mark.parametrize("user", ["alice", "bob", "charlie", "henry", "dave", "erin"])
def test_no_one_settles_a_liability_but_a_leader_above_the_person(db, vault, story, shop, user):
    """bob's own fine is settled by grace (above him), never by bob; alice never settles her own."""
    ids = written_off(db, vault, story)
    target = ids["operator"] if user == "alice" else ids["line_leader"]
    with pytest.raises(PermissionDenied):
        settle(db, story, user, target, 100)
    settle(db, story, "grace", ids["line_leader"], BOB_FINE, method="cash")
    with db.read() as s:
        assert s.get(Liability, ids["line_leader"]).settled_at is not None


def test_the_report_and_its_exports_show_settled_and_outstanding(db, vault, story, shop):
    ids = written_off(db, vault, story)
    settle(db, story, "bob", ids["operator"], 100_000)
    settle(db, story, "grace", ids["line_leader"], BOB_FINE)
    grace = story.actor(db, "grace")
    with db.write() as s:
        rows = {r.role: r for r in liabilities.liabilities(s, grace, Action.LIABILITY_VIEW)}
        unsettled = liabilities.liabilities(s, grace, Action.LIABILITY_VIEW, open_only=True)
        totals = liabilities.totals_per_person(list(rows.values()))
        body, n = liabilities.export_liabilities(s, grace, "csv")
    assert (rows["operator"].status, rows["operator"].outstanding_fen) == ("part", ALICE_OWES - 100_000)
    assert (rows["line_leader"].status, rows["line_leader"].outstanding_fen) == ("settled", 0)
    assert [r.role for r in unsettled] == ["operator"]
    assert totals == [("alice", ALICE_OWES, 0, 100_000, ALICE_OWES - 100_000), ("bob", 0, BOB_FINE, BOB_FINE, 0)]
    table = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert n == 2 and {(r["role"], r["settled"], r["settled_yuan"], r["outstanding_yuan"]) for r in table} == {
        ("operator", "part", "1000.00", f"{(ALICE_OWES - 100_000) / 100:.2f}"),
        ("line_leader", "yes", f"{BOB_FINE / 100:.2f}", "0.00")}


def test_bob_records_a_settlement_on_the_liability_page_and_a_bad_amount_is_refused(client, db, vault, story,
                                                                                    shop):
    ids = written_off(db, vault, story)
    client.headers["Accept-Language"] = "en"
    signed_in(client, "bob")
    page = f"/liabilities/{ids['operator']}"
    r = client.get(page)
    assert r.status_code == 200 and 'data-testid="settle"' in r.text and "Nothing paid back yet." in r.text
    own = client.get(f"/liabilities/{ids['line_leader']}")  # bob sees his own fine, but may not settle it
    assert own.status_code == 200 and 'data-testid="settle"' not in own.text
    bad = post(client, page + "/settlements", {"amount": "12.345", "paid_on": "2026-03-10", "method": "payroll"},
               from_page=page)
    assert bad.status_code == 400 and 'data-error="amount"' in bad.text
    ok = post(client, page + "/settlements", {"amount": "1,000", "paid_on": "2026-03-10", "method": "payroll",
                                              "note": "deducted from March pay"}, from_page=page)
    assert ok.status_code == 303 and ok.headers["location"] == page
    r = client.get(page)
    assert "deducted from March pay" in r.text and "partly settled" in r.text
    assert "partly settled" in client.get("/liabilities?unsettled=1").text
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(LiabilitySettlement)) == 1
