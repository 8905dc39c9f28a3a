"""Sales on credit: the catalogue, the limit and period rules (institutional vs individual, at and
over the limit, applications), delivery, payments, write-off and the liabilities it records."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from portal.catalogue import service as catalogue
from portal.credit import accounts, receivables, sales
from portal.credit.models import Liability, ReceivableEntry
from portal.credit.rules import CreditRefused, add_period, ageing_bucket, credit_class
from portal.customers.models import CustomerFile
from portal.customers.service import InvalidInput
from portal.policy import PermissionDenied

from .factories import customer_input


def at(y, m, d):
    return datetime(y, m, d, 4, tzinfo=timezone.utc)  # noon in Shanghai


def add_products(db, story):
    with db.write() as s:
        for code, name, price in (("MT53", "飞天茅台 53度 500ml", 149_900), ("WLY", "五粮液 52度 500ml", 99_900)):
            catalogue.add_version(s, story.actor(db, "erin"), catalogue.ProductInput(
                code=code, name=name, bottles_per_box=6, list_price_fen=price + 20_000, group_price_fen=price,
                active_from=date(2026, 3, 1)), today=date(2026, 3, 1))


@pytest.fixture
def shop(db, story, clock_at):
    clock_at(at(2026, 3, 1))
    add_products(db, story)
    clock_at(at(2026, 3, 10))
    return story


def grant(db, story, n=0, leader="bob", owner="alice"):
    fid = uuid.UUID(story.files[owner][n])
    with db.write() as s:
        accounts.grant_credit(s, story.actor(db, leader), fid, "long-standing client, pays on time")
    return fid


def sell(db, vault, story, fid, boxes, receipt, user="alice", **kw):
    with db.write() as s:
        order, _ = sales.sell_on_terms(s, vault, story.actor(db, user), sales.TermsSale(
            customer_id=fid, receipt_no=receipt, items=(sales.Item("MT53", boxes),), **kw))
        return order.id


# ---------------------------------------------------------------- pure rules

def test_institutional_categories_get_the_institutional_class():
    assert {credit_class(c) for c in ("government", "soe", "finance", "military_police", "enterprise")} == \
        {"institutional"}
    assert credit_class("individual") == "individual"


def test_due_dates_and_ageing():
    assert add_period(date(2026, 1, 31), 1, 0) == date(2026, 2, 28)
    assert add_period(date(2026, 3, 10), 0, 20) == date(2026, 3, 30)
    assert [ageing_bucket(date(2026, 3, 1), date(2026, 3, d)) for d in (1, 2, 31)] == ["not_due", "1-30", "1-30"]
    assert ageing_bucket(date(2026, 1, 1), date(2026, 4, 30)) == "90+"


# ---------------------------------------------------------------- the catalogue

def test_a_price_change_is_a_new_version_and_the_old_one_stays(db, story, shop, clock_at):
    with db.write() as s:
        catalogue.add_version(s, story.actor(db, "erin"), catalogue.ProductInput(
            code="mt53", name="飞天茅台 53度 500ml", bottles_per_box=6, list_price_fen=179_900,
            group_price_fen=159_900, active_from=date(2026, 4, 1)), today=date(2026, 3, 10))
    with db.read() as s:
        assert catalogue.product_on(s, "MT53", date(2026, 3, 31)).group_price_fen == 149_900
        assert catalogue.product_on(s, "MT53", date(2026, 4, 1)).group_price_fen == 159_900
    with pytest.raises(DBAPIError):
        with db.write() as s:
            s.execute(text("UPDATE product_version SET group_price_fen = 1"))


def test_alice_cannot_change_the_catalogue(db, story, shop):
    with pytest.raises(PermissionDenied):
        with db.write() as s:
            catalogue.add_version(s, story.actor(db, "alice"), catalogue.ProductInput(
                code="X1", name="x", bottles_per_box=6, list_price_fen=100, group_price_fen=100,
                active_from=date(2026, 3, 10)), today=date(2026, 3, 10))


# ---------------------------------------------------------------- limits and periods

def test_only_a_customer_granted_credit_may_buy_on_credit(db, vault, story, shop):
    fid = uuid.UUID(story.files["alice"][0])
    with pytest.raises(CreditRefused) as exc:
        sell(db, vault, story, fid, 1, "CR-0")
    assert exc.value.code == "credit.no_grant"


def test_alice_cannot_grant_credit_herself(db, story, shop):
    with pytest.raises(PermissionDenied):
        grant(db, story, leader="alice")


def test_an_individual_may_owe_five_boxes_and_not_six(db, vault, story, shop):
    fid = grant(db, story)
    sell(db, vault, story, fid, 3, "CR-1")
    sell(db, vault, story, fid, 2, "CR-2")  # exactly at the limit
    with pytest.raises(CreditRefused) as exc:
        sell(db, vault, story, fid, 1, "CR-3")
    assert exc.value.code == "credit.over_limit"
    assert "limit is 5 boxes, 5 are outstanding" in exc.value.message and "application" in exc.value.message


def test_an_institution_may_owe_ten_boxes_for_a_month(db, vault, story, shop):
    alice = story.actor(db, "alice")
    from portal.customers import service as customers
    with db.write() as s:
        f = customers.create_file(s, vault, alice, customer_input(40, category="soe"))
    fid = f.id
    with db.write() as s:
        g = accounts.grant_credit(s, story.actor(db, "bob"), fid, "state-owned client of many years")
        assert g.credit_class == "institutional"
    oid = sell(db, vault, story, fid, 10, "CR-I1")
    with pytest.raises(CreditRefused):
        sell(db, vault, story, fid, 1, "CR-I2")
    with db.write() as s:
        o = receivables.deliver(s, alice, oid)
        assert o.due_on == date(2026, 4, 10)


def test_a_longer_period_needs_an_application(db, vault, story, shop):
    fid = grant(db, story)
    with pytest.raises(CreditRefused) as exc:
        sell(db, vault, story, fid, 1, "CR-P1", extra_days=5)
    assert exc.value.code == "credit.over_period"


def test_an_approved_application_allows_one_order_over_the_limit(db, vault, story, shop):
    fid = grant(db, story)
    sell(db, vault, story, fid, 5, "CR-A1")
    with db.write() as s:
        app_id = accounts.apply_for_credit(s, story.actor(db, "alice"), fid, reason="banquet for a wedding",
                                           extra_boxes=3, extra_days=10).id
    with pytest.raises(InvalidInput):  # not approved yet
        sell(db, vault, story, fid, 3, "CR-A2", application_id=app_id)
    with db.write() as s:
        accounts.decide(s, story.actor(db, "bob"), app_id, approve=True)
    sell(db, vault, story, fid, 3, "CR-A2", application_id=app_id, extra_days=10)
    with pytest.raises(InvalidInput):  # used once
        sell(db, vault, story, fid, 1, "CR-A3", application_id=app_id)


def test_charlie_cannot_decide_and_bob_cannot_approve_his_own_application(db, vault, story, shop):
    fid = grant(db, story)
    with db.write() as s:
        app_id = accounts.apply_for_credit(s, story.actor(db, "bob"), fid, reason="bob asks himself",
                                           extra_boxes=1, extra_days=0).id
    for who in ("bob", "charlie", "alice"):
        with pytest.raises(PermissionDenied):
            with db.write() as s:
                accounts.decide(s, story.actor(db, who), app_id, approve=True)
    with db.write() as s:
        assert accounts.decide(s, story.actor(db, "grace"), app_id, approve=True).status == "approved"


def test_an_order_overdue_beyond_the_block_stops_credit(db, vault, story, shop, clock_at):
    fid = grant(db, story)
    oid = sell(db, vault, story, fid, 1, "CR-O1")
    with db.write() as s:
        receivables.deliver(s, story.actor(db, "alice"), oid)  # due 2026-03-30
    clock_at(at(2026, 5, 5))  # 36 days overdue
    with pytest.raises(CreditRefused) as exc:
        sell(db, vault, story, fid, 1, "CR-O2")
    assert exc.value.code == "credit.overdue"


# ---------------------------------------------------------------- the ledger and liability

def test_payments_settle_an_order_and_can_never_exceed_it(db, vault, story, shop):
    fid = grant(db, story)
    oid = sell(db, vault, story, fid, 1, "CR-L1")  # 6 bottles at ¥1,499
    alice = story.actor(db, "alice")
    with db.write() as s:
        assert receivables.deliver(s, alice, oid).balance_fen == 6 * 149_900
    with db.write() as s:
        receivables.record_payment(s, alice, oid, amount_fen=400_000, method="transfer")
    with pytest.raises(InvalidInput):
        with db.write() as s:
            receivables.record_payment(s, alice, oid, amount_fen=600_000, method="cash")
    with db.write() as s:
        receivables.record_payment(s, alice, oid, amount_fen=499_400, method="cash", received_by="bob")
    with db.read() as s:
        assert accounts.outstanding_boxes(s, fid) == 0
        assert sum(e.amount_fen for e in receivables.entries(s, oid)) == 0
    with pytest.raises(DBAPIError):
        with db.write() as s:
            s.execute(text("DELETE FROM receivable_entry"))


def test_a_write_off_makes_the_operator_liable_and_fines_the_line_leader(db, vault, story, shop):
    fid = grant(db, story)
    oid = sell(db, vault, story, fid, 1, "CR-W1")
    with db.write() as s:
        receivables.deliver(s, story.actor(db, "alice"), oid)
        receivables.record_payment(s, story.actor(db, "alice"), oid, amount_fen=99_400, method="cash")
    with pytest.raises(PermissionDenied):
        with db.write() as s:
            receivables.write_off(s, story.actor(db, "alice"), oid, reason="the customer cannot be found")
    with db.write() as s:
        receivables.write_off(s, story.actor(db, "bob"), oid, reason="the customer cannot be found")
    with db.read() as s:
        rows = {(li.person_id, li.role, li.amount_fen) for li in s.scalars(select(Liability))}
    assert rows == {(story.users["alice"], "operator", 800_000), (story.users["bob"], "line_leader", 80_000)}


# ---------------------------------------------------------------- the overdue board

def test_the_prebuilt_board_reads_what_the_scoped_orm_query_read(db, vault, story, shop, clock_at):
    """credit.board runs one statement per scope shape on the driver; for every user, with and
    without the overdue filter, its rows are those of the ORM query over customer_scope (the
    command line's path), in the same order and with the same values."""
    from portal.credit import board as credit_board
    from portal.credit.models import CreditOrder
    from portal.policy import Action, customer_scope
    alice_fid, other_fid = grant(db, story), grant(db, story, n=1)
    orders = [sell(db, vault, story, alice_fid, 1, "CR-B1"), sell(db, vault, story, alice_fid, 1, "CR-B2"),
              sell(db, vault, story, other_fid, 1, "CR-B3")]
    paid = sell(db, vault, story, alice_fid, 1, "CR-B4")
    with db.write() as s:
        receivables.deliver(s, story.actor(db, "alice"), orders[0])  # due 2026-03-30
        settled = receivables.deliver(s, story.actor(db, "alice"), paid)
    with db.write() as s:  # paid in full: off the board
        receivables.record_payment(s, story.actor(db, "alice"), paid, amount_fen=settled.balance_fen, method="cash")
    clock_at(at(2026, 4, 25))
    with db.write() as s:
        receivables.deliver(s, story.actor(db, "alice"), orders[2])  # due 2026-05-15; CR-B2 never delivered
    clock_at(at(2026, 5, 5))
    today = date(2026, 5, 5)
    seen = set()
    for user in ("alice", "bob", "charlie", "grace", "henry", "cathy", "frank"):
        actor = story.actor(db, user)
        for overdue_only in (False, True):
            with db.read() as s:
                ours = credit_board.board(s, actor, today, overdue_only=overdue_only, audit_it=False).rows
                q = (select(CreditOrder, CustomerFile.file_no).join(CustomerFile, CustomerFile.id == CreditOrder.customer_id)
                     .where(CreditOrder.settled_at.is_(None), customer_scope(actor, Action.RECEIVABLE_BOARD))
                     .order_by(CreditOrder.due_on.is_(None), CreditOrder.due_on, CreditOrder.id))
                if overdue_only:
                    q = q.where(CreditOrder.due_on < today)
                theirs = credit_board._rows(s, q, today)
            assert ours == theirs, (user, overdue_only)
            seen.update(r.id for r in ours)
    assert seen == set(orders)
    with db.read() as s:
        rows = credit_board.board(s, story.actor(db, "bob"), today, audit_it=False).rows
    assert [r.receipt_no for r in rows][-1] == "CR-B2" and rows[-1].due_on is None  # not delivered: last
    assert rows[0].days_overdue > 0 and rows[0].operator == "alice" and rows[0].bucket != "not_due"
    assert rows[1].receipt_no == "CR-B3" and (rows[1].days_overdue, rows[1].bucket) == (0, "not_due")
