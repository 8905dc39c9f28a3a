"""Unit tests for portal.membership.rules: every seed figure, pricing, tiers, dates and cards."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal import clock
from portal.customers.rules import InvalidField
from portal.membership.rules import (
    DEFAULT_SETTINGS,
    DiscountReason,
    InvalidPurchase,
    MemberState,
    ProgrammeSettings,
    PurchaseLine,
    Tier,
    TierCause,
    add_months,
    add_years,
    birthday_applies,
    card_expires_on,
    card_is_active,
    catalogue_item,
    discount_for,
    evaluate_tier,
    format_card_number,
    joining_cause,
    membership_lapsed,
    missed_points_claimable,
    parse_card_number,
    points_expire_on,
    price_purchase,
    programme_date,
    programme_today,
    redemption_open,
    referral_points,
    renew_card,
    round_half_up_div,
    settings_in_effect,
    spend_in_window,
)

S = DEFAULT_SETTINGS
DAY = date(2025, 6, 10)  # nobody's birthday below unless stated


def member(tier: Tier | None, **kw) -> MemberState:
    return MemberState(tier=tier, **kw)


def line(price_fen: int, quantity: int = 1, **kw) -> PurchaseLine:
    return PurchaseLine("item", quantity, price_fen, **kw)


# --- settings ---------------------------------------------------------------


def test_seed_figures_are_the_defaults():
    s = ProgrammeSettings()
    assert (s.join_single_purchase_fen, s.join_cumulative_fen, s.join_window_months) == (68_000, 100_000, 12)
    assert s.joining_fee_fen == 0
    assert s.card_validity_years == 2
    assert (s.silver_points, s.silver_spend_fen) == (10_000, 1_000_000)
    assert (s.gold_points, s.gold_spend_fen) == (50_000, 2_000_000)  # 002: 一年消费累计满20000元
    assert s.tier_window_months == 12 and s.lapse_after_months == 24
    assert [s.discount_per_mille(t) for t in Tier] == [1000, 950, 880, 750]
    assert s.birthday_discount_per_mille == 850
    assert [s.points_per_yuan(t) for t in Tier] == [1, 2, 3, 4]
    assert [s.referral_points(t) for t in Tier] == [100, 300, 500, 800]
    assert s.points_validity_years == 2 and s.expiry_warning_days == 30
    assert s.missed_points_claim_days == 30
    assert s.redemption_months == ()
    assert [(i.code, i.points, i.value_fen) for i in s.catalogue] == [
        ("gift-100", 1_000, 10_000), ("coupon-50", 500, 5_000)]
    assert isinstance(s.effective_from, date)


def test_settings_are_frozen_and_versioned_by_replace():
    with pytest.raises(dataclasses.FrozenInstanceError):
        S.silver_points = 1  # type: ignore[misc]
    newer = dataclasses.replace(S, effective_from=date(2026, 1, 1), silver_points=8_000)
    assert settings_in_effect([S, newer], date(2025, 12, 31)) is S
    assert settings_in_effect([S, newer], date(2026, 1, 1)) is newer
    with pytest.raises(ValueError):
        settings_in_effect([newer], date(2025, 1, 1))


@pytest.mark.parametrize("changes", [
    {"silver_points": -1},
    {"gold_spend_fen": 1.5},
    {"joining_fee_fen": True},
    {"gold_discount_per_mille": 1001},
    {"silver_points": 60_000},           # above gold
    {"redemption_months": (0,)},
    {"redemption_months": (3, 3)},
    {"points_validity_years": 0},
    {"frozen_spend_counts": "yes"},
])
def test_bad_settings_are_refused(changes):
    with pytest.raises(ValueError):
        dataclasses.replace(S, **changes)


def test_tiers_order_by_rank():
    assert Tier.REGULAR < Tier.SILVER < Tier.GOLD < Tier.PLATINUM
    assert max(Tier.GOLD, Tier.SILVER) is Tier.GOLD


# --- dates ------------------------------------------------------------------


def test_programme_date_is_the_shanghai_calendar_date():
    assert programme_date(datetime(2025, 3, 1, 15, 59, tzinfo=timezone.utc)) == date(2025, 3, 1)
    assert programme_date(datetime(2025, 3, 1, 16, 0, tzinfo=timezone.utc)) == date(2025, 3, 2)
    with pytest.raises(ValueError):
        programme_date(datetime(2025, 3, 1, 16, 0))


def test_programme_today_follows_the_clock():
    clock.set_now(datetime(2024, 12, 31, 16, 30, tzinfo=timezone.utc))
    try:
        assert programme_today() == date(2025, 1, 1)
    finally:
        clock.set_now(None)


def test_month_arithmetic_clamps_to_month_end():
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2025, 3, 10), -12) == date(2024, 3, 10)
    assert add_years(date(2024, 2, 29), 2) == date(2026, 2, 28)
    assert add_years(date(2024, 2, 29), 4) == date(2028, 2, 29)


def test_spend_window_is_the_rolling_12_months_ending_today():
    today = date(2025, 3, 10)
    purchases = [(date(2024, 3, 10), 1), (date(2024, 3, 11), 10), (today, 100), (date(2025, 3, 11), 1000)]
    assert spend_in_window(purchases, today, 12) == 110


# --- joining ----------------------------------------------------------------


def test_single_purchase_of_679_99_does_not_join():
    assert joining_cause(67_999, 67_999) is None


def test_single_purchase_of_680_joins():
    assert joining_cause(68_000, 68_000) == "single_purchase"


def test_1000_cumulative_within_12_months_joins():
    assert joining_cause(10_000, 100_000) == "cumulative"
    assert joining_cause(10_000, 99_999) is None


def test_joining_uses_counted_spend_so_special_price_lines_do_not_qualify():
    priced = price_purchase([line(68_000, special_price=True)], member(None), DAY)
    assert priced.paid_total_fen == 68_000
    assert joining_cause(priced.spend_counted_fen, priced.spend_counted_fen) is None
    priced = price_purchase([line(68_000)], member(None), DAY)
    assert joining_cause(priced.spend_counted_fen, priced.spend_counted_fen) == "single_purchase"


def test_joining_threshold_is_configurable():
    cheaper = dataclasses.replace(S, join_single_purchase_fen=50_000)
    assert joining_cause(50_000, 50_000, cheaper) == "single_purchase"


# --- cards ------------------------------------------------------------------


def test_card_number_format_and_parse():
    assert format_card_number("755", 243) == "755 00243"
    for raw in ("755 00243", "75500243", "755-00243", " ７５５ ００２４３ "):
        assert parse_card_number(raw) == ("755", 243)
    for bad in ("755 0024", "755 00000", "abc", "", "1234567 00001"):
        assert parse_card_number(bad) is None
    for region, seq in (("75a", 1), ("755", 0), ("755", 100_000), ("755", True)):
        with pytest.raises(ValueError):
            format_card_number(region, seq)


@given(st.from_regex(r"[0-9]{1,6}", fullmatch=True), st.integers(1, 99_999))
def test_card_number_round_trips(region, seq):
    assert parse_card_number(format_card_number(region, seq)) == (region, seq)


def test_card_is_valid_for_two_years_from_issue():
    expires = card_expires_on(date(2025, 3, 10))
    assert expires == date(2027, 3, 10)
    assert card_is_active(expires, date(2027, 3, 9))
    assert not card_is_active(expires, date(2027, 3, 10))


def test_renewal_reactivates_an_expired_card_from_today():
    assert renew_card(date(2027, 3, 10), date(2027, 5, 1)) == date(2029, 5, 1)


def test_early_renewal_extends_from_the_current_expiry():
    assert renew_card(date(2027, 3, 10), date(2027, 2, 1)) == date(2029, 3, 10)


# --- tiers ------------------------------------------------------------------


def test_silver_at_exactly_10000_points():
    d = evaluate_tier(Tier.REGULAR, 10_000, 0, at_validity_end=False, settings=S)
    assert (d.tier, d.changed, d.cause) == (Tier.SILVER, True, TierCause.UPGRADE)
    assert evaluate_tier(Tier.REGULAR, 9_999, 0, at_validity_end=False).tier is Tier.REGULAR


def test_silver_at_10000_yuan_spend():
    assert evaluate_tier(Tier.REGULAR, 0, 1_000_000, at_validity_end=False).tier is Tier.SILVER
    assert evaluate_tier(Tier.REGULAR, 0, 999_999, at_validity_end=False).tier is Tier.REGULAR


def test_gold_at_50000_points_or_20000_yuan():
    """Seed 004: "银卡积分达50000分可晋级为金卡"; seed 002 (始祖鸟): "一年消费累计满20000元,VIP银卡可升级为金卡"."""
    assert evaluate_tier(Tier.REGULAR, 50_000, 0, at_validity_end=False).tier is Tier.GOLD
    assert evaluate_tier(Tier.SILVER, 0, 2_000_000, at_validity_end=False).tier is Tier.GOLD
    assert evaluate_tier(Tier.SILVER, 49_999, 1_999_999, at_validity_end=False).tier is Tier.SILVER


def test_platinum_is_never_reached_automatically():
    d = evaluate_tier(Tier.GOLD, 10**9, 10**12, at_validity_end=False)
    assert (d.tier, d.changed, d.cause) == (Tier.GOLD, False, None)


def test_platinum_is_never_left_automatically():
    d = evaluate_tier(Tier.PLATINUM, 0, 0, at_validity_end=True)
    assert (d.tier, d.changed) == (Tier.PLATINUM, False)


def test_no_downgrade_before_the_end_of_validity():
    d = evaluate_tier(Tier.GOLD, 0, 0, at_validity_end=False)
    assert (d.tier, d.changed, d.cause) == (Tier.GOLD, False, None)


def test_downgrade_at_validity_end_when_spend_is_below_standard():
    d = evaluate_tier(Tier.GOLD, 0, 1_200_000, at_validity_end=True)
    assert (d.tier, d.changed, d.cause) == (Tier.SILVER, True, TierCause.DOWNGRADE)
    assert evaluate_tier(Tier.GOLD, 0, 0, at_validity_end=True).tier is Tier.REGULAR


def test_validity_end_keeps_a_tier_whose_spend_standard_is_met():
    d = evaluate_tier(Tier.GOLD, 0, 2_000_000, at_validity_end=True)
    assert (d.tier, d.changed, d.cause) == (Tier.GOLD, False, None)


def test_validity_end_never_falls_below_what_points_earn_now():
    d = evaluate_tier(Tier.GOLD, 50_000, 0, at_validity_end=True)
    assert (d.tier, d.changed) == (Tier.GOLD, False)


def test_floor_stops_a_downgrade():
    d = evaluate_tier(Tier.GOLD, 0, 0, at_validity_end=True, floor=Tier.SILVER)
    assert (d.tier, d.changed, d.cause) == (Tier.SILVER, True, TierCause.FLOOR)
    d = evaluate_tier(Tier.SILVER, 0, 0, at_validity_end=True, floor=Tier.SILVER)
    assert (d.tier, d.changed, d.cause) == (Tier.SILVER, False, TierCause.FLOOR)


def test_ceiling_caps_an_upgrade():
    d = evaluate_tier(Tier.REGULAR, 60_000, 0, at_validity_end=False, ceiling=Tier.SILVER)
    assert (d.tier, d.changed, d.cause) == (Tier.SILVER, True, TierCause.CEILING)


def test_floor_above_ceiling_is_refused():
    with pytest.raises(ValueError):
        evaluate_tier(Tier.SILVER, 0, 0, at_validity_end=False, floor=Tier.GOLD, ceiling=Tier.SILVER)


def test_tier_thresholds_are_configurable():
    easy = dataclasses.replace(S, silver_points=5_000)
    assert evaluate_tier(Tier.REGULAR, 5_000, 0, at_validity_end=False, settings=easy).tier is Tier.SILVER


@given(st.sampled_from(list(Tier)), st.integers(0, 100_000), st.integers(0, 10_000_000), st.booleans(),
       st.sampled_from([None, *Tier]), st.sampled_from([None, *Tier]))
def test_tier_decision_respects_bounds_and_direction(current, points, spend, at_end, floor, ceiling):
    if floor is not None and ceiling is not None and floor > ceiling:
        return
    d = evaluate_tier(current, points, spend, at_validity_end=at_end, floor=floor, ceiling=ceiling)
    assert d.changed == (d.tier != current)
    if floor is not None:
        assert d.tier >= floor
    if ceiling is not None:
        assert d.tier <= ceiling
    if floor is None and ceiling is None:
        if not at_end:
            assert d.tier >= current
        if current is not Tier.PLATINUM:
            assert d.tier is not Tier.PLATINUM


def test_membership_lapses_after_24_months_without_a_purchase():
    last = date(2023, 5, 10)
    assert not membership_lapsed(last, date(2025, 5, 9))
    assert membership_lapsed(last, date(2025, 5, 10))
    assert not membership_lapsed(None, date(2025, 5, 10))


# --- discounts and pricing ----------------------------------------------------


def test_regular_members_get_no_tier_discount():
    p = price_purchase([line(10_000)], member(Tier.REGULAR), DAY)
    assert (p.paid_total_fen, p.discount_reason) == (10_000, DiscountReason.NONE)


def test_silver_pays_95_percent():
    p = price_purchase([line(10_000)], member(Tier.SILVER), DAY)
    assert (p.paid_total_fen, p.discount_total_fen, p.discount_reason) == (9_500, 500, DiscountReason.TIER)


def test_gold_discount_on_a_1234_56_line():
    p = price_purchase([line(123_456)], member(Tier.GOLD), DAY)
    (pl,) = p.lines
    # 123456 x 880 / 1000 = 108641.28 -> 108641 fen
    assert (pl.list_fen, pl.paid_fen, pl.discount_fen) == (123_456, 108_641, 14_815)
    assert p.rate_per_mille == 880


def test_platinum_pays_75_percent():
    assert price_purchase([line(10_000)], member(Tier.PLATINUM), DAY).paid_total_fen == 7_500


def test_paid_amount_rounds_half_up_in_integer_fen():
    assert round_half_up_div(9_500, 1000) == 10 and round_half_up_div(9_499, 1000) == 9
    # 30 fen at 9.5折 = 28.5 -> 29; 10 fen = 9.5 -> 10
    assert price_purchase([line(30)], member(Tier.SILVER), DAY).paid_total_fen == 29
    assert price_purchase([line(10)], member(Tier.SILVER), DAY).paid_total_fen == 10


def test_discount_applies_to_the_line_total_not_the_unit_price():
    # 3 x 0.10 yuan at 9.5折: 30 x 950 / 1000 = 28.5 -> 29 (per unit would give 3 x 10 = 30)
    assert price_purchase([line(10, quantity=3)], member(Tier.SILVER), DAY).paid_total_fen == 29


def test_birthday_8_5_beats_gold_8_8():
    m = member(Tier.GOLD, birthday=date(1980, 6, 10))
    p = price_purchase([line(10_000)], m, DAY)
    assert (p.paid_total_fen, p.discount_reason, p.rate_per_mille) == (8_500, DiscountReason.BIRTHDAY, 850)


def test_platinum_7_5_beats_birthday():
    m = member(Tier.PLATINUM, birthday=date(1980, 6, 10))
    p = price_purchase([line(10_000)], m, DAY)
    assert (p.paid_total_fen, p.discount_reason) == (7_500, DiscountReason.TIER)


def test_regular_member_gets_the_birthday_discount():
    p = price_purchase([line(10_000)], member(Tier.REGULAR, birthday=date(1990, 6, 10)), DAY)
    assert (p.paid_total_fen, p.discount_reason) == (8_500, DiscountReason.BIRTHDAY)


def test_birthday_is_the_same_month_and_day():
    assert birthday_applies(date(1990, 6, 10), date(2025, 6, 10))
    assert not birthday_applies(date(1990, 6, 10), date(2025, 6, 11))
    assert not birthday_applies(None, DAY)


def test_feb_29_birthday_counts_on_feb_28_in_non_leap_years():
    leapling = date(2000, 2, 29)
    assert birthday_applies(leapling, date(2025, 2, 28))
    assert not birthday_applies(leapling, date(2025, 3, 1))
    assert birthday_applies(leapling, date(2024, 2, 29))
    assert not birthday_applies(leapling, date(2024, 2, 28))


def test_special_price_line_gets_no_discount_and_no_points():
    p = price_purchase([line(10_000, special_price=True), line(10_000)], member(Tier.GOLD), DAY)
    special, normal = p.lines
    assert (special.paid_fen, special.discount_fen, special.discounted, special.earns) == (10_000, 0, False, False)
    assert normal.paid_fen == 8_800
    assert p.points_earned == 88 * 3
    assert p.spend_counted_fen == 8_800


def test_only_special_price_lines_means_no_discount_reason():
    p = price_purchase([line(10_000, special_price=True)], member(Tier.GOLD), DAY)
    assert (p.discount_reason, p.points_earned, p.spend_counted_fen) == (DiscountReason.NONE, 0, 0)


def test_group_buy_line_earns_no_points_but_counts_as_spend():
    """Seed 004: "团购业务、特例商品不参与积分" excludes group buys from points only; seed 000's
    plan exists "to strengthen the management of group buying customers"."""
    p = price_purchase([line(10_000, group_buy=True)], member(Tier.SILVER), DAY)
    assert (p.points_earned, p.spend_counted_fen) == (0, 9_500)
    off = dataclasses.replace(S, group_buy_counts_toward_tiers=False)
    assert price_purchase([line(10_000, group_buy=True)], member(Tier.SILVER), DAY, off).spend_counted_fen == 0
    assert p.paid_total_fen == 9_500  # discounted: the seed excludes only special-price lines
    no_stacking = dataclasses.replace(S, discount_group_buy=False)
    assert price_purchase([line(10_000, group_buy=True)], member(Tier.SILVER), DAY,
                          no_stacking).paid_total_fen == 10_000


def test_frozen_member_gets_no_discount_and_earns_nothing():
    m = member(Tier.GOLD, frozen=True, birthday=DAY)
    p = price_purchase([line(100_000)], m, DAY)
    assert (p.paid_total_fen, p.discount_reason, p.points_earned, p.spend_counted_fen) == (
        100_000, DiscountReason.NONE, 0, 0)


def test_frozen_members_spend_counts_when_the_setting_says_so():
    counting = dataclasses.replace(S, frozen_spend_counts=True)
    m = MemberState.for_member(Tier.GOLD, frozen=True, settings=counting)
    p = price_purchase([line(100_000)], m, DAY, counting)
    assert (p.points_earned, p.spend_counted_fen) == (0, 100_000)
    assert MemberState.for_member(Tier.GOLD, frozen=True).frozen_spend_counts is False


def test_non_member_pays_list_price_earns_nothing_and_spend_counts():
    p = price_purchase([line(70_000)], member(None, birthday=DAY), DAY)
    assert (p.paid_total_fen, p.points_earned, p.spend_counted_fen) == (70_000, 0, 70_000)


@pytest.mark.parametrize("tier, paid, points", [
    (Tier.REGULAR, 12_345, 123 * 1),    # list price
    (Tier.SILVER, 11_728, 117 * 2),     # 12345 x 0.95 = 11727.75 -> 11728
    (Tier.GOLD, 10_864, 108 * 3),       # 12345 x 0.88 = 10863.6 -> 10864
    (Tier.PLATINUM, 9_259, 92 * 4),     # 12345 x 0.75 = 9258.75 -> 9259
])
def test_points_rate_per_whole_yuan_paid(tier, paid, points):
    p = price_purchase([PurchaseLine("x", 1, 12_345)], member(tier), DAY)
    assert (p.paid_total_fen, p.points_earned) == (paid, points)


def test_fractions_of_a_yuan_earn_nothing():
    assert price_purchase([line(99)], member(Tier.REGULAR), DAY).points_earned == 0
    assert price_purchase([line(199)], member(Tier.REGULAR), DAY).points_earned == 1


def test_points_floor_on_the_eligible_total_not_per_line():
    # two lines of 0.60 yuan: per line 0 + 0, on the total 1.20 -> 1 point
    p = price_purchase([line(60), line(60)], member(Tier.REGULAR), DAY)
    assert p.points_earned == 1


def test_points_are_on_the_paid_amount_after_discount():
    p = price_purchase([line(100_000)], member(Tier.GOLD), DAY)  # pays 880.00
    assert p.points_earned == 880 * 3


@pytest.mark.parametrize("lines, field", [
    ([], "lines"),
    ([PurchaseLine("x", 0, 100)], "lines[0].quantity"),
    ([PurchaseLine("x", 1, 100), PurchaseLine("y", 1, -1)], "lines[1].unit_price_fen"),
    ([PurchaseLine("x", 1, 1.5)], "lines[0].unit_price_fen"),       # never float
    ([PurchaseLine("x", True, 100)], "lines[0].quantity"),
    ([PurchaseLine(" ", 1, 100)], "lines[0].product"),
])
def test_invalid_purchases_name_the_field(lines, field):
    with pytest.raises(InvalidPurchase) as err:
        price_purchase(lines, member(Tier.GOLD), DAY)
    assert isinstance(err.value, ValueError)
    assert err.value.field == field


def test_zero_price_line_is_allowed():
    assert price_purchase([line(0)], member(Tier.GOLD), DAY).paid_total_fen == 0


@given(st.lists(st.tuples(st.integers(1, 20), st.integers(0, 10**7), st.booleans(), st.booleans()),
                min_size=1, max_size=8),
       st.sampled_from([None, *Tier]), st.booleans(), st.booleans())
def test_pricing_totals_are_consistent_integers(raw, tier, frozen, birthday):
    lines = [PurchaseLine(f"p{i}", q, price, sp, gb) for i, (q, price, sp, gb) in enumerate(raw)]
    m = member(tier, frozen=frozen, birthday=DAY if birthday else None)
    p = price_purchase(lines, m, DAY)
    assert p.paid_total_fen + p.discount_total_fen == p.list_total_fen
    for pl in p.lines:
        assert 0 <= pl.paid_fen <= pl.list_fen and isinstance(pl.paid_fen, int)
        if pl.line.special_price:
            assert pl.paid_fen == pl.list_fen
    assert p.spend_counted_fen <= p.paid_total_fen
    rate, _ = discount_for(m, DAY)
    if tier is None or frozen:
        assert p.points_earned == 0 and rate == 1000


# --- referral, expiry, redemption, missed points --------------------------------


def test_referral_points_by_referred_tier():
    assert [referral_points(t) for t in (Tier.REGULAR, Tier.SILVER, Tier.GOLD, Tier.PLATINUM)] == [
        100, 300, 500, 800]


def test_points_expire_two_years_after_they_were_earned():
    assert points_expire_on(date(2023, 4, 1)) == date(2025, 4, 1)


def test_redemption_is_always_open_by_default():
    assert all(redemption_open(date(2025, m, 1)) for m in range(1, 13))


def test_redemption_windows_march_and_august():
    windows = dataclasses.replace(S, redemption_months=(3, 8))
    assert redemption_open(date(2025, 3, 31), windows)
    assert redemption_open(date(2025, 8, 1), windows)
    assert not redemption_open(date(2025, 4, 1), windows)
    assert not redemption_open(date(2025, 2, 28), windows)


def test_catalogue_items():
    assert catalogue_item("gift-100").points == 1_000
    assert catalogue_item("coupon-50").points == 500
    with pytest.raises(InvalidField) as err:
        catalogue_item("yacht")
    assert err.value.field == "item"


def test_missed_points_can_be_claimed_within_30_days():
    bought = date(2025, 1, 10)
    assert missed_points_claimable(bought, bought)
    assert missed_points_claimable(bought, bought + timedelta(days=30))
    assert not missed_points_claimable(bought, bought + timedelta(days=31))
    assert not missed_points_claimable(bought, bought - timedelta(days=1))


def test_catalogue_items_must_cost_points_and_be_valued_in_fen():
    from portal.membership.rules import RedemptionItem
    for item in (RedemptionItem("free", "Free", 0, 100), RedemptionItem("f", "Float", 10, 99.5)):
        with pytest.raises(ValueError):
            dataclasses.replace(S, catalogue=(item,))
    with pytest.raises(ValueError):
        dataclasses.replace(S, catalogue=(RedemptionItem("a", "A", 1, 1), RedemptionItem("a", "B", 2, 2)))
