"""Member coupons (issue #14, item 11): seed 001's "會員專屬優惠券", issued by a campaign or as a
tier's birthday benefit, used once at a purchase (form, CSV import, POS API), with an append-only
ledger, audited. Told with the story's people: alice sells, bob leads her team, grace the
region, henry another region, erin administers."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from portal.audit.models import AuditEvent
from portal.customers.service import InvalidInput
from portal.membership import coupon_rules, coupons, purchases
from portal.membership.coupon_rules import CouponRefused, CouponTerms
from portal.membership.models import Coupon, CouponEntry, Membership, Purchase, PurchaseLineRow
from portal.membership.outcomes import PurchaseRequest
from portal.membership.rules import PurchaseLine
from portal.policy import PermissionDenied

from .concurrency import race
from .test_membership_flows import at, buy, enrolled, fid_of, set_tier

ALL = ("regular", "silver", "gold", "platinum")


def terms(**kw) -> CouponTerms:
    base = dict(kind="amount", amount_fen=5_000, valid_from=date(2026, 3, 10), valid_until=date(2026, 3, 31),
                tiers=ALL)
    return CouponTerms(**{**base, **kw})


def campaign(db, story, who="bob", reason="spring campaign for members", **kw):
    with db.write() as s:
        c = coupons.issue_campaign(s, story.actor(db, who), name="Spring", terms=terms(**kw), reason=reason)
        return c.id


def code_of(db, fid) -> str:
    with db.read() as s:
        mid = s.scalar(select(Membership.id).where(Membership.customer_id == fid))
        return s.scalar(select(Coupon.code).where(Coupon.membership_id == mid).order_by(Coupon.id.desc()))


def ledger_of(db, code) -> list[str]:
    with db.read() as s:
        cid = s.scalar(select(Coupon.id).where(Coupon.code == code))
        return list(s.scalars(select(CouponEntry.kind).where(CouponEntry.coupon_id == cid).order_by(CouponEntry.id)))


# ---------------------------------------------------------------- pure rules

def test_codes_are_random_60_bit_and_read_back_as_cashiers_type_them():
    """Coupon codes are not personal data but must not be guessable: 12 characters of Crockford
    base 32 from the system's random source, typed in any case, with hyphens, O for 0, L for 1."""
    codes = {coupon_rules.new_code() for _ in range(2_000)}
    assert len(codes) == 2_000 and all(len(c) == 12 for c in codes)
    code = "7KQ2M9XBA410"
    assert coupon_rules.format_code(code) == "7KQ2-M9XB-A410"
    assert coupon_rules.normalise_code(" 7kq2-m9xb-a4lo ") == code
    assert coupon_rules.normalise_code("7KQ2-M9XB-A41") is None


def test_an_amount_coupon_never_takes_more_than_the_price_and_a_discount_rounds_half_up():
    assert coupon_rules.coupon_off(terms(amount_fen=5_000), 3_000) == 3_000
    assert coupon_rules.coupon_off(terms(kind="discount", rate_per_mille=900), 12_345) == 1_234
    with pytest.raises(CouponRefused) as exc:
        coupon_rules.coupon_off(terms(min_spend_fen=50_000), 49_999)
    assert exc.value.code == "coupon.min_spend"
    assert coupon_rules.allocate(100, [1, 1, 1]) == [34, 33, 33]


def test_the_coupon_ledger_takes_one_ending_only():
    """A coupon is used once: issued, then used, expired or voided, never two of them."""
    assert coupon_rules.next_entry([], "issued") == "issued"
    assert coupon_rules.next_entry(["issued"], "used") == "used"
    for ending in ("used", "expired", "voided"):
        with pytest.raises(coupon_rules.CouponLedgerError):
            coupon_rules.next_entry(["issued", ending], "used")
    with pytest.raises(coupon_rules.CouponLedgerError):
        coupon_rules.next_entry(["issued"], "issued")


# ---------------------------------------------------------------- campaigns

def test_a_leaders_campaign_reaches_the_members_of_the_chosen_tiers_in_their_units(db, story, clock_at):
    """Seed 001: "不定期收到公司發送的會員專屬優惠券" (members receive member coupons from time to
    time): bob's campaign for gold reaches his team's gold members only, and is audited."""
    clock_at(at(2026, 3, 10))
    enrolled(db, story, "alice", 0)
    enrolled(db, story, "alice", 1)
    set_tier(db, story, "bob", fid_of(story, "alice", 1), tier="gold", reason="long-standing client")
    enrolled(db, story, "frank", 0)  # henry's region
    set_tier(db, story, "henry", fid_of(story, "frank", 0), tier="gold", reason="long-standing client")
    cid = campaign(db, story, tiers=("gold",))
    with db.read() as s:
        owners = set(s.scalars(select(Membership.customer_id).join(Coupon, Coupon.membership_id == Membership.id)
                               .where(Coupon.campaign_id == cid)))
        assert owners == {fid_of(story, "alice", 1)}
        entry = s.scalar(select(AuditEvent).where(AuditEvent.action == "coupon.issue"))
        assert entry.actor_username == "bob" and "1 coupon(s) to gold" in entry.detail
    with db.write() as s, pytest.raises(PermissionDenied):
        coupons.issue_campaign(s, story.actor(db, "alice"), name="Mine", terms=terms(), reason="my own coupons")


def test_campaign_terms_are_checked_field_by_field(db):
    with pytest.raises(InvalidInput) as exc:
        coupons.campaign_terms(kind="discount", amount_fen=None, rate_per_mille=1000, min_spend_fen=0,
                               valid_from=date(2026, 3, 9), valid_until=date(2026, 3, 1), tiers=[],
                               today=date(2026, 3, 10))
    assert set(exc.value.errors) == {"discount", "valid_from", "valid_until", "tiers"}


# ---------------------------------------------------------------- use at a purchase

def test_a_coupon_takes_its_amount_off_after_the_tier_discount_and_is_used_once(db, vault, story, clock_at):
    """Seed 001: coupons give "在購物時享受一定的折扣優惠" (a discount when buying); used once."""
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    number = enrolled(db, story)
    set_tier(db, story, "bob", fid_of(story), tier="silver", reason="long-standing client")
    campaign(db, story, min_spend_fen=50_000)
    code = code_of(db, fid_of(story))
    with pytest.raises(CouponRefused) as exc:  # ¥500 at 9.5折 = ¥475: below the ¥500 minimum
        buy(db, vault, alice, "CP-0", 500, card=number, coupon_code=code)
    assert exc.value.code == "coupon.min_spend"
    out = buy(db, vault, alice, "CP-1", 1_000, card=number, coupon_code=coupon_rules.format_code(code).lower())
    assert (out.paid_total_fen, out.coupon_discount_fen, out.discount_total_fen) == (90_000, 5_000, 10_000)
    assert out.points_earned == 900 * 2  # silver: points on what was paid
    assert ledger_of(db, code) == ["issued", "used"]
    with pytest.raises(CouponRefused) as exc:
        buy(db, vault, alice, "CP-2", 1_000, card=number, coupon_code=code)
    assert exc.value.code == "coupon.used"
    with db.read() as s:
        assert s.scalar(select(Purchase.coupon_discount_fen).where(Purchase.receipt_no == "CP-1")) == 5_000
        lines = list(s.scalars(select(PurchaseLineRow.paid_fen).join(Purchase).where(Purchase.receipt_no == "CP-1")))
        assert sum(lines) == 90_000


def test_a_coupon_spares_special_price_lines_and_is_shared_over_the_others(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    number = enrolled(db, story)
    campaign(db, story, kind="discount", amount_fen=0, rate_per_mille=900)
    req = PurchaseRequest(receipt_no="CP-3", payment_method="cash", card_number=number,
                          coupon_code=code_of(db, fid_of(story)),
                          lines=(PurchaseLine("茅台", 1, 30_000), PurchaseLine("五粮液", 1, 10_000),
                                 PurchaseLine("特价酒", 1, 10_000, special_price=True)))
    with db.write() as s:
        out = purchases.record_purchase(s, vault, story.actor(db, "alice"), req)
        paid = list(s.scalars(select(PurchaseLineRow.paid_fen).join(Purchase)
                              .where(Purchase.receipt_no == "CP-3").order_by(PurchaseLineRow.line_no)))
    assert out.coupon_discount_fen == 4_000 and paid == [27_000, 9_000, 10_000]


def test_a_coupon_is_only_its_members_valid_in_its_days_and_for_its_tiers(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    mine, other = enrolled(db, story, "alice", 0), enrolled(db, story, "alice", 1)
    campaign(db, story, tiers=("regular",), valid_from=date(2026, 3, 11))
    code = code_of(db, fid_of(story, "alice", 0))
    for card, when, expected in ((other, at(2026, 3, 11), "coupon.unknown"), (mine, at(2026, 3, 10), "coupon.not_yet"),
                                 (mine, at(2026, 4, 1), "coupon.expired")):
        clock_at(when)
        with pytest.raises(CouponRefused) as exc:
            buy(db, vault, alice, "CP-4", 1_000, card=card, coupon_code=code)
        assert exc.value.code == expected
    clock_at(at(2026, 3, 11))
    set_tier(db, story, "bob", fid_of(story, "alice", 0), tier="gold", reason="long-standing client")
    with pytest.raises(CouponRefused) as exc:
        buy(db, vault, alice, "CP-5", 1_000, card=mine, coupon_code=code)
    assert exc.value.code == "coupon.tier"
    with db.read() as s:
        assert s.scalar(select(Purchase.id).where(Purchase.receipt_no.in_(["CP-4", "CP-5"]))) is None


def test_two_purchases_with_one_coupon_at_once_one_wins(db, vault, story, clock_at):
    """One use only, whatever the concurrency: the coupon row's lock, the compare-and-set of its
    status and the ledger's unique (coupon, kind) each let one purchase through."""
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    number = enrolled(db, story)
    campaign(db, story)
    code = code_of(db, fid_of(story))
    results = race(6, lambda i: buy(db, vault, alice, f"RACE-{i}", 1_000, card=number, coupon_code=code))
    won = [r for kind, r in results if kind == "ok"]
    lost = [r for kind, r in results if kind == "error"]
    assert len(won) == 1 and won[0].coupon_discount_fen == 5_000
    assert all(isinstance(e, CouponRefused) and e.code == "coupon.used" for e in lost), lost
    assert ledger_of(db, code) == ["issued", "used"]
    with db.read() as s:
        assert s.scalar(select(Purchase.id).where(Purchase.receipt_no.like("RACE-%"))) is not None
        assert len(list(s.scalars(select(Purchase.id).where(Purchase.receipt_no.like("RACE-%"))))) == 1


def test_the_coupon_ledger_refuses_to_be_rewritten(db, story, clock_at):
    clock_at(at(2026, 3, 10))
    enrolled(db, story)
    campaign(db, story)
    for statement in ("UPDATE coupon_entry SET kind = 'used'", "DELETE FROM coupon_entry"):
        with pytest.raises(DBAPIError):
            with db.write() as s:
                s.execute(text(statement))


# ---------------------------------------------------------------- withdrawal, expiry, birthdays

def test_a_leader_above_the_member_withdraws_an_unused_coupon_with_a_reason(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    number = enrolled(db, story)
    campaign(db, story)
    code = code_of(db, fid_of(story))
    with db.write() as s, pytest.raises(PermissionDenied):
        coupons.void_coupon(s, story.actor(db, "henry"), code, "not my region's coupon")
    with db.write() as s:
        coupons.void_coupon(s, story.actor(db, "grace"), code, "issued to the wrong member")
    assert ledger_of(db, code) == ["issued", "voided"]
    with pytest.raises(CouponRefused) as exc:
        buy(db, vault, story.actor(db, "alice"), "CP-6", 1_000, card=number, coupon_code=code)
    assert exc.value.code == "coupon.voided"


def test_unused_coupons_expire_after_their_last_day_and_birthday_coupons_follow_the_tier(db, vault, story,
                                                                                         clock_at):
    """Seed 001: "根據會員等級,為會員送上不同的生日福利,如...專屬優惠券" (a birthday benefit by
    tier, such as a coupon): ¥50 for gold by default, ¥0 for regular; once a year."""
    clock_at(at(2026, 3, 1))
    enrolled(db, story, "alice", 0)
    enrolled(db, story, "alice", 1)
    set_tier(db, story, "bob", fid_of(story, "alice", 1), tier="gold", reason="long-standing client")
    campaign(db, story, valid_from=date(2026, 3, 1), valid_until=date(2026, 3, 6))
    birthday = date(2026, 3, 7)  # every story customer's
    clock_at(at(2026, 3, 7))
    report = coupons.run_coupon_jobs(db, vault, birthday)
    assert (report.expired, report.birthday) == (2, 1)
    assert coupons.run_coupon_jobs(db, vault, birthday).birthday == 0
    with db.read() as s:
        gift = s.scalar(select(Coupon).where(Coupon.source == "birthday"))
        assert (gift.amount_fen, gift.valid_until) == (5_000, birthday + timedelta(days=29))
        assert set(s.scalars(select(CouponEntry.kind))) == {"issued", "expired"}
