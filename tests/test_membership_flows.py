"""The membership programme's longer flows, told with the story's people: alice sells, bob leads
her team, charlie sells on another team, cathy is customer service, erin administers.

Every story customer was born on 7 March 1990 (their ID numbers say so), which the birthday
tests use. Runs on SQLite, or PostgreSQL when the suite does.
"""
from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select

from portal.customers.models import CustomerFile
from portal.customers.rules import InvalidField
from portal.customers.service import InvalidInput
from portal.inbox import service as inbox
from portal.membership import applications, cards, jobs, members, overview, points, programme, purchases
from portal.membership.models import (CardAccount, MemberCard, MemberEvent, Membership,
                                      PointsEntryRow, Purchase)
from portal.membership.outcomes import PurchaseRequest
from portal.membership.rules import PurchaseLine
from portal.policy import PermissionDenied
from .factories import id_number_of


def at(y, m, d, h=4):
    return datetime(y, m, d, h, tzinfo=timezone.utc)  # noon in Shanghai: the same calendar day


def fid_of(story, owner="alice", i=0) -> uuid.UUID:
    return uuid.UUID(story.files[owner][i])


def enrolled(db, story, owner="alice", i=0) -> str:
    with db.write() as s:
        m = members.enrol(s, story.actor(db, owner), fid_of(story, owner, i), cause="application")
        return members.current_card(s, members.primary_account(s, m).id).number


def buy(db, vault, actor, receipt, yuan, *, card=None, customer=None, special=False, group=False, **kw):
    kw.setdefault("payment_method", "cash")
    req = PurchaseRequest(receipt_no=receipt, lines=(PurchaseLine("茅台", 1, yuan * 100, special, group),),
                          card_number=card, customer_id=customer, **kw)
    with db.write() as s:
        return purchases.record_purchase(s, vault, actor, req)


def membership(db, fid) -> Membership:
    with db.read() as s:
        return s.scalar(select(Membership).where(Membership.customer_id == fid))


def account_of(db, number) -> CardAccount:
    with db.read() as s:
        card = s.scalar(select(MemberCard).where(MemberCard.number == number))
        return s.get(CardAccount, card.account_id)


def set_tier(db, story, who, fid, **kw):
    with db.write() as s:
        return members.set_tier(s, story.actor(db, who), fid, **kw)


# ---------------------------------------------------------------- tiers set by a leader

def test_bob_sets_a_floor_and_a_ceiling_on_alices_client_and_alice_cannot(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    number = enrolled(db, story)
    fid = fid_of(story)
    with db.write() as s, pytest.raises(PermissionDenied):
        members.set_tier(s, alice, fid, tier="gold", reason="my best customer")
    with db.write() as s, pytest.raises(PermissionDenied):
        members.set_tier(s, story.actor(db, "charlie"), fid, tier="gold", reason="not my customer")

    m = set_tier(db, story, "bob", fid, tier="platinum", reason="the region's biggest buyer")
    assert m.tier == "platinum"
    m = set_tier(db, story, "bob", fid, tier="silver", floor="silver", ceiling="silver",
                 reason="keep at silver this year")
    assert (m.tier, m.tier_floor, m.tier_ceiling) == ("silver", "silver", "silver")
    # The ceiling caps what the points and spend would earn: ¥60,000 is gold spend.
    out = buy(db, vault, alice, "F-1", 60_000, card=number)
    assert out.tier == "silver" and out.tier_changed_to is None
    assert membership(db, fid).tier == "silver"

    with db.write() as s, pytest.raises(InvalidInput) as exc:
        members.set_tier(s, story.actor(db, "bob"), fid, tier="gold", floor="gold", ceiling="silver",
                         reason="a muddle of bounds")
    assert "ceiling" in exc.value.errors
    with db.write() as s, pytest.raises(InvalidInput) as exc:
        members.set_tier(s, story.actor(db, "bob"), fid, tier="gold", reason="")
    assert "reason" in exc.value.errors
    # Lifting the ceiling lets the earned tier in at the next evaluation.
    set_tier(db, story, "bob", fid, tier="silver", floor="silver", reason="ceiling no longer needed")
    out = buy(db, vault, alice, "F-2", 1, card=number)
    assert out.tier_changed_to == "gold"
    with db.read() as s:
        kinds = [(e.kind, e.cause) for e in s.scalars(select(MemberEvent).where(
            MemberEvent.membership_id == m.id).order_by(MemberEvent.id))]
    assert ("tier_bounds", "manual") in kinds and ("tier", "manual") in kinds and ("tier", "upgrade") in kinds


# ---------------------------------------------------------------- the daily job

def _gold_member_whose_second_year_spend_is_silver(db, vault, story, clock_at) -> tuple[uuid.UUID, str]:
    """A leader's gold member whose whole validity period's spend meets only silver's standard."""
    alice = story.actor(db, "alice")
    clock_at(at(2026, 3, 10))
    number = enrolled(db, story)  # card valid until 2028-03-10
    set_tier(db, story, "bob", fid_of(story), tier="gold", reason="key account of the region")
    clock_at(at(2027, 6, 1))
    out = buy(db, vault, alice, "G-2", 12_000, card=number)  # at 8.8折: ¥10,560 counted, silver's standard
    assert out.paid_total_fen == 1_056_000 and out.tier == "gold"
    return fid_of(story), number


def test_at_validity_end_the_daily_job_moves_gold_down_to_what_the_spend_supports(db, vault, story, clock_at):
    fid, _ = _gold_member_whose_second_year_spend_is_silver(db, vault, story, clock_at)
    clock_at(at(2028, 3, 9))
    report = jobs.run_daily(db, date(2028, 3, 9))  # the card is still valid: no review yet
    assert report.downgrades == 0 and membership(db, fid).tier == "gold"
    clock_at(at(2028, 3, 10))
    report = jobs.run_daily(db, date(2028, 3, 10))
    assert report.downgrades == 1 and not report.failures
    assert membership(db, fid).tier == "silver"
    # Reviewed once per validity period: a rerun changes nothing.
    report = jobs.run_daily(db, date(2028, 3, 10))
    assert report.downgrades == 0 and membership(db, fid).tier == "silver"
    with db.read() as s:
        events = [(e.kind, e.cause, e.to_value) for e in s.scalars(select(MemberEvent).order_by(MemberEvent.id))]
    assert ("tier", "downgrade", "silver") in events
    assert [e for e in events if e[0] == "validity_review"] == [("validity_review", "validity_end", "2028-03-10")]


def test_a_floor_stops_the_downgrade_at_validity_end(db, vault, story, clock_at):
    fid, _ = _gold_member_whose_second_year_spend_is_silver(db, vault, story, clock_at)
    set_tier(db, story, "bob", fid, tier="gold", floor="gold", reason="strategic account, keep gold")
    clock_at(at(2028, 3, 10))
    report = jobs.run_daily(db, date(2028, 3, 10))
    assert report.downgrades == 0 and not report.failures
    assert membership(db, fid).tier == "gold"


def test_membership_ends_after_24_months_without_a_purchase(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    number = enrolled(db, story)
    buy(db, vault, story.actor(db, "alice"), "L-1", 100, card=number)
    fid = fid_of(story)
    clock_at(at(2028, 3, 9))
    assert jobs.run_daily(db, date(2028, 3, 9)).ended == 0
    assert membership(db, fid).status == "active"
    clock_at(at(2028, 3, 10))
    report = jobs.run_daily(db, date(2028, 3, 10))
    assert report.ended == 1
    assert membership(db, fid).status == "ended"
    with db.write() as s, pytest.raises(InvalidField) as exc:  # the card stops with it
        points.recharge_stored_value(s, story.actor(db, "alice"), number, 10_000)
    assert exc.value.code == "card.cancelled"
    # A purchase large enough to join again restarts the same membership with a new card.
    out = buy(db, vault, story.actor(db, "alice"), "L-2", 700, customer=fid)
    assert out.joined and out.card_number != number
    # Purchases by file now land on the new card, not on the old (expired) one.
    assert buy(db, vault, story.actor(db, "alice"), "L-3", 50, customer=fid).card_number == out.card_number
    assert account_of(db, out.card_number).points_balance == 50
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Membership).where(Membership.customer_id == fid)) == 1


# ---------------------------------------------------------------- referrals

def _referral_entries(db, referrer_card):
    with db.read() as s:
        return [(e.kind, e.points, e.ref) for e in s.scalars(
            select(PointsEntryRow).where(PointsEntryRow.account_id == account_of(db, referrer_card).id,
                                         PointsEntryRow.kind == "referral").order_by(PointsEntryRow.id))]


def test_referral_points_are_paid_once_by_the_tier_at_joining(db, vault, story, clock_at):
    """Seed 001: "推薦普通會員入會,推薦人可獲100積分;推薦銀卡會員入會,推薦人可獲300積分": the
    referrer is paid for the tier at which the referred member joins, once; a later rise pays nothing."""
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    referrer_card = enrolled(db, story, "alice", 0)
    newcomer = fid_of(story, "alice", 1)
    out = buy(db, vault, alice, "RF-1", 700, customer=newcomer, referrer_card=referrer_card)
    assert out.joined
    assert account_of(db, referrer_card).points_balance == 100
    out = buy(db, vault, alice, "RF-2", 9_300, card=out.card_number)  # ¥10,000 in 12 months
    assert out.tier_changed_to == "silver"
    set_tier(db, story, "bob", newcomer, tier="platinum", reason="a leader's decision pays no referral")
    m = membership(db, newcomer)
    assert _referral_entries(db, referrer_card) == [("referral", 100, f"member:{m.id}")]
    assert account_of(db, referrer_card).points_balance == 100
    assert m.referral_credited_tier == "regular"


def test_a_newcomer_who_joins_as_silver_pays_the_referrer_300(db, vault, story, clock_at):
    """Seed 001: "推薦銀卡會員入會,推薦人可獲300積分" (the joining sale itself reaches silver)."""
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    referrer_card = enrolled(db, story, "alice", 0)
    newcomer = fid_of(story, "alice", 1)
    out = buy(db, vault, alice, "RF-3", 10_000, customer=newcomer, referrer_card=referrer_card)
    assert out.joined and out.tier == "silver"
    m = membership(db, newcomer)
    assert _referral_entries(db, referrer_card) == [("referral", 300, f"member:{m.id}")]


# ---------------------------------------------------------------- missed points

def test_cathy_claims_missed_points_within_30_days_and_not_on_day_31(db, vault, story, clock_at):
    clock_at(at(2026, 3, 1))
    alice = story.actor(db, "alice")
    number = enrolled(db, story)
    buy(db, vault, alice, "MP-1", 500)  # no card shown at the till
    buy(db, vault, alice, "MP-2", 300)
    cathy = story.actor(db, "cathy")
    clock_at(at(2026, 3, 31))  # day 30
    with db.write() as s, pytest.raises(PermissionDenied):
        purchases.claim_missed_points(s, alice, "MP-1", number, "customer forgot the card")
    with db.write() as s:
        out = purchases.claim_missed_points(s, cathy, "MP-1", number, "customer forgot the card")
    assert out.points_earned == 500 and out.points_balance == 500
    with db.write() as s, pytest.raises(InvalidField) as exc:
        purchases.claim_missed_points(s, cathy, "MP-1", number, "asked a second time")
    assert exc.value.code == "claim.attached"
    clock_at(at(2026, 4, 1))  # day 31
    with db.write() as s, pytest.raises(InvalidField) as exc:
        purchases.claim_missed_points(s, cathy, "MP-2", number, "customer forgot the card")
    assert exc.value.code == "claim.too_late"
    with db.read() as s:
        p = s.scalar(select(Purchase).where(Purchase.receipt_no == "MP-1"))
        assert p.customer_id == fid_of(story) and p.card_number == number and p.claimed_at is not None
        assert s.scalar(select(Purchase).where(Purchase.receipt_no == "MP-2")).customer_id is None


# ---------------------------------------------------------------- frozen cards

def _save_settings(db, story, **changes):
    with db.write() as s:
        today = programme.programme_today()
        new = dataclasses.replace(programme.settings_on(s, today), effective_from=today, **changes)
        programme.save_version(s, story.actor(db, "erin"), new, "frozen members' spend now counts")


def test_a_frozen_member_gets_no_discount_no_points_and_spend_counts_only_if_the_settings_say_so(
        db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    number = enrolled(db, story)
    set_tier(db, story, "bob", fid_of(story), tier="gold", reason="long-standing client")
    out = buy(db, vault, alice, "FZ-1", 1_000, card=number)
    assert out.discount_total_fen == 12_000 and out.points_earned == 880 * 3
    with db.write() as s:
        cards.freeze(s, alice, number, "customer asked to pause the card")
    out = buy(db, vault, alice, "FZ-2", 1_000, card=number)
    assert (out.discount_total_fen, out.points_earned, out.discount_reason) == (0, 0, "none")
    with db.write() as s, pytest.raises(InvalidField) as exc:  # benefits stop: no redemption either
        points.redeem_points(s, alice, number, "coupon-50")
    assert exc.value.code == "card.frozen"
    _save_settings(db, story, frozen_spend_counts=True)
    out = buy(db, vault, alice, "FZ-3", 1_000, card=number)
    assert (out.discount_total_fen, out.points_earned) == (0, 0)
    with db.read() as s:
        counted = dict(s.execute(select(Purchase.receipt_no, Purchase.spend_counted_fen)).all())
    assert counted == {"FZ-1": 88_000, "FZ-2": 0, "FZ-3": 100_000}
    with db.write() as s:
        cards.freeze(s, alice, number, "customer is back", frozen=False)
    assert buy(db, vault, alice, "FZ-4", 1_000, card=number).discount_total_fen == 12_000


# ---------------------------------------------------------------- cancel and restore

def test_only_a_leader_cancels_and_restores_keeping_or_clearing_the_points(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice, bob = story.actor(db, "alice"), story.actor(db, "bob")
    number = enrolled(db, story)
    buy(db, vault, alice, "CX-1", 2_000, card=number)
    with db.write() as s, pytest.raises(PermissionDenied):
        cards.cancel(s, alice, number, "customer moved abroad")
    with db.write() as s:
        cards.cancel(s, bob, number, "customer moved abroad")
    with pytest.raises(InvalidField) as exc:
        buy(db, vault, alice, "CX-2", 100, card=number)
    assert exc.value.code == "card.cancelled"
    with db.write() as s, pytest.raises(PermissionDenied):
        cards.restore(s, alice, number, "customer came back", keep_points=True)
    with db.write() as s:
        cards.restore(s, bob, number, "customer came back", keep_points=True)
    assert account_of(db, number).points_balance == 2_000
    with db.write() as s:
        cards.cancel(s, bob, number, "cancelled again at the customer's request")
        cards.restore(s, bob, number, "returned after a long absence", keep_points=False)
    account = account_of(db, number)
    assert account.status == "active" and account.points_balance == 0
    with db.read() as s:
        total = s.scalar(select(func.sum(PointsEntryRow.points)).where(PointsEntryRow.account_id == account.id))
        history = [(e.kind, e.to_value, e.cause) for e in s.scalars(select(MemberEvent).where(
            MemberEvent.account_id == account.id).order_by(MemberEvent.id))]
    assert total == 0
    assert ("restore", "active", "points_kept") in history and ("restore", "active", "points_cleared") in history


# ---------------------------------------------------------------- applications

def _notices(db, story, who, kind):
    with db.read() as s:
        return [n for n in inbox.recent(s, story.users[who]) if n.kind == kind]


def test_alice_applies_cathy_approves_a_card_is_issued_and_alice_is_told(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice, cathy = story.actor(db, "alice"), story.actor(db, "cathy")
    fid = fid_of(story, "alice", 2)
    with db.write() as s, pytest.raises(PermissionDenied):
        applications.submit_application(s, story.actor(db, "charlie"), fid, card_type="standard")
    with db.write() as s:
        app = applications.submit_application(s, alice, fid, card_type="standard", note="annual gift buyer")
    assert len(_notices(db, story, "cathy", "member.application")) == 1
    with db.write() as s, pytest.raises(InvalidInput) as exc:
        applications.submit_application(s, alice, fid, card_type="standard")
    assert "already waiting" in exc.value.errors["customer"]
    with db.read() as s, pytest.raises(PermissionDenied):
        applications.pending_applications(s, alice)
    with db.read() as s:
        assert [a.id for a in applications.pending_applications(s, cathy)] == [app.id]
    with db.write() as s, pytest.raises(PermissionDenied):
        applications.review_application(s, alice, app.id, approve=True)
    # Seed 001: customer service checks "是否符合會員入會條件": at ¥0 spend it cannot approve ...
    with db.write() as s, pytest.raises(InvalidInput) as exc:
        applications.review_application(s, cathy, app.id, approve=True)
    assert "joining condition" in exc.value.errors["application"]
    # ... until a leader above the file documents an exception (alice cannot, charlie's leader cannot).
    with db.write() as s, pytest.raises(PermissionDenied):
        applications.grant_exception(s, alice, app.id, "annual gift buyer, approved")
    with db.write() as s, pytest.raises(PermissionDenied):
        applications.grant_exception(s, story.actor(db, "henry"), app.id, "not my team at all")
    with db.write() as s:
        applications.grant_exception(s, story.actor(db, "bob"), app.id, "annual gift buyer, prepays in May")
    with db.write() as s:
        applications.review_application(s, cathy, app.id, approve=True)
    m = membership(db, fid)
    assert m.status == "active" and m.join_cause == "application"
    with db.read() as s:
        (card,) = s.scalars(select(MemberCard).join(CardAccount, CardAccount.id == MemberCard.account_id)
                            .where(CardAccount.membership_id == m.id))
    (notice,) = _notices(db, story, "alice", "member.approved")
    assert json.loads(notice.params)["card"] == card.number
    with db.write() as s, pytest.raises(InvalidInput):  # decided once
        applications.review_application(s, cathy, app.id, approve=False, reason="changed my mind")
    with db.write() as s, pytest.raises(InvalidInput):  # a member needs no application
        applications.submit_application(s, alice, fid, card_type="standard")


def test_a_rejection_needs_a_reason_and_alice_is_told_it(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice, cathy = story.actor(db, "alice"), story.actor(db, "cathy")
    fid = fid_of(story, "alice", 1)
    with db.write() as s:
        app = applications.submit_application(s, alice, fid, card_type="dining")
    with db.write() as s, pytest.raises(InvalidInput) as exc:
        applications.review_application(s, cathy, app.id, approve=False, reason="")
    assert "reason" in exc.value.errors
    with db.write() as s:
        applications.review_application(s, cathy, app.id, approve=False, reason="no purchase history yet")
    assert membership(db, fid) is None
    (notice,) = _notices(db, story, "alice", "member.rejected")
    assert json.loads(notice.params)["reason"] == "no purchase history yet"
    with db.write() as s:  # once decided, a new application may follow
        assert applications.submit_application(s, alice, fid, card_type="standard").status == "pending"


def test_an_application_is_approved_on_spend_that_meets_the_joining_condition(db, vault, story, clock_at):
    """Seed 002 (56饰): "一次性消费实付金额满680元人民币及以上者,填写<56饰会员申请表>": the spend
    on file meets the condition, and the referrer named on the application is paid 100 (seed 001)."""
    clock_at(at(2026, 3, 10))
    alice, cathy = story.actor(db, "alice"), story.actor(db, "cathy")
    referrer_card = enrolled(db, story, "alice", 0)
    fid = fid_of(story, "alice", 2)
    buy(db, vault, alice, "AP-1", 600, customer=fid)  # ¥600: not yet a member
    buy(db, vault, alice, "AP-2", 300, customer=fid)  # ¥900 in 12 months: still short of ¥1,000
    with db.write() as s:
        app = applications.submit_application(s, alice, fid, card_type="standard", referrer_card=referrer_card)
    with db.write() as s, pytest.raises(InvalidInput):
        applications.review_application(s, cathy, app.id, approve=True)
    buy(db, vault, alice, "AP-3", 100, customer=fid)  # ¥1,000: the cumulative condition (and auto-join)
    assert membership(db, fid).status == "active"
    with db.write() as s, pytest.raises(InvalidInput):  # a member needs no approval
        applications.review_application(s, cathy, app.id, approve=True)


def test_a_referrer_named_on_an_application_is_paid_at_approval(db, vault, story, clock_at):
    """Seed 001: "推薦普通會員入會,推薦人可獲100積分", for a member who joins by application."""
    clock_at(at(2026, 3, 10))
    alice, cathy = story.actor(db, "alice"), story.actor(db, "cathy")
    referrer_card = enrolled(db, story, "alice", 0)
    fid = fid_of(story, "alice", 2)
    with db.write() as s, pytest.raises(InvalidInput) as exc:
        applications.submit_application(s, alice, fid, card_type="standard", referrer_card="999 99999")
    assert "referrer_card" in exc.value.errors
    with db.write() as s:
        app = applications.submit_application(s, alice, fid, card_type="standard", referrer_card=referrer_card)
    with db.write() as s:
        applications.grant_exception(s, story.actor(db, "bob"), app.id, "key account, joins without spend")
        applications.review_application(s, cathy, app.id, approve=True)
    assert account_of(db, referrer_card).points_balance == 100


def test_a_joining_fee_is_recorded_as_paid_before_the_card_is_issued(db, vault, story, clock_at):
    """Seed 004: "入会通常需满足一定条件,如消费达特定金额或交纳会员工本费": the fee, where set, is the
    condition, and customer service records how it was paid."""
    clock_at(at(2026, 3, 10))
    new = dataclasses.replace(programme.DEFAULT_SETTINGS, effective_from=date(2026, 3, 10), joining_fee_fen=2_000)
    with db.write() as s:
        programme.save_version(s, story.actor(db, "erin"), new, "a ¥20 card fee")
    alice, cathy = story.actor(db, "alice"), story.actor(db, "cathy")
    fid = fid_of(story, "alice", 2)
    with db.write() as s:
        app = applications.submit_application(s, alice, fid, card_type="standard")
    with db.write() as s, pytest.raises(InvalidInput) as exc:
        applications.review_application(s, cathy, app.id, approve=True)
    assert "fee_method" in exc.value.errors
    with db.write() as s:
        applications.review_application(s, cathy, app.id, approve=True, fee_method="cash")
    with db.read() as s:
        from portal.membership.models import MembershipApplication
        row = s.get(MembershipApplication, app.id)
        assert (row.status, row.fee_paid_method, row.fee_paid_by_id) == ("approved", "cash", story.users["cathy"])


# ---------------------------------------------------------------- birthdays

def test_the_birthday_rate_applies_on_the_day_when_it_is_the_better_one(db, vault, story, clock_at):
    clock_at(at(2026, 3, 7))  # every story customer's birthday
    alice = story.actor(db, "alice")
    regular, gold, platinum = (enrolled(db, story, "alice", i) for i in range(3))
    set_tier(db, story, "bob", fid_of(story, "alice", 1), tier="gold", reason="long-standing client")
    set_tier(db, story, "bob", fid_of(story, "alice", 2), tier="platinum", reason="the region's top buyer")
    cases = [(regular, "BD-1", 850, "birthday"), (gold, "BD-2", 850, "birthday"),
             (platinum, "BD-3", 750, "tier")]
    holder = id_number_of(db, vault, fid_of(story, "alice", 0))  # seed 002: 凭身份证 (issue #14, item 6)
    ids = {n: id_number_of(db, vault, fid_of(story, "alice", i)) for i, n in enumerate((regular, gold, platinum))}
    for number, receipt, rate, reason in cases:
        out = buy(db, vault, alice, receipt, 1_000, card=number, holder_check=ids[number])
        assert (out.rate_per_mille, out.discount_reason, out.paid_total_fen) == (rate, reason, rate * 100)
    assert buy(db, vault, alice, "BD-4", 1_000, card=regular, holder_check=holder).points_earned == 850
    # Special-price lines are never discounted, birthday or not.
    assert buy(db, vault, alice, "BD-5", 1_000, card=regular, special=True).discount_total_fen == 0
    clock_at(at(2026, 3, 8))
    assert buy(db, vault, alice, "BD-6", 1_000, card=regular).discount_reason == "none"
    assert buy(db, vault, alice, "BD-7", 1_000, card=gold).rate_per_mille == 880


# ---------------------------------------------------------------- reminder lists

def test_due_to_expire_and_birthday_lists_are_scoped(db, vault, story, clock_at):
    clock_at(at(2024, 3, 20))
    for owner in ("alice", "charlie"):
        number = enrolled(db, story, owner, 0)
        buy(db, vault, story.actor(db, owner), f"EX-{owner}", 400, card=number)  # expires 2026-03-20
    with db.read() as s:
        file_nos = {o: s.get(CustomerFile, fid_of(story, o)).file_no for o in ("alice", "charlie")}
    clock_at(at(2026, 3, 5))  # the week of Monday 2 March: birthdays on the 7th
    seen = {}
    for who in ("alice", "charlie", "bob", "grace", "frank", "dave"):
        with db.write() as s:
            actor = story.actor(db, who)
            due = overview.due_to_expire(s, vault, actor)
            born = overview.birthdays_this_week(s, vault, actor)
        seen[who] = ({r.file_no for r in due}, {r.file_no for r in born})
        if due:
            assert {(r.points, r.expires_on) for r in due} == {(400, date(2026, 3, 20))}
        assert all(r.birthday == "03-07" for r in born) and all("*" in r.masked_name for r in born)
    a, c = {file_nos["alice"]}, {file_nos["charlie"]}
    assert seen["alice"] == (a, a)
    assert seen["charlie"] == (c, c)      # none of alice's members
    assert seen["bob"] == (a, a)          # his team's, not the other team's
    assert seen["grace"] == (a | c, a | c)  # the whole region
    assert seen["frank"] == seen["dave"] == (set(), set())  # another region; an auditor has no lists
