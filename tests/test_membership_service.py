"""The membership use cases against a real database: joining, purchases, points, stored value, cards, jobs."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select, text

from portal.customers.rules import InvalidField
from portal.customers.service import InvalidInput
from portal.membership import cards, jobs, members, points, purchases
from portal.membership.models import CardAccount, MemberEvent, Membership, PointsEntryRow
from portal.membership.outcomes import PurchaseRequest
from portal.membership.rules import PurchaseLine
from portal.policy import PermissionDenied


def at(y, m, d, h=4):
    # 04:00 UTC is noon in Shanghai: the programme date is the same calendar day.
    return datetime(y, m, d, h, tzinfo=timezone.utc)


def buy(db, vault, actor, receipt, yuan, *, customer=None, card=None, payment="cash", special=False,
        group=False, **kw):
    req = PurchaseRequest(receipt_no=receipt, lines=(PurchaseLine("茅台", 1, yuan * 100, special, group),),
                          payment_method=payment, customer_id=uuid.UUID(customer) if customer else None,
                          card_number=card, **kw)
    with db.write() as s:
        return purchases.record_purchase(s, vault, actor, req)


def enrolled(db, story, owner="alice", i=0):
    fid = uuid.UUID(story.files[owner][i])
    with db.write() as s:
        m = members.enrol(s, story.actor(db, owner), fid, cause="application")
        account = members.primary_account(s, m)
        return fid, members.current_card(s, account.id).number


def test_a_single_purchase_of_680_yuan_makes_a_member_and_issues_a_card(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    out = buy(db, vault, alice, "R-1", 679, customer=story.files["alice"][0])
    assert not out.joined and out.points_earned == 0 and out.card_number is None
    out = buy(db, vault, alice, "R-2", 680, customer=story.files["alice"][1])
    assert out.joined and out.tier == "regular"
    assert out.card_number.startswith("755 ")
    # 679 + 321 = 1000 within 12 months: cumulative joining
    out = buy(db, vault, alice, "R-3", 321, customer=story.files["alice"][0])
    assert out.joined


def test_member_purchase_discount_points_and_upgrade(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    fid, number = enrolled(db, story)
    out = buy(db, vault, alice, "R-10", 9_999, card=number)
    assert out.discount_total_fen == 0 and out.points_earned == 9_999  # regular: 1 point per yuan
    out = buy(db, vault, alice, "R-11", 1, card=number)
    assert out.tier_changed_to == "silver" and out.tier == "silver"
    out = buy(db, vault, alice, "R-12", 100, card=number)
    assert out.paid_total_fen == 9_500 and out.points_earned == 95 * 2
    with db.read() as s:
        kinds = [e.kind for e in s.scalars(select(MemberEvent).where(MemberEvent.membership_id != None))]  # noqa: E711
    assert "tier" in kinds


def test_points_earned_today_are_not_redeemable_today_and_redemption_deducts(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    _, number = enrolled(db, story)
    buy(db, vault, alice, "R-20", 1_500, card=number)
    with db.write() as s, pytest.raises(InvalidField) as exc:
        points.redeem_points(s, alice, number, "gift-100")
    assert exc.value.code == "points.insufficient"
    clock_at(at(2026, 3, 11))
    with db.write() as s:
        out = points.redeem_points(s, alice, number, "gift-100")
    assert out.points == 1_000 and out.points_balance == 500


def test_charlie_cannot_use_alices_card(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    _, number = enrolled(db, story)
    with db.write() as s, pytest.raises(PermissionDenied):
        points.redeem_points(s, story.actor(db, "charlie"), number, "gift-100")


def test_lost_card_stops_at_once_and_replacement_keeps_points(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    _, number = enrolled(db, story)
    buy(db, vault, alice, "R-30", 2_000, card=number)
    with db.write() as s:
        cards.report_loss(s, alice, number, "customer lost wallet")
    with pytest.raises(InvalidField) as exc:
        buy(db, vault, alice, "R-31", 10, card=number)
    assert exc.value.code == "card.lost"
    with db.write() as s:
        new = cards.replace(s, alice, number, "replacement after loss")
    assert new.number != number
    with db.read() as s:
        account = s.get(CardAccount, new.account_id)
        assert account.points_balance == 2_000


def test_stored_value_named_card_needs_pin(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    _, number = enrolled(db, story)
    with db.write() as s:
        points.recharge_stored_value(s, alice, number, 50_000)
        cards.set_pin(s, alice, number, "246810")
    with db.write() as s, pytest.raises(InvalidField):
        points.spend_stored_value(s, vault, alice, number, 1_000, pin="000000")
    with db.write() as s:
        out = points.spend_stored_value(s, vault, alice, number, 1_000, pin="246810")
    assert out.balance_fen == 49_000
    with db.write() as s, pytest.raises(InvalidField) as exc:
        points.spend_stored_value(s, vault, alice, number, 49_001, pin="246810")
    assert exc.value.code == "stored_value.insufficient"


def test_return_reverses_points_and_refunds_stored_value(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    _, number = enrolled(db, story)
    with db.write() as s:
        points.recharge_stored_value(s, alice, number, 100_000)
        cards.set_pin(s, alice, number, "135790")
    buy(db, vault, alice, "R-40", 500, card=number, payment="stored_value", pin="135790")
    with db.write() as s:
        out = purchases.return_purchase(s, vault, alice, "R-40", "customer changed mind")
    assert out.points_reversed == 500 and out.refunded_fen == 50_000 and out.stored_value_fen == 100_000


def test_ledgers_are_append_only_in_the_database(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    _, number = enrolled(db, story)
    buy(db, vault, alice, "R-50", 100, card=number)
    with pytest.raises(Exception):
        with db.write() as s:
            s.execute(text("UPDATE points_entry SET points = 1000000"))
    with pytest.raises(Exception):
        with db.write() as s:
            s.execute(text("DELETE FROM points_entry"))


def test_daily_job_expires_points_after_two_years_and_ends_membership(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    fid, number = enrolled(db, story)
    buy(db, vault, alice, "R-60", 300, card=number)
    report = jobs.run_daily(db, date(2028, 3, 10))
    assert report.points_expired == 300
    report = jobs.run_daily(db, date(2028, 3, 10))
    assert report.points_expired == 0
    with db.read() as s:
        m = s.scalar(select(Membership).where(Membership.customer_id == fid))
        assert m.status == "ended"


def test_five_wrong_pins_lock_stored_value_for_a_while(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    _, number = enrolled(db, story)
    with db.write() as s:
        points.recharge_stored_value(s, alice, number, 10_000)
        cards.set_pin(s, alice, number, "246810")
    for _ in range(cards.PIN_TRIES):
        with pytest.raises(cards.HolderNotVerified):
            cards.guarded(db, alice, lambda s: points.spend_stored_value(s, vault, alice, number, 100, pin="111111"))
    with pytest.raises(InvalidField) as exc:
        cards.guarded(db, alice, lambda s: points.spend_stored_value(s, vault, alice, number, 100, pin="246810"))
    assert exc.value.code == "card.pin_locked"
    clock_at(at(2026, 3, 10, 5))
    out = cards.guarded(db, alice, lambda s: points.spend_stored_value(s, vault, alice, number, 100, pin="246810"))
    assert out.balance_fen == 9_900


def test_a_sale_without_a_card_is_returned_only_by_its_recorder_or_their_leaders(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    req = PurchaseRequest(receipt_no="ANON-1", lines=(PurchaseLine("茅台", 1, 50_000),), payment_method="cash")
    with db.write() as s:
        purchases.record_purchase(s, vault, alice, req)
    for stranger in ("charlie", "henry"):
        with db.write() as s, pytest.raises(PermissionDenied):
            purchases.return_purchase(s, vault, story.actor(db, stranger), "ANON-1", "not my sale to return")
    with db.write() as s:
        out = purchases.return_purchase(s, vault, story.actor(db, "bob"), "ANON-1", "customer brought it back")
    assert out.points_reversed == 0 and out.refunded_fen == 0


def test_a_bearer_card_spends_stored_value_without_a_pin(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    fid = uuid.UUID(story.files["alice"][2])
    with db.write() as s:
        m = members.enrol(s, alice, fid, cause="application", card_type="gift")
        account = members.primary_account(s, m)
        number = members.current_card(s, account.id).number
        assert account.named is False
        points.recharge_stored_value(s, alice, number, 5_000)
    with db.write() as s:
        out = points.spend_stored_value(s, vault, alice, number, 2_000)
    assert out.balance_fen == 3_000


def test_a_return_refunds_at_most_what_the_purchase_paid(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    _, number = enrolled(db, story)
    with db.write() as s:
        points.recharge_stored_value(s, alice, number, 100_000)
        cards.set_pin(s, alice, number, "135790")
    buy(db, vault, alice, "R-70", 100, card=number, payment="stored_value", pin="135790")
    with db.write() as s:  # another spend that happens to carry the receipt number as its reference
        points.spend_stored_value(s, vault, alice, number, 50_000, pin="135790", ref="R-70")
    with db.write() as s:
        out = purchases.return_purchase(s, vault, alice, "R-70", "customer changed mind")
    assert out.refunded_fen == 10_000 and out.stored_value_fen == 50_000


def test_a_late_recorded_sale_is_limited_and_its_points_wait_a_day(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    _, number = enrolled(db, story)
    with pytest.raises(InvalidField) as exc:
        buy(db, vault, alice, "R-80", 100, card=number, purchased_on=date(2026, 1, 1))
    assert exc.value.code == "date.too_old"
    buy(db, vault, alice, "R-81", 2_000, card=number, purchased_on=date(2026, 3, 1))
    with db.read() as s:
        account = s.scalar(select(CardAccount))
        assert points.redeemable(s, account, date(2026, 3, 10)) == 0


def test_a_receipt_of_another_file_is_not_returned_from_this_one(db, vault, story, clock_at):
    from portal.customers.service import NotFound
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    buy(db, vault, alice, "R-90", 100, customer=story.files["alice"][0])
    with db.write() as s, pytest.raises(NotFound):
        purchases.return_purchase(s, vault, alice, "R-90", "wrong file on purpose",
                                  customer_id=uuid.UUID(story.files["alice"][1]))


def test_a_rejoined_member_counts_24_months_from_rejoining(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    fid, number = enrolled(db, story)
    buy(db, vault, alice, "R-95", 100, card=number)
    jobs.run_daily(db, date(2028, 3, 10))
    clock_at(at(2028, 4, 1))
    with db.write() as s:
        members.enrol(s, alice, fid, cause="application")
    jobs.run_daily(db, date(2028, 4, 2))
    with db.read() as s:
        assert s.scalar(select(Membership).where(Membership.customer_id == fid)).status == "active"


def test_absurd_amounts_are_refused_before_they_reach_a_column(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    _, number = enrolled(db, story)
    with pytest.raises(InvalidField) as exc:
        buy(db, vault, alice, "R-99", 10_000_001, card=number)
    assert exc.value.code == "total.too_large"
    with db.write() as s, pytest.raises(InvalidField):
        points.adjust_stored_value(s, story.actor(db, "bob"), number, 10**12, "typo in the amount field")
