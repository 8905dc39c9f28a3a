"""Settings profiles: a short member life under each seed business's programme (join, buy,
upgrade, birthday, redeem, expire), every figure checked against the seed's words.

The story's customers were all born on 7 March 1990; alice sells, erin saves the version.
"""
from __future__ import annotations

import re
from datetime import date

from click.testing import CliRunner

from portal.cli import main
from portal.membership import jobs, points, profiles, programme

from .factories import id_number_of
from .test_membership_flows import account_of, at, buy, fid_of, membership


def start(db, story, clock_at, name: str, day: date) -> None:
    clock_at(at(day.year, day.month, day.day))
    with db.write() as s:
        programme.save_version(s, story.actor(db, "erin"), profiles.profile_settings(name, day),
                               f"start from the {name} profile")


def redeem(db, story, number: str, item: str):
    with db.write() as s:
        return points.redeem_points(s, story.actor(db, "alice"), number, item)


def test_every_profile_is_a_valid_programme():
    for p in profiles.PROFILES:
        assert profiles.profile_settings(p.name).effective_from == date(2000, 1, 1)
    assert profiles.profile_settings("liquor") == programme.DEFAULT_SETTINGS


def test_liquor_distributor_member_life(db, vault, story, clock_at):
    """Seed 002 (56饰 figures the distributor took): "一次性消费实付金额满680元" joins; seed 001:
    "銀卡會員每消費1元可獲得2個積分 ... 9.5折"; seed 004: "普通会员积分达10000分可晋级为银卡";
    birthday 8.5折; a ¥100 gift for 1,000 points; points valid two years."""
    start(db, story, clock_at, "liquor", date(2026, 1, 5))
    alice = story.actor(db, "alice")
    out = buy(db, vault, alice, "LQ-1", 680, customer=fid_of(story))
    assert out.joined and out.tier == "regular" and out.points_earned == 0
    card = out.card_number
    out = buy(db, vault, alice, "LQ-2", 10_000, card=card)  # ¥10,680 in 12 months: silver
    assert out.points_earned == 10_000 and out.tier_changed_to == "silver"
    clock_at(at(2026, 3, 7))  # the birthday: 8.5折 beats silver's 9.5折
    out = buy(db, vault, alice, "LQ-3", 1_000, card=card, holder_check=id_number_of(db, vault, fid_of(story)))
    assert out.paid_total_fen == 85_000 and out.discount_reason == "birthday" and out.points_earned == 1_700
    clock_at(at(2026, 3, 8))
    assert redeem(db, story, card, "gift-100").points == 1_000
    clock_at(at(2028, 1, 5))  # two years after the first points
    assert jobs.run_daily(db, date(2028, 1, 5)).points_expired == 9_000


def test_retail_56_member_life(db, vault, story, clock_at):
    """Seed 002 (56饰): "VIP会员...凭有效VIP会员卡,即可享受8.8折优惠(现正价产品)"; "生日当日凭身份证
    购买产品8折优惠"; "特价产品不参与折让"; joining by "一年内消费实付金额满1000元"."""
    start(db, story, clock_at, "retail-56", date(2026, 1, 5))
    alice = story.actor(db, "alice")
    assert not buy(db, vault, alice, "56-1", 600, customer=fid_of(story)).joined
    out = buy(db, vault, alice, "56-2", 400, customer=fid_of(story))  # ¥1,000 within a year
    assert out.joined and out.tier == "regular"
    card = out.card_number
    out = buy(db, vault, alice, "56-3", 1_000, card=card)  # a VIP pays 8.8折 on full-price goods
    assert out.paid_total_fen == 88_000 and out.points_earned == 880
    out = buy(db, vault, alice, "56-4", 1_000, card=card, special=True)  # special price: no discount
    assert out.paid_total_fen == 100_000 and out.points_earned == 0
    clock_at(at(2026, 3, 7))
    # the birthday: 8折, on the ID card (凭身份证)
    out = buy(db, vault, alice, "56-5", 1_000, card=card, holder_check=id_number_of(db, vault, fid_of(story)))
    assert out.paid_total_fen == 80_000 and out.discount_reason == "birthday"
    clock_at(at(2026, 3, 8))
    assert redeem(db, story, card, "coupon-50").points == 500
    assert account_of(db, card).points_balance == 880 + 800 - 500


def test_dental_clinic_member_life(db, vault, story, clock_at):
    """Seed 002 (口腔门诊 and the same seed's VIP patients): registered at the first visit;
    "白银级VIP患者:支出服务费3000元至4999元", "黄金级VIP患者:支出服务费5000元及以上";
    "100积分=1元"; "积分有效期限为一年,过期作废"."""
    start(db, story, clock_at, "dental", date(2026, 1, 5))
    alice = story.actor(db, "alice")
    out = buy(db, vault, alice, "DN-1", 200, customer=fid_of(story))  # the first paid visit
    assert out.joined and out.tier == "regular"
    card = out.card_number
    out = buy(db, vault, alice, "DN-2", 2_800, card=card)  # ¥3,000 of service fees: silver
    assert out.tier_changed_to == "silver" and out.points_earned == 2_800
    out = buy(db, vault, alice, "DN-3", 2_106, card=card)  # at 9.5折 pays ¥2,000.70: ¥5,000 counted
    assert out.tier_changed_to == "gold"
    clock_at(at(2026, 1, 6))
    red = redeem(db, story, card, "care-voucher-10")
    assert (red.points, red.value_fen) == (1_000, 1_000)  # 100 points = ¥1
    out = buy(db, vault, alice, "DN-4", 50, card=card, points_used=4_400)  # ... and pay: ¥44 at 8.8折
    assert (out.points_paid, out.points_paid_fen, out.points_earned) == (4_400, 4_400, 0)
    clock_at(at(2027, 1, 5))  # one year on: the rest of the first year's points lapse
    report = jobs.run_daily(db, date(2027, 1, 5))
    assert report.points_expired > 0 and account_of(db, card).points_balance == 0
    assert membership(db, fid_of(story)).tier in ("gold", "silver", "regular")


def test_portal_programme_profiles_lists_each_profile_with_its_figures():
    r = CliRunner().invoke(main, ["programme", "profiles"])
    assert r.exit_code == 0
    for p in profiles.PROFILES:
        assert f"{p.name}: {p.title}" in r.output
    assert re.search(r"gold_spend_fen +¥5000.00", r.output)
    assert re.search(r"points_payment_points_per_yuan +100", r.output)  # 100积分=1元


def test_portal_programme_apply_saves_a_profile_as_a_version(settings, db, clock_at):
    clock_at(at(2026, 1, 5))
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file)}
    r = CliRunner().invoke(main, ["programme", "apply", "dental", "--from", "2026-01-06",
                                  "--reason", "the clinic opens"], env=env)
    assert r.exit_code == 0, r.output
    with db.read() as s:
        assert programme.settings_on(s, date(2026, 1, 6)).gold_spend_fen == 500_000
    r = CliRunner().invoke(main, ["programme", "apply", "nope", "--from", "2026-01-07", "--reason", "x"], env=env)
    assert r.exit_code == 2 and "no profile" in r.output


def test_the_settings_page_fills_the_form_from_a_profile(client, story, clock_at):
    from .browser import signed_in
    clock_at(at(2026, 1, 5))
    signed_in(client, "erin")
    r = client.get("/programme/settings?profile=dental")
    assert r.status_code == 200 and 'data-testid="chosen-profile"' in r.text
    assert 'name="gold_spend_fen" type="text" inputmode="decimal" value="5000.00"' in r.text
    assert client.get("/programme/settings?profile=nope").status_code == 400
