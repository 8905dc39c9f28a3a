"""Points as money (issue #14, item 12) and the birthday discount's identity check (item 6).

Seed 001: "積分可用於兌換禮品、抵扣消費金額等" (points offset what a purchase costs); gold:
"積分可按一定比例兌換現金使用"; platinum: "積分兌換禮品或現金的比例更加優惠". Seed 002 (56饰):
"购买时请顾客出示有效VIP卡及身份证,未带身份证可报手机号码". The story's customers were all born
on 7 March 1990; alice sells, bob leads her team.
"""
from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.customers.models import CustomerFile
from portal.customers.rules import InvalidField
from portal.membership import ledger, points, points_money, programme
from portal.membership.models import PointsEntryRow, Purchase, Redemption
from portal.membership.rules import DEFAULT_SETTINGS, Tier

from .concurrency import race
from .factories import id_number_of
from .test_membership_flows import account_of, at, buy, enrolled, fid_of, set_tier


def with_points(db, story, clock_at, number: str, amount: int) -> None:
    """``amount`` points credited yesterday (redeemable today, 2026-03-10)."""
    clock_at(at(2026, 3, 9))
    with db.write() as s:
        points.adjust_points(s, story.actor(db, "bob"), number, amount, "opening balance for the test")
    clock_at(at(2026, 3, 10))


def test_the_rates_are_settings_with_the_seeds_values():
    """Seed 001: 1,000 points for a ¥100 gift and 500 for a ¥50 coupon: 10 points = ¥1; gold
    exchanges at that rate and platinum at a better one (8 points = ¥1), never a worse one."""
    s = DEFAULT_SETTINGS
    assert (s.points_payment_points_per_yuan, s.gold_cash_points_per_yuan, s.platinum_cash_points_per_yuan) == (10, 10, 8)
    assert s.cash_points_per_yuan(Tier.SILVER) is None
    with pytest.raises(ValueError):
        dataclasses.replace(s, platinum_cash_points_per_yuan=12)
    assert points_money.cash_for_points(1_000, Tier.GOLD) == 10_000
    assert points_money.cash_for_points(1_000, Tier.PLATINUM) == 12_500


def test_points_pay_part_of_a_purchase_in_the_same_transaction(db, vault, story, clock_at):
    """Seed 001: points offset part of a purchase at the redemption rate (10 points = ¥1); the
    part paid with points earns no points; a return gives them back."""
    number = enrolled(db, story)
    with_points(db, story, clock_at, number, 3_000)
    out = buy(db, vault, story.actor(db, "alice"), "PM-1", 1_000, card=number, points_used=2_000)
    assert (out.paid_total_fen, out.points_paid, out.points_paid_fen) == (100_000, 2_000, 20_000)
    assert out.points_earned == 800 and out.points_balance == 3_000 - 2_000 + 800
    with db.read() as s:
        p = s.scalar(select(Purchase).where(Purchase.receipt_no == "PM-1"))
        assert (p.points_paid, p.points_paid_fen, p.payment_method) == (2_000, 20_000, "cash")
        kinds = [(e.kind, e.points) for e in s.scalars(select(PointsEntryRow).where(PointsEntryRow.ref == "PM-1")
                                                       .order_by(PointsEntryRow.id))]
        assert kinds == [("payment", -2_000), ("earn", 800)]
    from portal.membership import purchases
    with db.write() as s:
        back = purchases.return_purchase(s, vault, story.actor(db, "alice"), "PM-1", "customer changed their mind")
    assert (back.points_refunded, back.points_reversed, back.points_balance) == (2_000, 800, 3_000)


def test_payment_method_points_pays_it_all_and_never_overdraws(db, vault, story, clock_at):
    number = enrolled(db, story)
    with_points(db, story, clock_at, number, 1_000)
    alice = story.actor(db, "alice")
    with pytest.raises(ledger.InsufficientPoints):
        buy(db, vault, alice, "PM-2", 101, card=number, payment_method="points")
    out = buy(db, vault, alice, "PM-3", 100, card=number, payment_method="points")
    assert (out.points_paid, out.points_paid_fen, out.points_earned, out.points_balance) == (1_000, 10_000, 0, 0)
    with pytest.raises(InvalidField) as exc:  # more points than the price needs
        buy(db, vault, alice, "PM-4", 10, card=number, points_used=5_000)
    assert exc.value.code == "points.too_many"
    with db.read() as s:
        assert s.scalar(select(Purchase.id).where(Purchase.receipt_no.in_(["PM-2", "PM-4"]))) is None


def test_two_tills_spending_the_same_points_at_once_never_overdraw(db, vault, story, clock_at):
    number = enrolled(db, story)
    with_points(db, story, clock_at, number, 1_000)
    alice = story.actor(db, "alice")
    results = race(4, lambda i: buy(db, vault, alice, f"PR-{i}", 100, card=number, points_used=800))
    assert sum(kind == "ok" for kind, _ in results) == 1
    assert all(isinstance(r, ledger.InsufficientPoints) for kind, r in results if kind == "error")
    assert account_of(db, number).points_balance == 200 + 20  # the winner earned 20 on its ¥20 cash


def test_gold_exchanges_points_for_cash_platinum_at_a_better_rate_and_silver_not_at_all(db, story, clock_at):
    """Seed 001: gold "積分可按一定比例兌換現金使用"; platinum "積分兌換禮品或現金的比例更加優惠"."""
    number = enrolled(db, story)
    with_points(db, story, clock_at, number, 5_000)
    bob = story.actor(db, "bob")
    set_tier(db, story, "bob", fid_of(story), tier="silver", reason="long-standing client")
    with db.write() as s, pytest.raises(InvalidField) as exc:
        points.exchange_for_cash(s, bob, number, 1_000)
    assert exc.value.code == "cash.tier"
    set_tier(db, story, "bob", fid_of(story), tier="gold", reason="long-standing client")
    with db.write() as s:
        gold = points.exchange_for_cash(s, bob, number, 1_000, form_key="k1")
        again = points.exchange_for_cash(s, bob, number, 1_000, form_key="k1")  # a resent form
    assert (gold.value_fen, gold.points_balance, again.redemption_id) == (10_000, 4_000, gold.redemption_id)
    set_tier(db, story, "bob", fid_of(story), tier="platinum", reason="the region's top buyer")
    with db.write() as s:
        plat = points.exchange_for_cash(s, bob, number, 1_000)
        assert plat.value_fen == 12_500
        with pytest.raises(ledger.InsufficientPoints):
            points.exchange_for_cash(s, bob, number, 3_001)
    with db.read() as s:
        assert [r.value_fen for r in s.scalars(select(Redemption).where(Redemption.item_code == "cash")
                                               .order_by(Redemption.id))] == [10_000, 12_500]
        assert [e.kind for e in s.scalars(select(PointsEntryRow).where(PointsEntryRow.points < 0))] == ["cash", "cash"]
        assert s.scalar(select(AuditEvent.detail).where(AuditEvent.action == "member.points_cash")
                        .order_by(AuditEvent.seq.desc()).limit(1)).startswith("1000 points for 12500 fen")


def test_points_used_as_money_keep_the_redemption_window(db, vault, story, clock_at):
    """Seed 002: "每年的3月份和8月份两个时间段可进行积分兑换" when the setting names the months."""
    number = enrolled(db, story)
    with_points(db, story, clock_at, number, 1_000)
    clock_at(at(2026, 4, 1))
    with db.write() as s:
        programme.save_version(s, story.actor(db, "erin"), dataclasses.replace(
            DEFAULT_SETTINGS, effective_from=date(2026, 4, 1), redemption_months=(3, 8)), "redeem in March and August")
    with pytest.raises(InvalidField) as exc:
        buy(db, vault, story.actor(db, "alice"), "PM-5", 100, card=number, points_used=100)
    assert exc.value.code == "redemption.closed" and exc.value.field == "points_used"


# ---------------------------------------------------------------- the birthday discount at the till

def test_the_birthday_discount_needs_the_id_card_or_the_mobile_on_file(db, vault, story, clock_at):
    """Seed 002: "生日当日凭身份证购买产品8折优惠"; "购买时请顾客出示有效VIP卡及身份证,未带身份证可报
    手机号码": the cashier enters the ID number or, without the card, the mobile on file."""
    clock_at(at(2026, 3, 7))
    number = enrolled(db, story)
    alice = story.actor(db, "alice")
    with db.read() as s:
        f = s.get(CustomerFile, fid_of(story))
        mobile = vault.decrypt(f.mobile_ct, table="customer_file", column="mobile", row_id=f.id)
    out = buy(db, vault, alice, "BC-1", 1_000, card=number, holder_check=id_number_of(db, vault, fid_of(story)))
    assert (out.discount_reason, out.birthday_check) == ("birthday", "verified")
    out = buy(db, vault, alice, "BC-2", 1_000, card=number, holder_check=mobile[:3] + " " + mobile[3:])
    assert (out.discount_reason, out.birthday_check) == ("birthday", "verified")
    out = buy(db, vault, alice, "BC-3", 1_000, card=number)
    assert (out.discount_reason, out.paid_total_fen, out.birthday_check) == ("none", 100_000, "unverified")


def test_a_mismatch_refuses_the_birthday_discount_the_sale_goes_on_and_it_is_audited(db, vault, story, clock_at):
    clock_at(at(2026, 3, 7))
    number = enrolled(db, story)
    set_tier(db, story, "bob", fid_of(story), tier="silver", reason="long-standing client")
    out = buy(db, vault, story.actor(db, "alice"), "BC-4", 1_000, card=number, holder_check="13900000000")
    assert (out.discount_reason, out.paid_total_fen, out.birthday_check) == ("tier", 95_000, "mismatch")
    with db.read() as s:
        denied = s.scalar(select(AuditEvent).where(AuditEvent.action == "member.birthday_check"))
        assert denied.outcome == "denied" and "13900000000" not in (denied.detail or "")
