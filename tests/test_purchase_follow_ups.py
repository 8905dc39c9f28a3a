"""The large purchases' follow-ups (purchase_follow_up, service/follow_ups.py): the visits due list
read from them gives what the search over every purchase gave (kept below as the reference),
on random data (members, owners, units, grants, purchases above and below the threshold, visits,
returns, changed totals, claims, reassignments, threshold changes over time); the migration's
backfill writes the same rows as the portal's rebuild; deleting a purchase deletes its row."""
from __future__ import annotations

import importlib.util
import random
import uuid
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Date, Integer, delete, exists, or_, select, update

from portal import clock
from portal.access.models import AccessRequest
from portal.accounts.actor import Actor
from portal.customers import service as customers
from portal.customers.models import CustomerFile
from portal.membership import members as membership
from portal.membership.models import Membership, Purchase, PurchaseFollowUp, PurchaseLineRow
from portal.membership.rules import PROGRAMME_TZ, programme_today
from portal.policy import scope as policy_scope
from portal.policy.actions import Relation
from portal.service import due, follow_ups, settings
from portal.service.models import MemberVisit
from portal.sql_hints import no_index

from .factories import customer_input

OWNERS_755 = ("alice", "bob", "charlie")  # grace (leader of 755) moves files between them
READERS = ("alice", "bob", "charlie", "grace", "henry", "frank")


# ------------------------------------------------------------- the reference: the search it replaces

def reference_purchases_sql(shape):
    """Every large purchase in the window found by amount, each checked against the reader's scope
    (service/due.py before purchase_follow_up; the purchase id breaks ties of day and file number)."""
    arms = due._scope(shape, owner=no_index(CustomerFile.owner_id), unit_path=no_index(CustomerFile.unit_path),
                      file_id=CustomerFile.id)
    day = no_index(Purchase.purchased_on)
    q = (select(Purchase.customer_id, CustomerFile.file_no, Membership.tier, Purchase.id, Purchase.purchased_on)
         .join(CustomerFile, CustomerFile.id == Purchase.customer_id)
         .outerjoin(Membership, Membership.customer_id == Purchase.customer_id)
         .where(or_(*arms) if arms else due.false(), Purchase.status == "complete",
                Purchase.paid_total_fen >= due._bind("min_fen", Integer),
                day >= due._bind("from_day", Date), day <= due._bind("to_day", Date),
                ~exists().where(MemberVisit.purchase_id == Purchase.id)))
    return due._follow_up(shape, q, (day, CustomerFile.file_no, Purchase.id), Purchase.customer_id)


def reference_due_visits(s, actor, *, today, ahead_days=14, customer_id=None, limit=300):
    """due_visits as it was (less its audit entry): every follow-up due by then read in full."""
    until = today + timedelta(days=ahead_days)
    r = due._Reader(s, actor, today)
    every, follow = dict(r.every), timedelta(days=r.st.follow_up_days)
    if customer_id is None:
        members = r.scheduled(until, limit)
        complaints, purchases = r.follow_ups("", today, until, limit, {})
    else:
        one = {"customer": customer_id}
        members = [] if r.empty or not every else r.run("member", one)
        members = [(cid, file_no, tier, base + timedelta(days=every[tier])) for cid, file_no, tier, base in members
                   if tier in every and base is not None and base + timedelta(days=every[tier]) <= until]
        complaints, purchases = r.follow_ups("_member", today, until, limit, one)
    out = [due.DueVisit(cid, file_no, tier, "schedule", None, due_on) for cid, file_no, tier, due_on in members]
    out += [due.DueVisit(cid, file_no, tier or "", "complaint", ref, closed_at.astimezone(PROGRAMME_TZ).date() + follow)
            for cid, file_no, tier, ref, closed_at in complaints]
    out += [due.DueVisit(cid, file_no, tier or "", "purchase", ref, on + follow)
            for cid, file_no, tier, ref, on in purchases]
    out.sort(key=lambda v: (v.due_on, v.file_no))
    return out[:limit]


def _answers(db, story, who, today, members, due_visits):
    """Every reading of the list and the count that the pages make, for one reader."""
    actor = story.actor(db, who)
    out = []
    with db.write() as s:
        for ahead in (0, 14, 40):
            for limit in (*range(1, 13), 300):
                out.append(due_visits(s, actor, today=today, ahead_days=ahead, limit=limit))
        for fid in members:
            out.append(due_visits(s, actor, today=today, customer_id=fid))
        for cap in (1, 3, 100):
            out.append(due.due_count(s, actor, today, cap=cap))
    return out


def _both(db, story, monkeypatch, today, members, readers=READERS) -> dict:
    """{reader: (answers read from the follow-ups, answers of the reference)}."""
    out = {}
    for who in readers:
        due._STATEMENTS.clear()
        new = _answers(db, story, who, today, members, due.due_visits)
        with monkeypatch.context() as m:
            m.setattr(due, "_purchases_sql", reference_purchases_sql)
            due._STATEMENTS.clear()
            old = _answers(db, story, who, today, members, reference_due_visits)
        due._STATEMENTS.clear()
        out[who] = (new, old)
    return out


def _assert_same(db, story, monkeypatch, today, members, readers=READERS):
    shown = 0
    for who, (new, old) in _both(db, story, monkeypatch, today, members, readers).items():
        assert new == old, who
        shown += sum(1 for page in new if isinstance(page, list) for v in page if v.reason == "purchase")
    return shown


# ------------------------------------------------------------- random data

class World:
    def __init__(self, db, vault, story, clock_at, rnd: random.Random):
        self.db, self.vault, self.story, self.rnd = db, vault, story, rnd
        self.set_clock = clock_at
        self.files: list[uuid.UUID] = [uuid.UUID(f) for fs in story.files.values() for f in fs]
        self.purchases: list[int] = []
        self.receipts = 0

    def at(self, day):
        self.day = day
        self.set_clock(datetime.combine(day, time(10), PROGRAMME_TZ))

    def add_files(self, n):
        for i in range(n):
            owner = self.rnd.choice(("alice", "charlie", "frank", "bob"))
            with self.db.write() as s:
                f = customers.create_file(s, self.vault, self.story.actor(self.db, owner),
                                          customer_input(100 + len(self.files) + i, id_number=None))
                self.files.append(f.id)

    def enrol_some(self, share):
        for fid in self.files:
            if self.rnd.random() < share:
                with self.db.write() as s:
                    if s.scalar(select(Membership.id).where(Membership.customer_id == fid)) is None:
                        m = membership.enrol(s, Actor.system("test"), fid, cause="import")
                        m.tier = self.rnd.choice(("regular", "silver", "gold", "platinum"))

    def purchase(self, fid, fen, day, status="complete"):
        self.receipts += 1
        with self.db.write() as s:
            p = Purchase(receipt_no=f"R-{self.receipts}", customer_id=fid, purchased_on=day, payment_method="cash",
                         list_total_fen=fen, discount_total_fen=0, paid_total_fen=fen, rate_per_mille=1000,
                         discount_reason="none", status=status, created_at=clock.now())
            s.add(p)
            s.flush()
            self.purchases.append(p.id)
            return p.id

    def buy(self, n):
        for _ in range(n):
            fid = self.rnd.choice(self.files) if self.rnd.random() > 0.1 else None  # some without a card
            fen = self.rnd.choice((300_000, 700_000, 900_000, 1_000_000, 1_200_000, 2_500_000))
            day = self.day - timedelta(days=self.rnd.randint(0, 100))
            self.purchase(fid, fen, day, "complete" if self.rnd.random() > 0.05 else "returned")

    def due_with_the_schedule(self, n):
        """Large purchases falling due the day a member's scheduled visit does (ties at a list's end)."""
        every = {"silver": 182, "gold": 91, "platinum": 30}
        with self.db.read() as s:
            bases = s.execute(select(Membership.customer_id, Membership.tier, Membership.visit_base_on)
                              .where(Membership.tier.in_(list(every)))).all()
        days = [(fid, base + timedelta(days=every[tier] - 7)) for fid, tier, base in bases]
        days = [(fid, d) for fid, d in days if self.day - timedelta(days=60) <= d <= self.day]
        for fid, day in self.rnd.sample(days, min(n, len(days))):
            other = self.rnd.choice(self.files)  # another member's, or the same one's
            self.purchase(other if self.rnd.random() < 0.7 else fid, 1_500_000, day)

    def change_some(self, n):
        """Returns, changed totals and claims through the ORM; a few returns behind its back."""
        for pid in self.rnd.sample(self.purchases, min(n, len(self.purchases))):
            with self.db.write() as s:
                p = s.get(Purchase, pid)
                what = self.rnd.random()
                if p.customer_id is None:
                    p.customer_id = self.rnd.choice(self.files)  # a claim
                elif what < 0.3:
                    p.status = "returned"
                elif what < 0.6:
                    p.paid_total_fen = self.rnd.choice((500_000, 950_000, 1_500_000))

    def change_behind_its_back(self, n):
        """Statements the listeners never see: the list still reads each purchase it shows."""
        with self.db.write() as s:
            large = list(s.scalars(select(Purchase.id).where(
                Purchase.status == "complete", Purchase.paid_total_fen >= 1_000_000,
                Purchase.customer_id.is_not(None), Purchase.purchased_on >= self.day - timedelta(days=60))))
            for i, pid in enumerate(self.rnd.sample(large, min(n, len(large)))):
                values = {"status": "returned"} if i % 2 else {"paid_total_fen": 400_000}
                s.execute(update(Purchase).where(Purchase.id == pid).values(**values))

    def visit_some(self, n):
        bob = self.story.users["bob"]
        with self.db.write() as s:
            for pid in self.rnd.sample(self.purchases, min(n, len(self.purchases))):
                p = s.get(Purchase, pid)
                if p.customer_id is not None:
                    s.add(MemberVisit(customer_id=p.customer_id, kind="phone", reason="purchase", purchase_id=pid,
                                      visited_on=self.day, satisfaction=4, recorded_by_id=bob,
                                      recorded_at=clock.now()))

    def reassign_some(self, n):
        grace = self.story.actor(self.db, "grace")
        for fid in self.rnd.sample(self.files, n):
            with self.db.write() as s:
                owner = s.get(CustomerFile, fid).owner_id
                if owner in {self.story.users[u] for u in OWNERS_755}:
                    new = self.rnd.choice([u for u in OWNERS_755 if self.story.users[u] != owner])
                    customers.reassign_file(s, grace, fid, new, "客户要求更换销售")

    def threshold(self, fen, start_in_days=0):
        form = settings.form_values(settings.DEFAULTS) | {"large_purchase_yuan": str(fen // 100)}
        with self.db.write() as s:
            settings.save_version(s, self.story.actor(self.db, "bob"), settings.from_form(form),
                                  self.day + timedelta(days=start_in_days), "调整大额消费标准")

    def grant(self, requester, n):
        now = clock.now()
        with self.db.write() as s:
            for fid in self.rnd.sample(self.files, n):
                f = s.get(CustomerFile, fid)
                s.add(AccessRequest(requester_id=self.story.users[requester], file_id=f.id, file_no=f.file_no,
                                    unit_path=f.unit_path, reason="a client asked for a colleague", scope="view",
                                    hours_requested=24 * 400, created_at=now, status="approved",
                                    expires_at=now + timedelta(days=400)))


def _with_relations(monkeypatch, extra: dict[str, set]):
    """Give some roles more relations for visit.view than the policy does (a grants arm; every file)."""
    real = policy_scope.allowed_relations

    def allowed(role, action):
        return real(role, action) | extra.get(role, set())
    monkeypatch.setattr(policy_scope, "allowed_relations", allowed)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_list_from_the_follow_ups_is_the_list_the_search_over_every_purchase_gave(
        db, vault, story, clock_at, monkeypatch, seed):
    rnd = random.Random(seed)
    w = World(db, vault, story, clock_at, rnd)
    start = programme_today() - timedelta(days=150)
    w.at(start)
    w.add_files(14)
    w.enrol_some(0.7)
    w.threshold(900_000)  # lower than the default: in force from the start
    w.buy(30)
    w.at(start + timedelta(days=40))
    w.threshold(1_200_000)  # raised: the rows stay, the list compares each with today's
    w.buy(20)
    w.change_some(8)
    w.at(start + timedelta(days=80))
    w.threshold(700_000, start_in_days=rnd.choice((0, 5)))  # lowered: the window's purchases it makes large
    w.buy(25)
    w.reassign_some(6)
    w.visit_some(10)
    w.grant("alice", 4)
    w.at(start + timedelta(days=90))
    _assert_same(db, story, monkeypatch, w.day + timedelta(days=5), rnd.sample(w.files, 2), ("bob", "grace"))
    w.at(start + timedelta(days=110))
    w.threshold(1_000_000)
    w.buy(25)
    w.change_some(10)
    w.enrol_some(0.3)
    w.visit_some(6)
    w.reassign_some(5)
    today = start + timedelta(days=130)
    w.at(today)
    w.buy(10)
    w.due_with_the_schedule(12)
    w.change_behind_its_back(4)
    _with_relations(monkeypatch, {"salesperson": {Relation.GRANTED}, "auditor": {Relation.ANY}})
    members = rnd.sample(w.files, 5)
    readers = (*READERS, "dave")  # dave: every file (ANY, patched in)
    shown = _assert_same(db, story, monkeypatch, today, members, readers)
    assert shown > 0  # the comparison saw large purchases on the lists
    # Days later (the window moves on; a version from then applies).
    _assert_same(db, story, monkeypatch, today + timedelta(days=9), members, readers)

    # The migration's backfill and the portal's rebuild write the same rows; the lists agree on them.
    with db.read() as s:
        kept = set(s.execute(select(PurchaseFollowUp.__table__)).all())
    migration = _migration()
    with db.write() as s:
        s.execute(delete(PurchaseFollowUp))
        migration.backfill(s.connection(), today)
    with db.read() as s:
        backfilled = set(s.execute(select(PurchaseFollowUp.__table__)).all())
    with db.write() as s:
        follow_ups.rebuild(s, today)
    with db.read() as s:
        assert set(s.execute(select(PurchaseFollowUp.__table__)).all()) == backfilled
    assert backfilled and backfilled <= kept  # the kept ones: also older ones and lower thresholds' since gone
    _assert_same(db, story, monkeypatch, today, members, readers)


def _migration():
    versions = Path(__file__).resolve().parents[1] / "migrations" / "versions"
    spec = importlib.util.spec_from_file_location("m0035", versions / "0035_purchase_follow_up.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(db, fid):
    with db.read() as s:
        return list(s.execute(select(PurchaseFollowUp.purchase_id, PurchaseFollowUp.owner_id,
                                     PurchaseFollowUp.unit_path, PurchaseFollowUp.paid_total_fen)
                              .where(PurchaseFollowUp.customer_id == fid)))


def test_a_large_purchase_gets_its_row_moves_with_its_file_and_goes_with_it(db, vault, story, clock_at):
    w = World(db, vault, story, clock_at, random.Random(0))
    w.at(programme_today())
    fid = w.files[0]  # alice's, in 755A
    with db.read() as s:
        alices_unit = s.get(CustomerFile, fid).unit_path
    small = w.purchase(fid, 999_999, w.day)
    big = w.purchase(fid, 1_000_000, w.day)
    old = w.purchase(fid, 5_000_000, w.day - timedelta(days=follow_ups.LOOKBACK_DAYS + 1))
    assert _rows(db, fid) == [(big, story.users["alice"], alices_unit, 1_000_000)]
    with db.write() as s:
        customers.reassign_file(s, story.actor(db, "grace"), fid, "charlie", "客户要求更换销售")
        charlies_unit = s.get(CustomerFile, fid).unit_path
    assert _rows(db, fid) == [(big, story.users["charlie"], charlies_unit, 1_000_000)]
    # A lower threshold saved: the window's purchases it makes large get their rows at once.
    form = settings.form_values(settings.DEFAULTS) | {"large_purchase_yuan": "9000"}
    with db.write() as s:
        settings.save_version(s, story.actor(db, "bob"), settings.from_form(form), w.day + timedelta(days=3), "降低大额消费标准")
    assert {r[0] for r in _rows(db, fid)} == {small, big}
    assert old not in {r[0] for r in _rows(db, fid)}
    with db.write() as s:
        s.get(Purchase, small).status = "returned"
    assert {r[0] for r in _rows(db, fid)} == {big}
    with db.write() as s:  # a deleted purchase takes its row with it (ON DELETE CASCADE)
        s.execute(delete(PurchaseLineRow).where(PurchaseLineRow.purchase_id == big))
        s.execute(delete(Purchase).where(Purchase.id == big))
    assert _rows(db, fid) == []


def test_a_full_list_still_shows_the_follow_ups_due_on_its_last_day(db, vault, story, clock_at):
    # alice's three members are due their scheduled visit on one day; a large purchase of the first
    # falls due that day too: a list of three, full of scheduled visits, shows it second.
    w = World(db, vault, story, clock_at, random.Random(0))
    w.at(programme_today())
    fids = [uuid.UUID(f) for f in story.files["alice"]]
    with db.write() as s:
        for fid in fids:
            m = membership.enrol(s, Actor.system("test"), fid, cause="import")
            m.tier, m.joined_on = "platinum", w.day - timedelta(days=40)
    on = w.day - timedelta(days=10)  # platinum: every 30 days
    big = w.purchase(fids[0], 2_000_000, on - timedelta(days=7))
    with db.write() as s:
        alice = story.actor(db, "alice")
        shown = [(v.reason, v.ref, v.due_on) for v in due.due_visits(s, alice, ahead_days=0, limit=3)]
        assert shown == [(v.reason, v.ref, v.due_on)
                         for v in reference_due_visits(s, alice, today=w.day, ahead_days=0, limit=3)]
    assert shown == [("schedule", None, on), ("purchase", big, on), ("schedule", None, on)]


def test_the_daily_job_deletes_the_follow_ups_past_the_window_in_steps(db, vault, story, clock_at, monkeypatch):
    from portal.membership.jobs import run_daily

    w = World(db, vault, story, clock_at, random.Random(1))
    w.at(programme_today())
    fid = w.files[0]
    bought = [w.purchase(fid, 1_000_000 + i, w.day - timedelta(days=days)) for i, days in enumerate((0, 30, 89, 90))]
    assert {r[0] for r in _rows(db, fid)} == set(bought)
    w.at(w.day + timedelta(days=40))  # the purchases of 89 and 90 days ago have left the window
    monkeypatch.setattr(follow_ups, "PURGE_CHUNK", 1)  # one row per step: the loop is exercised
    report = run_daily(db, w.day)
    assert report.follow_ups_purged == 2
    assert {r[0] for r in _rows(db, fid)} == set(bought[:2])
    assert follow_ups.purge_old(db, w.day) == 0
