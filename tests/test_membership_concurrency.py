"""Concurrent use of one member's ledgers, on whichever database the suite runs (SQLite, or
PostgreSQL with PORTAL_TEST_DATABASE_URL): threads (and processes) race for the same points, the
same stored value, the same customer's first purchase and the same card-number sequence.

SQLite lets one writer in at a time; on PostgreSQL the row locks serialise: the card account
(SELECT ... FOR UPDATE) for ledgers, the customer file for purchases by file, the sequence row
for card numbers. Either way the outcome must be the same as if the requests came one by one.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from portal import clock
from portal.customers import service as customers
from portal.customers.models import CustomerFile
from portal.db import Database
from portal.membership import cards, ledger, members, points, purchases
from portal.membership.models import (CardAccount, MemberCard, Membership, PointsEntryRow, Purchase,
                                      StoredValueEntryRow)
from portal.membership.outcomes import PurchaseRequest
from portal.membership.rules import PurchaseLine

from .concurrency import race
from .factories import customer_input

THREADS = 8
ON_POSTGRES = bool(os.environ.get("PORTAL_TEST_DATABASE_URL"))


def at(y, m, d, h=4):
    return datetime(y, m, d, h, tzinfo=timezone.utc)  # noon in Shanghai




def enrolled(db, story, owner="alice", i=0):
    fid = uuid.UUID(story.files[owner][i])
    with db.write() as s:
        m = members.enrol(s, story.actor(db, owner), fid, cause="application")
        account = members.primary_account(s, m)
        return fid, account.id, members.current_card(s, account.id).number


def buy(db, vault, actor, receipt, yuan, **kw):
    req = PurchaseRequest(receipt_no=receipt, lines=(PurchaseLine("茅台", 1, yuan * 100),),
                          payment_method="cash", **kw)
    with db.write() as s:
        return purchases.record_purchase(s, vault, actor, req)


def ledger_sums(db, account_id):
    with db.read() as s:
        account = s.get(CardAccount, account_id)
        pts = s.scalar(select(func.coalesce(func.sum(PointsEntryRow.points), 0))
                       .where(PointsEntryRow.account_id == account_id))
        sv = s.scalar(select(func.coalesce(func.sum(StoredValueEntryRow.amount_fen), 0))
                      .where(StoredValueEntryRow.account_id == account_id))
        return account.points_balance, int(pts), account.stored_value_fen, int(sv)


def unexpected(results, *expected_types):
    return [exc for kind, exc in results if kind == "error" and not isinstance(exc, expected_types)]


# ---------------------------------------------------------------- points

@pytest.mark.parametrize("own_database", [False, True], ids=["shared-engine", "engine-per-thread"])
def test_simultaneous_redemptions_never_overdraw(db, vault, story, clock_at, own_database):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    _, account_id, number = enrolled(db, story)
    buy(db, vault, alice, "R-C1", 3_500, card_number=number)  # 3,500 points: three ¥100 gifts
    clock_at(at(2026, 3, 11))
    engines = [Database(db.url) if own_database else db for _ in range(THREADS)]

    def redeem(i):
        with engines[i].write() as s:
            return points.redeem_points(s, alice, number, "gift-100")

    try:
        results = race(THREADS, redeem)
    finally:
        for e in engines:
            if e is not db:
                e.dispose()
    assert not unexpected(results, ledger.InsufficientPoints)
    assert sum(kind == "ok" for kind, _ in results) == 3
    assert sum(isinstance(r, ledger.InsufficientPoints) for _, r in results) == THREADS - 3
    balance, entries, _, _ = ledger_sums(db, account_id)
    assert balance == entries == 500


def test_redemptions_racing_purchases_by_file_keep_the_cached_balance_true(db, vault, story, clock_at):
    """Purchases by file (the account is found through the file, then locked) and redemptions by
    card (the account is locked first) interleave; the balance is the sum of the entries."""
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    fid, account_id, number = enrolled(db, story)
    buy(db, vault, alice, "R-C2", 4_000, card_number=number)
    clock_at(at(2026, 3, 11))

    def work(i):
        if i % 2:
            with db.write() as s:
                return points.redeem_points(s, alice, number, "gift-100")
        return buy(db, vault, alice, f"R-C2-{i}", 100, customer_id=fid)

    results = race(THREADS, work)
    assert not unexpected(results)
    balance, entries, _, _ = ledger_sums(db, account_id)
    assert balance == entries == 4_000 - 4 * 1_000 + 4 * 100


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite lets one writer in at a time: two write transactions cannot interleave")
def test_a_lock_taken_after_reading_the_account_sees_the_committed_balance(db, vault, story, clock_at):
    """A purchase by file reads the account, then locks it; a redemption committed in between must
    not be overwritten by the stale balance the purchase read first."""
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    fid, account_id, number = enrolled(db, story)
    buy(db, vault, alice, "R-C3", 3_500, card_number=number)
    clock_at(at(2026, 3, 11))
    with db.write() as s:
        # Read (not locked) before the other transaction commits, and held, as the purchase does.
        held = s.get(CardAccount, account_id)
        assert held.points_balance == 3_500
        other = race(1, lambda i: _redeem(db, alice, number))
        assert other[0][0] == "ok", other
        purchases.record_purchase(s, vault, alice, PurchaseRequest(
            receipt_no="R-C3-2", lines=(PurchaseLine("茅台", 1, 10_000),), payment_method="cash",
            customer_id=fid))
    balance, entries, _, _ = ledger_sums(db, account_id)
    assert balance == entries == 3_500 - 1_000 + 100


def _redeem(db, actor, number):
    with db.write() as s:
        points.redeem_points(s, actor, number, "gift-100")


# ---------------------------------------------------------------- stored value

def test_simultaneous_stored_value_spends_never_overdraw(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    _, account_id, number = enrolled(db, story)
    with db.write() as s:
        points.recharge_stored_value(s, alice, number, 10_000)
        cards.set_pin(s, alice, number, "246810")

    def spend(i):
        with db.write() as s:
            return points.spend_stored_value(s, vault, alice, number, 3_000, pin="246810", ref=f"S-{i}")

    results = race(THREADS, spend)
    assert not unexpected(results, ledger.InsufficientStoredValue)
    assert sum(kind == "ok" for kind, _ in results) == 3
    assert sum(isinstance(r, ledger.InsufficientStoredValue) for _, r in results) == THREADS - 3
    _, _, balance, entries = ledger_sums(db, account_id)
    assert balance == entries == 1_000


# ---------------------------------------------------------------- joining

def _membership_rows(db, fid):
    with db.read() as s:
        ms = list(s.scalars(select(Membership).where(Membership.customer_id == fid)))
        accounts = list(s.scalars(select(CardAccount).where(CardAccount.membership_id.in_([m.id for m in ms]))))
        cards_ = list(s.scalars(select(MemberCard).where(MemberCard.account_id.in_([a.id for a in accounts]))))
        bought = s.scalar(select(func.count()).select_from(Purchase).where(Purchase.customer_id == fid))
    return ms, accounts, cards_, bought


def test_simultaneous_first_purchases_make_one_membership_and_one_card(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    fid = uuid.UUID(story.files["alice"][2])
    results = race(THREADS, lambda i: buy(db, vault, alice, f"R-J{i}", 700, customer_id=fid))
    assert not unexpected(results)
    outcomes = [r for _, r in results]
    assert sum(o.joined for o in outcomes) == 1
    ms, accounts, cards_, bought = _membership_rows(db, fid)
    assert len(ms) == 1 and len(accounts) == 1 and len(cards_) == 1 and bought == THREADS
    # The purchases after the joining one were member purchases: 1 point per yuan.
    assert sorted(o.points_earned for o in outcomes) == [0] + [700] * (THREADS - 1)
    assert ledger_sums(db, accounts[0].id)[:2] == (700 * (THREADS - 1),) * 2


def test_simultaneous_small_purchases_join_once_the_cumulative_spend_is_reached(db, vault, story, clock_at):
    """8 x ¥130 = ¥1,040: the purchase that takes the 12-month spend past ¥1,000 joins, once."""
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    fid = uuid.UUID(story.files["alice"][1])
    results = race(THREADS, lambda i: buy(db, vault, alice, f"R-K{i}", 130, customer_id=fid))
    assert not unexpected(results)
    assert sum(r.joined for _, r in results) == 1
    ms, accounts, cards_, bought = _membership_rows(db, fid)
    assert len(ms) == 1 and ms[0].join_cause == "cumulative" and len(cards_) == 1 and bought == THREADS


# ---------------------------------------------------------------- card numbers

def test_simultaneous_card_issues_get_distinct_numbers(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    with db.write() as s:
        fids = [customers.create_file(s, vault, alice, customer_input(200 + i)).id for i in range(THREADS)]

    def enrol(i):
        with db.write() as s:
            m = members.enrol(s, alice, fids[i], cause="application")
            return members.current_card(s, members.primary_account(s, m).id).number

    results = race(THREADS, enrol)
    assert not unexpected(results)
    numbers = [r for _, r in results]
    assert len(set(numbers)) == THREADS
    seqs = sorted(int(n.split()[1]) for n in numbers)
    assert seqs == list(range(seqs[0], seqs[0] + THREADS))  # none skipped, none reused

    # Replacements (new numbers on existing accounts) race with new issues on the same sequence.
    def replace_or_issue(i):
        with db.write() as s:
            if i % 2:
                return cards.replace(s, alice, numbers[i], "card damaged at the till").number
            f = s.get(CustomerFile, fids[i])
            m = members.membership_of(s, f.id)
            return members.issue_card(s, alice, m, f, card_type="dining")[1].number

    again = race(THREADS, replace_or_issue)
    assert not unexpected(again)
    assert len({r for _, r in again} | set(numbers)) == 2 * THREADS


# ---------------------------------------------------------------- processes

REDEEMER = """
import sys, time
from sqlalchemy import select
from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.db import Database
from portal.membership import ledger, points
from portal.org.models import OrgUnit

url, number, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
db = Database(url)
with db.read() as s:
    u = s.scalar(select(User).where(User.username == "alice"))
    actor = accounts.actor_for(u, s.get(OrgUnit, u.unit_id))
time.sleep(max(0.0, start - time.time()))
try:
    with db.write() as s:
        points.redeem_points(s, actor, number, "gift-100")
    print("ok")
except ledger.InsufficientPoints:
    print("insufficient")
finally:
    db.dispose()
"""


def test_redemptions_from_several_processes_never_overdraw(db, vault, story, clock_at):
    processes = 6
    # Points credited the day before (real time: the processes run on the real clock).
    clock_at(datetime.now(timezone.utc) - timedelta(days=2))
    alice = story.actor(db, "alice")
    _, account_id, number = enrolled(db, story)
    buy(db, vault, alice, "R-P1", 2_500, card_number=number)
    clock.set_now(None)
    db.dispose()
    start = time.time() + 4
    procs = [subprocess.Popen([sys.executable, "-c", REDEEMER, db.url, number, str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(processes)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        outs.append(out.strip())
    assert sorted(outs) == ["insufficient"] * (processes - 2) + ["ok"] * 2
    balance, entries, _, _ = ledger_sums(db, account_id)
    assert balance == entries == 500


# ---------------------------------------------------------------- the daily job and the till

def test_the_daily_job_and_a_purchase_on_the_same_member_do_not_deadlock(db, vault, story, clock_at,
                                                                          monkeypatch):
    """A purchase locks the card account, then writes rows that reference the membership (on
    PostgreSQL a foreign key takes a KEY SHARE lock on it) and updates it (last purchase date).
    The daily job must lock in the same order, account then membership, else each waits for the
    other and PostgreSQL aborts one. The interleaving is forced: the purchase holds the account
    while the job starts, and waits (briefly) for the job to get going."""
    from portal.membership import jobs

    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    _, account_id, number = enrolled(db, story)
    buy(db, vault, alice, "R-D1", 500, card_number=number)
    clock_at(at(2026, 3, 12))
    till_has_account, job_started = threading.Event(), threading.Event()
    original_price, original_expire = purchases.price_purchase, jobs.expire_account

    def price_once_the_job_has_started(*a, **kw):  # the purchase holds the account lock here
        till_has_account.set()
        job_started.wait(3)
        return original_price(*a, **kw)

    def expire_when_the_till_is_busy(*a, **kw):  # the job holds whatever it locked first here
        job_started.set()
        return original_expire(*a, **kw)

    monkeypatch.setattr(purchases, "price_purchase", price_once_the_job_has_started)
    monkeypatch.setattr(jobs, "expire_account", expire_when_the_till_is_busy)

    def work(i):
        if i == 0:
            return buy(db, vault, alice, "R-D2", 100, card_number=number)
        till_has_account.wait(10)
        return jobs.run_daily(db, date(2026, 3, 12))

    results = race(2, work)
    assert not unexpected(results)
    assert results[0][1].points_earned == 100
    assert results[1][1].failures == [] and results[1][1].members >= 1
    balance, entries, _, _ = ledger_sums(db, account_id)
    assert balance == entries == 600
