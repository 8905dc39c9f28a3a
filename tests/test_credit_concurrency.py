"""The credit limit holds under concurrency, on whichever database the suite runs: threads and
processes sell on credit to one customer at the same moment; together they never exceed the
limit (the customer's grant row is locked on PostgreSQL; SQLite lets one writer in at a time)."""
from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from portal import clock
from portal.credit import sales
from portal.credit.models import CreditOrder
from portal.credit.rules import CreditRefused
from portal.db import Database

from .concurrency import race
from .test_credit import add_products, at, grant

THREADS = 8


def boxes_owed(db, fid):
    with db.read() as s:
        return s.scalar(select(func.coalesce(func.sum(CreditOrder.boxes), 0)).where(CreditOrder.customer_id == fid))


def test_simultaneous_credit_sales_never_exceed_the_limit(db, vault, story, clock_at):
    clock_at(at(2026, 3, 1))
    add_products(db, story)
    clock_at(at(2026, 3, 10))
    fid = grant(db, story)
    alice = story.actor(db, "alice")
    engines = [Database(db.url) for _ in range(THREADS)]

    def sell(i):
        with engines[i].write() as s:
            return sales.sell_on_terms(s, vault, alice, sales.TermsSale(
                customer_id=fid, receipt_no=f"CC-{i}", items=(sales.Item("MT53", 1),)))[0].id

    try:
        results = race(THREADS, sell)
    finally:
        for e in engines:
            e.dispose()
    assert [r for kind, r in results if kind == "error" and not isinstance(r, CreditRefused)] == []
    assert sum(kind == "ok" for kind, _ in results) == 5
    assert boxes_owed(db, fid) == 5


SELLER = """
import sys, time, uuid
from sqlalchemy import select
from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.credit import sales
from portal.credit.rules import CreditRefused
from portal.db import Database
from portal.org.models import OrgUnit
from portal.vault import KeyRing, Vault

url, key_file, fid, receipt, start = sys.argv[1], sys.argv[2], uuid.UUID(sys.argv[3]), sys.argv[4], float(sys.argv[5])
db = Database(url)
vault = Vault(KeyRing.load(key_file))
with db.read() as s:
    u = s.scalar(select(User).where(User.username == "alice"))
    actor = accounts.actor_for(u, s.get(OrgUnit, u.unit_id))
time.sleep(max(0.0, start - time.time()))
try:
    with db.write() as s:
        sales.sell_on_terms(s, vault, actor, sales.TermsSale(customer_id=fid, receipt_no=receipt,
                                                             items=(sales.Item("MT53", 2),)))
    print("ok")
except CreditRefused:
    print("refused")
finally:
    db.dispose()
"""


def test_credit_sales_from_several_processes_never_exceed_the_limit(db, story, settings, clock_at):
    processes = 5
    clock_at(datetime.now(timezone.utc) - timedelta(days=30))
    add_products(db, story)
    fid = grant(db, story)
    clock.set_now(None)
    db.dispose()
    start = time.time() + 4
    procs = [subprocess.Popen([sys.executable, "-c", SELLER, db.url, str(settings.key_file), str(fid), f"CP-{i}",
                               str(start)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(processes)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        outs.append(out.strip())
    assert sorted(outs) == ["ok"] * 2 + ["refused"] * (processes - 2)
    assert boxes_owed(db, fid) == 4
