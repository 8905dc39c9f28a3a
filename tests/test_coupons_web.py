"""Coupons, points as money and the birthday check through the pages, the POS API and the CSV
import (issue #14, items 6, 11 and 12); the domain rules are tested in test_coupons.py and
test_points_money.py. alice sells, bob leads her team; every story customer was born on 7 March."""
from __future__ import annotations

import html

from click.testing import CliRunner
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.membership import coupon_rules, coupons, points
from portal.membership.models import Coupon, CouponCampaign, Purchase

from .browser import post, signed_in
from .test_membership_flows import at, enrolled, fid_of, set_tier
from .test_pos_api import auth, issue, sale


def campaign(db, story, **kw):
    terms = dict(kind="amount", amount_fen=5_000, valid_from=at(2026, 3, 10).date(),
                 valid_until=at(2026, 3, 31).date(), tiers=("regular", "silver", "gold", "platinum"))
    with db.write() as s:
        coupons.issue_campaign(s, story.actor(db, "bob"), name="Spring", reason="spring campaign for members",
                               terms=coupon_rules.CouponTerms(**{**terms, **kw}))
    with db.read() as s:
        return s.scalar(select(Coupon.code).order_by(Coupon.id.desc()))


def test_bob_issues_a_campaign_on_the_coupons_page_and_sees_its_figures(client, db, story, clock_at):
    clock_at(at(2026, 3, 10))
    enrolled(db, story)
    signed_in(client, "bob")
    form = {"name": "春季回馈", "kind": "amount", "amount": "50", "min_spend": "500", "valid_from": "2026-03-10",
            "valid_until": "2026-03-31", "tier_regular": "1", "reason": "spring campaign for members"}
    r = post(client, "/coupons/campaigns", {**form, "valid_until": "2026-03-01", "amount": ""}, from_page="/coupons")
    assert r.status_code == 400
    assert 'data-error="valid_until"' in r.text and 'data-error="amount"' in r.text
    r = post(client, "/coupons/campaigns", form, from_page="/coupons")
    assert r.status_code == 303 and r.headers["location"] == "/coupons?done=issued-1"
    page = client.get("/coupons")
    assert "春季回馈" in page.text and 'data-testid="campaigns"' in page.text
    with db.read() as s:
        c = s.scalar(select(CouponCampaign))
        assert (c.amount_fen, c.min_spend_fen, c.tiers, c.issued_count) == (5_000, 50_000, "regular", 1)


def test_the_purchase_form_takes_a_coupon_and_points_and_the_file_lists_the_coupon(client, db, story, clock_at):
    clock_at(at(2026, 3, 9))
    number = enrolled(db, story)
    with db.write() as s:
        points.adjust_points(s, story.actor(db, "bob"), number, 1_000, "opening balance for the test")
    clock_at(at(2026, 3, 10))
    code = campaign(db, story)
    fid = fid_of(story)
    signed_in(client, "alice")
    assert coupon_rules.format_code(code) in client.get(f"/customers/{fid}").text
    r = post(client, f"/customers/{fid}/purchases/new", {
        "receipt_no": "WEB-C1", "purchased_on": "2026-03-10", "payment_method": "cash", "product_1": "茅台",
        "qty_1": "1", "price_1": "1000.00", "coupon_code": coupon_rules.format_code(code), "points_used": "500"},
        from_page=f"/customers/{fid}/purchases/new")
    assert r.status_code == 303, r.text[:500]  # recorded: POST/redirect/GET to what was recorded
    r = client.get(r.headers["location"])
    assert 'data-testid="coupon-discount"' in r.text and 'data-testid="points-paid"' in r.text
    r = post(client, f"/customers/{fid}/purchases/new", {
        "receipt_no": "WEB-C2", "purchased_on": "2026-03-10", "payment_method": "cash", "product_1": "茅台",
        "qty_1": "1", "price_1": "1000.00", "coupon_code": code}, from_page=f"/customers/{fid}/purchases/new")
    assert r.status_code == 400 and 'data-error-for="coupon_code"' in r.text
    with db.read() as s:
        p = s.scalar(select(Purchase).where(Purchase.receipt_no == "WEB-C1"))
        assert (p.coupon_discount_fen, p.points_paid, p.points_paid_fen) == (5_000, 500, 5_000)


def test_a_wrong_id_at_the_till_on_the_birthday_sells_at_the_normal_price_and_is_audited(client, db, story,
                                                                                        clock_at):
    """Seed 002: "购买时请顾客出示有效VIP卡及身份证,未带身份证可报手机号码"."""
    clock_at(at(2026, 3, 7))
    enrolled(db, story)
    fid = fid_of(story)
    signed_in(client, "alice")
    r = post(client, f"/customers/{fid}/purchases/new", {
        "receipt_no": "WEB-B1", "purchased_on": "2026-03-07", "payment_method": "cash", "product_1": "茅台",
        "qty_1": "1", "price_1": "1000.00", "holder_check": "13900000000"}, from_page=f"/customers/{fid}/purchases/new")
    assert r.status_code == 303 and "13900000000" not in r.headers["location"]
    r = client.get(r.headers["location"])
    assert 'data-testid="birthday-check"' in r.text
    assert "13900000000" not in r.text
    with db.read() as s:
        assert s.scalar(select(Purchase.paid_total_fen).where(Purchase.receipt_no == "WEB-B1")) == 100_000
        assert s.scalar(select(AuditEvent.outcome).where(AuditEvent.action == "member.birthday_check")) == "denied"


def test_a_gold_members_points_become_cash_on_the_file(client, db, story, clock_at):
    clock_at(at(2026, 3, 9))
    number = enrolled(db, story)
    with db.write() as s:
        points.adjust_points(s, story.actor(db, "bob"), number, 2_000, "opening balance for the test")
    set_tier(db, story, "bob", fid_of(story), tier="gold", reason="long-standing client")
    clock_at(at(2026, 3, 10))
    fid = fid_of(story)
    signed_in(client, "alice")
    assert 'action="/customers/%s/points/cash"' % fid in html.unescape(client.get(f"/customers/{fid}").text)
    r = post(client, f"/customers/{fid}/points/cash", {"card": number, "points": "5000"}, from_page=f"/customers/{fid}")
    assert r.status_code == 400 and 'data-error-for="points"' in r.text
    r = post(client, f"/customers/{fid}/points/cash", {"card": number, "points": "1000"}, from_page=f"/customers/{fid}")
    assert r.status_code == 303
    page = client.get(f"/customers/{fid}").text
    assert "¥100.00" in page


def test_a_till_uses_a_coupon_once_and_pays_with_points(client, db, story, clock_at):
    clock_at(at(2026, 3, 9))
    number = enrolled(db, story)
    with db.write() as s:
        points.adjust_points(s, story.actor(db, "bob"), number, 1_000, "opening balance for the test")
    clock_at(at(2026, 3, 10))
    code = campaign(db, story, amount_fen=1_000)
    _tid, key = issue(db)
    r = client.post("/api/v1/purchases", json=sale("API-C1", number, coupon_code=code.lower(), points_used=100),
                    headers=auth(key, "c1"))
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["coupon_discount_fen"], out["points_paid"], out["points_paid_yuan"]) == (1_000, 100, "10.00")
    r = client.post("/api/v1/purchases", json=sale("API-C2", number, coupon_code=code), headers=auth(key, "c2"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "coupon.used"


def test_the_csv_import_takes_a_coupon_and_points(settings, db, story, clock_at, tmp_path, monkeypatch):
    clock_at(at(2026, 3, 9))
    number = enrolled(db, story)
    with db.write() as s:
        points.adjust_points(s, story.actor(db, "bob"), number, 1_000, "opening balance for the test")
    clock_at(at(2026, 3, 10))
    code = campaign(db, story)
    f = tmp_path / "till.csv"
    f.write_text("receipt_no,date,card_number,product,quantity,unit_price,payment_method,coupon_code,points_used\n"
                 f"CSV-C1,2026-03-10,{number},茅台,1,1000,现金,{coupon_rules.format_code(code)},300\n", encoding="utf-8")
    from portal.cli import main
    monkeypatch.setenv("PORTAL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PORTAL_KEY_FILE", str(settings.key_file))
    monkeypatch.delenv("PORTAL_DEBUG", raising=False)
    r = CliRunner().invoke(main, ["purchases", "import", str(f), "--as", "alice"])
    assert r.exit_code == 0, r.output
    with db.read() as s:
        p = s.scalar(select(Purchase).where(Purchase.receipt_no == "CSV-C1"))
        assert (p.coupon_discount_fen, p.points_paid) == (5_000, 300)
        assert s.scalar(select(Coupon.status).where(Coupon.code == code)) == "used"
