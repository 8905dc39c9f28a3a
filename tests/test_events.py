"""Member events (seed 001, 五): bob plans 755A's year; members register, wait, check in, earn points.

alice's three clients and bob's one are members of 755A; charlie's two are 755B's. The clock is
frozen on 1 June 2026 (Shanghai morning); the event is on 10 June, registration opens on 5 June
for everyone and, silver and above, seven days earlier (the programme's default).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from portal import clock
from portal.customers.service import InvalidInput
from portal.db import Database
from portal.events import invitations, planning, registrations, summary
from portal.events.models import EventInvitation, EventRegistration
from portal.membership import members, purchases
from portal.membership.models import CardAccount, Membership, PointsEntryRow
from portal.membership.outcomes import PurchaseRequest
from portal.membership.rules import PurchaseLine
from portal.policy import PermissionDenied

from .concurrency import race

JUNE_1 = datetime(2026, 6, 1, 2, tzinfo=timezone.utc)      # 10:00 in Shanghai
JUNE_5 = datetime(2026, 6, 5, 2, tzinfo=timezone.utc)
EVENT_DAY = datetime(2026, 6, 10, 3, tzinfo=timezone.utc)  # 11:00, the event runs 10:00-16:00


def enrol(db, story, owner, i, tier="regular") -> str:
    """Make the owner's i-th file a member of ``tier``; returns the card number."""
    with db.write() as s:
        m = members.enrol(s, story.actor(db, owner), uuid.UUID(story.files[owner][i]), cause="application")
        m.tier = tier
        return members.current_card(s, members.primary_account(s, m).id).number


def make_event(db, story, *, capacity=2, tiers=("regular", "silver", "gold", "platinum"), points=200,
               leader="bob", unit="755A") -> int:
    actor = story.actor(db, leader)
    with db.write() as s:
        plan = planning.create_plan(s, actor, unit_code=unit, year="2026", budget="100000")
        ev = planning.add_event(s, actor, plan.id, {
            "kind": "launch", "theme": "新品发布会", "place": "深圳湾万象城", "content": "新酒品鉴",
            "starts_at": "2026-06-10T10:00", "ends_at": "2026-06-10T16:00",
            "registration_opens_at": "2026-06-05T09:00", "capacity": str(capacity), "budget": "20000",
            "points": str(points)}, list(tiers))
        return ev.id


@pytest.fixture
def cards(db, story, clock_at):
    clock_at(JUNE_1)
    return {"a0": enrol(db, story, "alice", 0, "silver"), "a1": enrol(db, story, "alice", 1, "gold"),
            "a2": enrol(db, story, "alice", 2, "regular"), "b0": enrol(db, story, "bob", 0, "platinum"),
            "c0": enrol(db, story, "charlie", 0, "gold")}


def register(db, story, who, event_id, number):
    with db.write() as s:
        return registrations.register(s, story.actor(db, who), event_id, number)


def statuses(db, event_id) -> list[str]:
    with db.read() as s:
        return [r.status for r in s.scalars(select(EventRegistration).where(EventRegistration.event_id == event_id)
                                            .order_by(EventRegistration.id))]


def balance(db, number) -> int:
    from portal.membership.models import MemberCard
    with db.read() as s:
        card = s.scalar(select(MemberCard).where(MemberCard.number == number))
        return s.get(CardAccount, card.account_id).points_balance


def test_a_full_event_waitlists_the_next_member_and_a_cancellation_promotes_them(db, story, cards):
    ev = make_event(db, story, capacity=2)
    assert register(db, story, "alice", ev, cards["a0"]).status == "registered"
    assert register(db, story, "alice", ev, cards["a1"]).status == "registered"
    third = register(db, story, "bob", ev, cards["b0"])
    assert (third.status, third.position) == ("waitlisted", 1)
    with db.write() as s:
        first = s.scalar(select(EventRegistration.id).where(EventRegistration.event_id == ev)
                         .order_by(EventRegistration.id))
        promoted = registrations.cancel(s, story.actor(db, "alice"), ev, first)
    assert promoted == third.registration_id
    assert statuses(db, ev) == ["cancelled", "registered", "registered"]


def test_simultaneous_registrations_never_take_more_places_than_there_are(db, story, cards, settings):
    ev = make_event(db, story, capacity=2)
    clock.set_now(JUNE_5)
    who = [("alice", "a0"), ("alice", "a1"), ("alice", "a2"), ("bob", "b0")]
    actors = {w: story.actor(db, w) for w in ("alice", "bob")}

    def attempt(i):
        own = Database(settings.database_url)
        try:
            with own.write() as s:
                return registrations.register(s, actors[who[i][0]], ev, cards[who[i][1]]).status
        finally:
            own.dispose()
    results = race(4, attempt)
    assert sorted(r for _, r in results) == ["registered", "registered", "waitlisted", "waitlisted"], results
    assert sorted(statuses(db, ev)) == ["registered", "registered", "waitlisted", "waitlisted"]


def test_silver_and_above_register_before_everyone_else(db, story, cards):
    ev = make_event(db, story, capacity=10)
    assert register(db, story, "alice", ev, cards["a0"]).status == "registered"  # silver, 1 June
    with pytest.raises(InvalidInput) as exc:
        register(db, story, "alice", ev, cards["a2"])  # regular: opens on 5 June
    assert "not open yet" in exc.value.errors["card"]
    clock.set_now(JUNE_5)
    assert register(db, story, "alice", ev, cards["a2"]).status == "registered"


def test_only_invited_tiers_of_the_events_unit_register_and_only_once(db, story, cards):
    ev = make_event(db, story, tiers=("gold", "platinum"), capacity=10, leader="grace", unit="755A")
    with pytest.raises(InvalidInput):
        register(db, story, "alice", ev, cards["a0"])  # silver: not invited
    register(db, story, "alice", ev, cards["a1"])
    with pytest.raises(InvalidInput):
        register(db, story, "alice", ev, cards["a1"])  # twice
    with pytest.raises(InvalidInput):
        register(db, story, "cathy", ev, cards["c0"])  # 755B's member, a 755A event


def test_a_salesperson_registers_only_their_own_clients_customer_service_any(db, story, cards):
    ev = make_event(db, story, capacity=10)
    with pytest.raises(PermissionDenied):
        register(db, story, "charlie", ev, cards["a0"])
    assert register(db, story, "cathy", ev, cards["a0"]).status == "registered"
    assert register(db, story, "bob", ev, cards["a1"]).status == "registered"  # his team's client


def test_invitations_go_to_the_invited_tiers_of_the_unit_once(db, story, cards):
    ev = make_event(db, story, tiers=("silver", "gold", "platinum"))
    with db.write() as s:
        assert invitations.send_invitations(s, story.actor(db, "bob"), ev) == 3  # a0, a1, b0
    with db.write() as s:
        assert invitations.send_invitations(s, story.actor(db, "bob"), ev) == 0
        invited = set(s.scalars(select(EventInvitation.membership_id).where(EventInvitation.event_id == ev)))
        tiers = {m.tier for m in s.scalars(select(Membership).where(Membership.id.in_(invited)))}
    assert tiers == {"silver", "gold", "platinum"}
    with pytest.raises(PermissionDenied), db.write() as s:
        invitations.send_invitations(s, story.actor(db, "alice"), ev)


def _checked_in_once(db, ev, number, points):
    with db.read() as s:
        rows = list(s.scalars(select(PointsEntryRow).where(PointsEntryRow.ref == f"event:{ev}")))
    assert [(r.kind, r.points) for r in rows] == [("event", points)]
    assert balance(db, number) == points


def test_event_points_are_credited_once_however_often_check_in_is_clicked(db, story, cards):
    ev = make_event(db, story, points=200)
    reg = register(db, story, "alice", ev, cards["a0"])
    with pytest.raises(InvalidInput), db.write() as s:  # not on the event's day yet
        registrations.check_in(s, story.actor(db, "alice"), ev, reg.registration_id)
    clock.set_now(EVENT_DAY)
    results = []
    for who in ("alice", "cathy"):
        with db.write() as s:
            results.append(registrations.check_in(s, story.actor(db, who), ev, reg.registration_id))
    assert [(r.already, r.points) for r in results] == [(False, 200), (True, 0)]
    _checked_in_once(db, ev, cards["a0"], 200)


def test_simultaneous_check_ins_credit_the_points_once(db, story, cards, settings):
    ev = make_event(db, story, points=300)
    reg = register(db, story, "alice", ev, cards["a1"])
    clock.set_now(EVENT_DAY)
    actors = [story.actor(db, w) for w in ("alice", "bob", "cathy", "grace")]

    def attempt(i):
        own = Database(settings.database_url)  # an engine per thread, as separate processes would
        try:
            with own.write() as s:
                return registrations.check_in(s, actors[i], ev, reg.registration_id).already
        finally:
            own.dispose()
    results = race(4, attempt)
    assert sorted(r for _, r in results) == [False, True, True, True], results
    _checked_in_once(db, ev, cards["a1"], 300)


def test_the_summary_counts_attendance_satisfaction_cost_and_attendees_sales(db, vault, story, cards):
    ev = make_event(db, story, capacity=3, points=100)
    clock.set_now(JUNE_5)  # open for every tier
    regs = [register(db, story, who, ev, cards[c]).registration_id
            for who, c in (("alice", "a0"), ("alice", "a1"), ("bob", "b0"), ("alice", "a2"))]
    clock.set_now(EVENT_DAY)
    bob = story.actor(db, "bob")
    for rid, score in zip(regs[:2], ("5", "4")):
        with db.write() as s:
            registrations.check_in(s, bob, ev, rid)
            registrations.record_satisfaction(s, bob, ev, rid, score)
    with db.write() as s:
        planning.record_cost(s, bob, ev, "18500.50")
    # Two attendees buy within 30 days: too few buyers to show their sales.
    for i, (owner, card) in enumerate((("alice", "a0"), ("alice", "a1"))):
        with db.write() as s:
            purchases.record_purchase(s, vault, story.actor(db, owner), PurchaseRequest(
                receipt_no=f"EV-{i}", lines=(PurchaseLine("茅台", 1, 150_000),), payment_method="cash",
                card_number=cards[card]))
    clock.set_now(datetime(2026, 6, 12, 3, tzinfo=timezone.utc))
    with db.write() as s:
        got = summary.event_summary(s, bob, ev)
    assert (got.registered, got.attended, got.no_shows, got.waitlisted) == (3, 2, 1, 1)
    assert (got.responses, got.satisfaction_avg, got.points_credited) == (2, 4.5, 200)
    assert (got.budget_fen, got.actual_cost_fen, got.cost_diff_fen) == (2_000_000, 1_850_050, -149_950)
    assert got.sales_fen is None and got.buyers is None
    # A third attendee's purchase makes the group large enough to show.
    clock.set_now(EVENT_DAY)  # check-in is on the event's day
    with db.write() as s:
        registrations.check_in(s, bob, ev, regs[2])
    with db.write() as s:
        purchases.record_purchase(s, vault, bob, PurchaseRequest(
            receipt_no="EV-9", lines=(PurchaseLine("茅台", 2, 150_000),), payment_method="cash",
            card_number=cards["b0"]))
        got = summary.event_summary(s, bob, ev)
    assert (got.buyers, got.purchases) == (3, 3) and got.sales_fen > 0
    with pytest.raises(PermissionDenied), db.write() as s:
        summary.event_summary(s, story.actor(db, "alice"), ev)


def test_the_priority_window_is_the_programmes_setting(db, story, cards):
    import dataclasses
    from datetime import date, timedelta

    from portal.events.models import Event
    from portal.membership.programme import current_settings, save_version
    with db.write() as s:
        new = dataclasses.replace(current_settings(s), effective_from=date(2026, 6, 1), event_priority_days=2)
        save_version(s, story.actor(db, "erin"), new, "events: two days' priority")
    ev = make_event(db, story)
    with db.read() as s:
        e = s.get(Event, ev)
        assert e.registration_opens_at - e.priority_opens_at == timedelta(days=2)
    with pytest.raises(InvalidInput) as exc:  # 1 June: silver's window opens on 3 June now
        register(db, story, "alice", ev, cards["a0"])
    assert "not open yet" in exc.value.errors["card"]
