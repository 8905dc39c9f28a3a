"""The programme as the seed documents write it (shared/seeds/): each test quotes its rule.

Told with the story's people (alice sells, bob leads her team, erin administers); runs on SQLite,
or PostgreSQL when the suite does.
"""
from __future__ import annotations

import dataclasses
from datetime import date

from portal.membership import cards, jobs, programme
from portal.membership.rules import DEFAULT_SETTINGS, Tier, evaluate_tier

from .test_membership_flows import account_of, at, buy, enrolled, fid_of, membership, set_tier


def use_settings(db, story, clock_at, day: date, note: str, **changes) -> None:
    """erin saves a version in force from ``day`` (the clock is set to that day first)."""
    clock_at(at(day.year, day.month, day.day))
    new = dataclasses.replace(DEFAULT_SETTINGS, effective_from=day, **changes)
    with db.write() as s:
        programme.save_version(s, story.actor(db, "erin"), new, note)


# ---------------------------------------------------------------- 1. group buys

def test_a_group_buy_of_5000_yuan_makes_a_member_without_earning_points(db, vault, story, clock_at):
    """Seed 004: "团购业务、特例商品不参与积分" excludes group buys from points, not from spend;
    seed 000's plan exists "to strengthen the management of group buying customers"."""
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    out = buy(db, vault, alice, "GB-1", 5_000, customer=fid_of(story), group=True)
    assert out.joined and out.points_earned == 0
    assert account_of(db, out.card_number).points_balance == 0


def test_group_buy_spend_can_be_excluded_by_a_setting(db, vault, story, clock_at):
    """The same seed rule with management's other choice: group-buy spend does not count."""
    use_settings(db, story, clock_at, date(2026, 3, 10), "group buys stay outside the programme",
                 group_buy_counts_toward_tiers=False)
    out = buy(db, vault, story.actor(db, "alice"), "GB-2", 5_000, customer=fid_of(story), group=True)
    assert not out.joined


# ---------------------------------------------------------------- 4. expired cards

def test_an_expired_card_gives_no_discount_or_points_by_file_until_renewed(db, vault, story, clock_at):
    """Seed 004: "会员有效期自办卡之日起二年,期满后需至会员卡中心办理续卡手续; 续卡成功后,会员卡及
    积分重新激活" (no benefits by any path until the card is renewed)."""
    clock_at(at(2024, 3, 10))
    alice = story.actor(db, "alice")
    number = enrolled(db, story)
    set_tier(db, story, "bob", fid_of(story), tier="gold", reason="key account of the region")
    clock_at(at(2026, 3, 11))  # the card expired on 2026-03-10
    out = buy(db, vault, alice, "EX-1", 1_000, customer=fid_of(story))
    assert (out.discount_total_fen, out.points_earned) == (0, 0)
    with db.write() as s:
        cards.renew(s, story.actor(db, "bob"), number, "member came to renew")
    out = buy(db, vault, alice, "EX-2", 1_000, customer=fid_of(story))
    assert out.discount_total_fen == 12_000 and out.points_earned == 2_640  # gold: 8.8折, 3 per yuan


# ---------------------------------------------------------------- 5. cancelled cards

def test_spend_while_cancelled_does_not_count_and_the_tier_stays(db, vault, story, clock_at):
    """Seed 003: management decides whether spend during cancellation counts (default: it does
    not), and a cancelled member's tier does not change."""
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    number = enrolled(db, story)
    with db.write() as s:
        cards.cancel(s, story.actor(db, "bob"), number, "member asked to pause the card")
    out = buy(db, vault, alice, "CX-1", 20_000, customer=fid_of(story))
    assert out.tier_changed_to is None and membership(db, fid_of(story)).tier == "regular"
    with db.read() as s:
        from portal.membership.models import Purchase
        from sqlalchemy import select
        assert s.scalar(select(Purchase.spend_counted_fen).where(Purchase.receipt_no == "CX-1")) == 0


def test_a_setting_lets_spend_while_cancelled_count(db, vault, story, clock_at):
    """Seed 003, management's other choice: the spend counts (the tier still waits for restore)."""
    use_settings(db, story, clock_at, date(2026, 3, 10), "cancelled members' spend counts",
                 cancelled_spend_counts=True)
    number = enrolled(db, story)
    with db.write() as s:
        cards.cancel(s, story.actor(db, "bob"), number, "member asked to pause the card")
    buy(db, vault, story.actor(db, "alice"), "CX-2", 20_000, customer=fid_of(story))
    with db.read() as s:
        from portal.membership.models import Purchase
        from sqlalchemy import select
        assert s.scalar(select(Purchase.spend_counted_fen).where(Purchase.receipt_no == "CX-2")) == 2_000_000
    assert membership(db, fid_of(story)).tier == "regular"


# ---------------------------------------------------------------- 8. tier points

def test_silver_at_10000_accumulated_points_not_only_a_rolling_year(db, vault, story, clock_at):
    """Seed 004: "普通会员积分达10000分可晋级为银卡" (accumulated points, by default)."""
    clock_at(at(2026, 1, 10))
    alice = story.actor(db, "alice")
    number = enrolled(db, story)
    buy(db, vault, alice, "TP-1", 6_000, card=number)  # 6,000 points
    clock_at(at(2027, 2, 10))  # more than 12 months later
    out = buy(db, vault, alice, "TP-2", 4_000, card=number)  # 10,000 points since joining
    assert out.tier_changed_to == "silver"


def test_a_rolling_window_of_tier_points_is_a_setting(db, vault, story, clock_at):
    """The other way the seeds count: only the tier window's points."""
    use_settings(db, story, clock_at, date(2026, 1, 10), "tier points over a rolling year",
                 tier_points_accumulated=False)
    alice = story.actor(db, "alice")
    number = enrolled(db, story)
    buy(db, vault, alice, "TP-3", 6_000, card=number)
    clock_at(at(2027, 2, 10))
    assert buy(db, vault, alice, "TP-4", 4_000, card=number).tier_changed_to is None


# ---------------------------------------------------------------- 9. downgrade review

def test_the_review_measures_the_whole_validity_period_spend():
    """Seed 002: "当VIP客户在两年内未达到相应消费标准时,将根据实际情况进行降级处理": gold kept when
    two years' spend meets gold's standard although the last twelve months' does not."""
    keep = evaluate_tier(Tier.GOLD, 0, 500_000, at_validity_end=True, period_spend_fen=2_100_000)
    assert (keep.tier, keep.changed) == (Tier.GOLD, False)
    down = evaluate_tier(Tier.GOLD, 0, 500_000, at_validity_end=True, period_spend_fen=1_500_000)
    assert down.tier is Tier.SILVER


def test_the_daily_review_keeps_gold_for_two_years_of_gold_spend(db, vault, story, clock_at):
    """Seed 002 again, through the daily job: ¥22,000 spent in the first year of two keeps gold."""
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    number = enrolled(db, story)
    assert buy(db, vault, alice, "RV-1", 22_000, card=number).tier_changed_to == "gold"
    clock_at(at(2028, 3, 10))
    report = jobs.run_daily(db, date(2028, 3, 10))
    assert report.downgrades == 0 and not report.failures
    assert membership(db, fid_of(story)).tier == "gold"


# ---------------------------------------------------------------- 13. single-purchase tiers

def test_single_purchase_tiers_are_off_by_default():
    """Seed 002 (始祖鸟) is one retailer's rule; the liquor distributor's default leaves it off."""
    assert DEFAULT_SETTINGS.single_purchase_tier(10_000_000) is None


def test_one_purchase_of_10000_yuan_gives_gold_when_set(db, vault, story, clock_at):
    """Seed 002 (始祖鸟): "凡在本专柜一次性购满5000元者,即可办理VIP银卡一张 ... 在本专柜一次性购物满
    10000元者,可办理VIP金卡一张"."""
    use_settings(db, story, clock_at, date(2026, 3, 10), "始祖鸟 single-purchase tiers",
                 single_purchase_silver_fen=500_000, single_purchase_gold_fen=1_000_000)
    alice = story.actor(db, "alice")
    out = buy(db, vault, alice, "SP-1", 5_000, customer=fid_of(story, "alice", 0))
    assert out.joined and out.tier == "silver"
    out = buy(db, vault, alice, "SP-2", 10_000, customer=fid_of(story, "alice", 1))
    assert out.joined and out.tier == "gold"


def test_restoring_a_card_can_clear_the_spend_before_the_cancellation(db, vault, story, clock_at):
    """Seed 003: "If the membership is resumed, the member will be prompted whether to clear the
    points, or is the pre-sales/consumption accumulation cleared"."""
    clock_at(at(2026, 3, 10))
    alice, bob = story.actor(db, "alice"), story.actor(db, "bob")
    number = enrolled(db, story)
    buy(db, vault, alice, "RS-1", 9_000, card=number)  # ¥9,000 counted, 9,000 points
    with db.write() as s:
        cards.cancel(s, bob, number, "member asked to pause the card")
    clock_at(at(2026, 4, 10))
    with db.write() as s:
        cards.restore(s, bob, number, "member is back", keep_points=False, keep_spend=False)
    out = buy(db, vault, alice, "RS-2", 1_000, card=number)  # ¥1,000 since the restore: no silver
    assert out.tier_changed_to is None and membership(db, fid_of(story)).tier == "regular"


def test_restoring_a_card_keeps_the_spend_by_default(db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice, bob = story.actor(db, "alice"), story.actor(db, "bob")
    number = enrolled(db, story)
    buy(db, vault, alice, "RS-3", 9_000, card=number)
    with db.write() as s:
        cards.cancel(s, bob, number, "member asked to pause the card")
    with db.write() as s:
        cards.restore(s, bob, number, "member is back", keep_points=True)
    assert buy(db, vault, alice, "RS-4", 1_000, card=number).tier_changed_to == "silver"
