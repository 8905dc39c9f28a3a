"""The daily job in short steps: it visits only the members with something to do (daily_due.py),
yet does all that the full pass would (the full pass, each member's step rolled back, is the
reference); it catches up missed days; and the class window summary built in chunks equals the
one built in one transaction, while a reader during the build sees the old figures or the new."""
from __future__ import annotations

import dataclasses
import random
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from portal.accounts.actor import Actor
from portal.customers import service as customers
from portal.customers.rules import InvalidField
from portal.customers.service import InvalidInput
from portal.membership import cards as cards_, daily_due, jobs, members, programme, purchases
from portal.membership.models import CardAccount, MemberEvent, Membership, PointsEntryRow
from portal.membership.outcomes import PurchaseRequest
from portal.membership.rules import PurchaseLine
from portal.membership.settings import DEFAULT_SETTINGS
from portal.policy import PermissionDenied
from portal.reports import class_build, class_window, classes
from portal.reports.filters import Period, ReportFilter
from portal.reports.models import ClassBuild, ClassCount, ClassMember, ClassState

from .concurrency import race
from .factories import customer_input

REFUSED = (InvalidField, InvalidInput, PermissionDenied)


def noon(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 4, tzinfo=timezone.utc)  # noon in Shanghai


class _Undo(Exception):
    pass


def _trace(s, mid: int) -> tuple:
    """What the daily job can change about a member: its events, points entries, tier and standing."""
    m = s.get(Membership, mid, populate_existing=True)
    accounts = select(CardAccount.id).where(CardAccount.membership_id == mid)
    return (s.scalar(select(func.count()).select_from(MemberEvent).where(MemberEvent.membership_id == mid)),
            s.scalar(select(func.count()).select_from(PointsEntryRow).where(PointsEntryRow.account_id.in_(accounts))),
            m.tier, m.status)


def full_pass_would_change(db, day: date) -> set[int]:
    """The reference: every active member's step of the full pass, each rolled back; those it changes."""
    actor = Actor.system("jobs.daily")
    with db.read() as s:
        ids = daily_due.active_ids(s)
    changed = set()
    for mid in ids:
        try:
            with db.write() as s:
                before = _trace(s, mid)
                jobs.daily_for_member(s, actor, mid, day, jobs.DailyReport(day=day))
                s.flush()
                raise _Undo(before != _trace(s, mid))
        except _Undo as undo:
            if undo.args[0]:
                changed.add(mid)
    return changed


def _more_files(db, vault, story, n: int) -> list[uuid.UUID]:
    actor = story.actor(db, "alice")
    with db.write() as s:
        return [customers.create_file(s, vault, actor, customer_input(100 + i)).id for i in range(n)]


def _short_programme(db, story, day: date, lapse_after_months: int = 8) -> None:
    """Shorter periods, so that expiries, validity ends and lapses happen within the test's years."""
    with db.write() as s:
        programme.save_version(s, story.actor(db, "erin"), dataclasses.replace(
            DEFAULT_SETTINGS, effective_from=day, lapse_after_months=lapse_after_months, card_validity_years=1,
            points_validity_years=1), "shorter periods for the test")


@pytest.mark.parametrize("seed", [3, 11])
def test_the_members_due_are_all_that_the_full_pass_would_change(db, vault, story, clock_at, seed):
    rnd = random.Random(seed)
    day = date(2026, 1, 5)
    clock_at(noon(day))
    _short_programme(db, story, day)
    files = _more_files(db, vault, story, 12)
    alice, bob = story.actor(db, "alice"), story.actor(db, "bob")
    cards: dict[uuid.UUID, str] = {}
    receipts: list[str] = []
    totals = dict(points_expired=0, upgrades=0, downgrades=0, ended=0)
    narrowed, full_runs, n = 0, 0, 0
    while day < date(2028, 9, 1):
        day += timedelta(days=rnd.choice((1, 1, 2, 5, 9, 17, 33)))
        clock_at(noon(day))
        for _op in range(rnd.randint(0, 3)):
            n += 1
            f = rnd.choice(files)
            op = rnd.random()
            try:
                with db.write() as s:
                    if op < 0.5:  # a sale (the card when it has one), some recorded late
                        on = day - timedelta(days=rnd.choice((0, 0, 0, 2, 9)))
                        yuan = rnd.choice((300, 700, 1_500, 4_000, 9_000, 12_000))
                        out = purchases.record_purchase(s, vault, alice, PurchaseRequest(
                            receipt_no=f"DJ-{n}", lines=(PurchaseLine("茅台", 1, yuan * 100),), payment_method="cash",
                            purchased_on=on, card_number=cards.get(f), customer_id=None if f in cards else f))
                        if out.card_number:
                            cards[f] = out.card_number
                        receipts.append(out.receipt_no)
                    elif op < 0.58 and receipts:
                        purchases.return_purchase(s, vault, bob, rnd.choice(receipts), "customer changed mind")
                    elif op < 0.72:  # a leader's tier, floor and ceiling
                        floor, ceiling = rnd.choice((("", ""), ("silver", ""), ("", "silver"), ("regular", "gold")))
                        members.set_tier(s, bob, f, tier=rnd.choice(("regular", "regular", "silver", "gold")), floor=floor,
                                         ceiling=ceiling, reason="a leader's decision")
                    elif op < 0.8 and cards:
                        cf = rnd.choice(sorted(cards, key=files.index))
                        cards_.cancel(s, bob, cards[cf], "customer asked for it")
                    elif op < 0.88 and cards:
                        cf = rnd.choice(sorted(cards, key=files.index))
                        cards_.restore(s, bob, cards[cf], "customer came back", keep_points=rnd.random() < 0.5,
                                       keep_spend=rnd.random() < 0.5)
                    elif op < 0.95 and cards:
                        cards_.renew(s, bob, cards[rnd.choice(sorted(cards, key=files.index))], "renewal at the desk")
                    elif op >= 0.97:  # new thresholds from a later day: that day, every member is visited
                        programme.save_version(s, story.actor(db, "erin"), dataclasses.replace(
                            DEFAULT_SETTINGS, effective_from=day + timedelta(days=rnd.randint(1, 20)),
                            lapse_after_months=rnd.choice((6, 8)), card_validity_years=1, points_validity_years=1,
                            silver_spend_fen=rnd.choice((400_000, 1_000_000))), "new thresholds")
            except REFUSED:
                continue
        if rnd.random() < 0.45:  # the job does not run every day: the next run catches up
            continue
        want = full_pass_would_change(db, day)
        with db.read() as s:
            plan = daily_due.plan(s, day)
        assert want <= set(plan.ids), (day, sorted(want - set(plan.ids)))
        report = jobs.run_daily(db, day)
        assert report.failures == [] and report.recorded
        assert report.full == plan.full
        if plan.full is None:
            narrowed += 1
        else:
            full_runs += 1
        for k in totals:
            totals[k] += getattr(report, k)
        assert full_pass_would_change(db, day) == set(), day  # nothing left for the full pass
    assert narrowed >= 10 and full_runs >= 2, (narrowed, full_runs)
    # The rules did fire: expiries, endings, tier changes, validity reviews.
    assert totals["points_expired"] and totals["ended"] and totals["upgrades"] + totals["downgrades"], totals
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(MemberEvent).where(MemberEvent.kind == "validity_review"))


def test_a_missed_day_is_caught_up_and_members_without_anything_due_are_not_visited(db, vault, story, clock_at):
    day = date(2026, 1, 5)
    clock_at(noon(day))
    _short_programme(db, story, day, lapse_after_months=24)
    files = _more_files(db, vault, story, 4)
    alice = story.actor(db, "alice")
    for i, f in enumerate(files):
        clock_at(noon(day + timedelta(days=i)))
        with db.write() as s:  # joins (the joining sale earns no points) ...
            out = purchases.record_purchase(s, vault, alice, PurchaseRequest(
                receipt_no=f"MD-{i}", lines=(PurchaseLine("茅台", 1, 100_000),), payment_method="cash", customer_id=f))
        with db.write() as s:  # ... then 1,000 points
            purchases.record_purchase(s, vault, alice, PurchaseRequest(
                receipt_no=f"MD-{i}b", lines=(PurchaseLine("茅台", 1, 100_000),), payment_method="cash",
                card_number=out.card_number))
    last = day + timedelta(days=3)
    assert jobs.run_daily(db, last).full == "first run"
    # Runs on the days after: nobody is due until the first points lot expires, a year on.
    quiet = jobs.run_daily(db, last + timedelta(days=1))
    assert quiet.full is None and quiet.members == 0 and quiet.recorded
    # Then the job stops for ten days, across the points expiry of the first two members.
    expiry = date(2027, 1, 5)
    before = date(2027, 1, 3)
    assert jobs.run_daily(db, before).members == 0
    catch_up = jobs.run_daily(db, before + timedelta(days=10))
    assert catch_up.full is None and catch_up.members == 4  # every lot expired on the missed days
    assert catch_up.points_expired == 4 * 1_000 and catch_up.accounts_expired == 4
    with db.read() as s:
        got = s.execute(select(PointsEntryRow.on).where(PointsEntryRow.kind == "expire")
                        .order_by(PointsEntryRow.on)).scalars().all()
        assert got == [expiry + timedelta(days=i) for i in range(4)]  # dated on each lot's expiry day
        assert s.get(daily_due.DailyJobState, 1).last_day == before + timedelta(days=10)
    # A run for a day before the last one visits every active member and leaves the state alone.
    back = jobs.run_daily(db, before)
    assert back.full and back.members == 4 and not back.recorded


def test_a_failed_member_keeps_the_last_day_so_the_next_run_retries_it(db, vault, story, clock_at, monkeypatch):
    day = date(2026, 1, 5)
    clock_at(noon(day))
    f = _more_files(db, vault, story, 1)[0]
    with db.write() as s:
        members.enrol(s, story.actor(db, "alice"), f, cause="application")
    assert jobs.run_daily(db, day).recorded
    with db.write() as s:
        members.set_tier(s, story.actor(db, "bob"), f, tier="silver", floor="silver", reason="a leader's floor")
    real = jobs.daily_for_member

    def broken(*a, **kw):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(jobs, "daily_for_member", broken)
    bad = jobs.run_daily(db, day + timedelta(days=1))
    assert len(bad.failures) == 1 and not bad.recorded
    monkeypatch.setattr(jobs, "daily_for_member", real)
    with db.read() as s:
        assert s.get(daily_due.DailyJobState, 1).last_day == day
    good = jobs.run_daily(db, day + timedelta(days=2))
    assert good.recorded and good.members == 1


# ---------------------------------------------------------------- the class window in chunks

def _summary(s) -> tuple:
    gen = s.get(ClassState, 1, populate_existing=True).gen
    members_ = {r.membership_id: (r.customer_id, r.file_no, r.owner_id, r.unit_path, r.tier, int(r.spend_fen),
                                  r.purchases, r.last_on, r.cls, r.r, r.f)
                for r in s.scalars(select(ClassMember).where(ClassMember.gen == gen))}
    counts = {(r.owner_id, r.unit_path, r.tier, r.cls, r.r, r.f): (r.members, int(r.spend_fen), r.purchases)
              for r in s.scalars(select(ClassCount).where(ClassCount.gen == gen))
              if r.members or r.spend_fen or r.purchases}
    return s.get(ClassState, 1).as_of, members_, counts


def _members_with_purchases(db, vault, story, clock_at, n: int = 9) -> list[uuid.UUID]:
    rnd = random.Random(5)
    files = _more_files(db, vault, story, n)
    alice = story.actor(db, "alice")
    for i in range(40):
        d = date(2025, 6, 1) + timedelta(days=17 * i)
        clock_at(noon(d))
        f = rnd.choice(files)
        with db.write() as s:
            purchases.record_purchase(s, vault, alice, PurchaseRequest(
                receipt_no=f"CW-{i}", lines=(PurchaseLine("茅台", 1, rnd.choice((800, 3_000, 12_000)) * 100),),
                payment_method="cash", customer_id=f, purchased_on=d))
    return files


def test_the_chunked_build_gives_the_single_transactions_summary(db, vault, story, clock_at):
    _members_with_purchases(db, vault, story, clock_at)
    day = date(2027, 2, 1)
    with db.write() as s:
        class_window.rebuild(s, day)
    with db.read() as s:
        want = _summary(s)
        assert want[1] and want[2]
    with db.write() as s:  # a summary of another day, so the chunked build has an old one to replace
        class_window.rebuild(s, date(2026, 5, 1))
    done = class_build.build_in_steps(db, day, chunk=2, purge_chunk=3)
    assert done.switched and done.transactions > 6
    with db.read() as s:
        assert _summary(s) == want
        assert s.scalars(select(ClassMember.gen).distinct()).all() == [s.get(ClassState, 1).gen]
        assert s.get(ClassBuild, 1).as_of is None  # idle


def _card_of(db, fid: uuid.UUID) -> str:
    with db.read() as s:
        m = s.scalar(select(Membership).where(Membership.customer_id == fid))
        return members.current_card(s, members.primary_account(s, m).id).number


def test_a_sale_during_the_build_counts_in_the_generation_switched_in(db, vault, story, clock_at):
    files = _members_with_purchases(db, vault, story, clock_at)
    day = date(2027, 2, 1)
    clock_at(noon(day))
    with db.write() as s:
        class_window.rebuild(s, date(2027, 1, 1))  # the summary the reports read meanwhile
    with db.write() as s:
        gen = class_build.begin(s, day)
    with db.write() as s:
        assert class_build.step(s, gen, chunk=3) == class_build.MORE
    with db.read() as s:
        done_through = s.get(ClassBuild, 1).done_through
        built = set(s.scalars(select(Membership.customer_id).where(Membership.id <= done_through)))
    first = next(f for f in files if f in built)
    later = next(f for f in reversed(files) if f not in built)
    for i, f in enumerate((first, later)):  # one in the chunk built, one not yet
        with db.write() as s:
            purchases.record_purchase(s, vault, story.actor(db, "alice"), PurchaseRequest(
                receipt_no=f"CW-B{i}", lines=(PurchaseLine("茅台", 1, 50_000),), payment_method="cash",
                card_number=_card_of(db, f)))
    while True:
        with db.write() as s:
            if class_build.step(s, gen, chunk=3) != class_build.MORE:
                break
    with db.write() as s:
        assert class_build.switch(s, gen)
    with db.read() as s:
        got = _summary(s)
        assert got[0] == day
    with db.write() as s:
        class_window.rebuild(s, day)
    with db.read() as s:
        assert _summary(s) == got


def test_two_processes_building_at_once_share_the_chunks(db, vault, story, clock_at):
    _members_with_purchases(db, vault, story, clock_at)
    day = date(2027, 2, 1)
    with db.write() as s:
        class_window.rebuild(s, day)
    with db.read() as s:
        want = _summary(s)
    results = race(2, lambda i: class_build.build_in_steps(db, day, chunk=2, purge_chunk=2))
    assert all(kind == "ok" for kind, _ in results), results
    with db.read() as s:
        assert _summary(s) == want
        assert s.scalars(select(ClassMember.gen).distinct()).all() == [s.get(ClassState, 1).gen]


def _figures(db, actor, monkeypatch, *, live: bool = False) -> tuple:
    with db.read() as s, monkeypatch.context() as mp:
        if live:
            mp.setattr(class_window, "current", lambda *a, **k: None)
        rep = classes.classes(s, actor, ReportFilter(Period("year", date(2027, 1, 1), date(2027, 12, 31))))
        assert rep.extra["from_summary"] is not live
        return [t.rows for t in rep.tables], rep.extra["lists"]


def test_a_reader_during_the_build_sees_the_old_figures_then_the_new(db, vault, story, clock_at, monkeypatch):
    _members_with_purchases(db, vault, story, clock_at)
    day = date(2027, 2, 1)
    clock_at(noon(day))
    bob = story.actor(db, "bob")
    with db.write() as s:
        class_window.rebuild(s, day)
    old = _figures(db, bob, monkeypatch)
    # The facts change behind the summary's back (no use case would: each refreshes it), so that
    # the generation being built differs from the one the reports read.
    with db.write() as s:
        s.execute(text("UPDATE purchase SET paid_total_fen = paid_total_fen * 3"))
    new = _figures(db, bob, monkeypatch, live=True)
    assert new != old
    with db.write() as s:
        gen = class_build.begin(s, day)
    seen_old = [_figures(db, bob, monkeypatch)]
    while True:
        with db.write() as s:
            more = class_build.step(s, gen, chunk=2) == class_build.MORE
        seen_old.append(_figures(db, bob, monkeypatch))
        if not more:
            break
    with db.write() as s:
        assert class_build.switch(s, gen)
    seen_new = [_figures(db, bob, monkeypatch)]
    while True:
        with db.write() as s:
            more = class_build.purge(s, 2)
        seen_new.append(_figures(db, bob, monkeypatch))
        if not more:
            break
    assert len(seen_old) > 3 and len(seen_new) > 3
    assert all(x == old for x in seen_old) and all(x == new for x in seen_new)
