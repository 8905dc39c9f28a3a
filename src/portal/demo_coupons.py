"""The demo's coupons and points as money (seed 001): bob's spring campaign to his team's members,
one coupon used at the till, a purchase partly paid with points, a gold member's points
exchanged for cash, and this week's birthday coupons; made through the use cases, dated."""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from .accounts import service as accounts
from .accounts.models import Role, User
from .org.models import OrgUnit
from .vault import Vault

if TYPE_CHECKING:
    from .demo import DemoSummary


def _actor(s: Session, username: str, role: str):
    user = s.scalar(select(User).where(User.username == username, User.role == role))
    return accounts.actor_for(user, s.get(OrgUnit, user.unit_id)) if user is not None and user.is_active else None


def seed(s: Session, vault: Vault, summary: DemoSummary) -> None:
    """Only into a demo programme without coupons (a second run changes nothing)."""
    from .demo_programme import GUOJIAO, MOUTAI, WULIANGYE, _line, _Till
    from .membership import coupon_rules, coupons, members, points
    from .membership.models import Coupon, CouponCampaign, Membership
    from .membership.rules import programme_today

    if s.scalar(select(CouponCampaign.id).limit(1)) is not None:
        return
    bob, alice = _actor(s, "bob", Role.LEADER), _actor(s, "alice", Role.SALESPERSON)
    erin = _actor(s, "erin", Role.ADMIN)
    if bob is None or alice is None:
        return
    gold = s.scalar(select(Membership).where(Membership.owner_id == alice.user_id, Membership.tier == "gold",
                                             Membership.status == "active").order_by(Membership.id))
    if gold is None:
        summary.warnings.append("no coupon demo: alice has no gold member")
        return
    till = _Till(s, vault, programme_today())
    today = till.today

    def number() -> str:
        return members.current_card(s, members.primary_account(s, gold).id).number

    def spring() -> None:
        terms = coupon_rules.CouponTerms(kind="amount", amount_fen=5_000, min_spend_fen=50_000,
                                         valid_from=till.day, valid_until=today + timedelta(days=20),
                                         tiers=("regular", "silver", "gold", "platinum"))
        coupons.issue_campaign(s, bob, name="春季会员回馈 ¥50", terms=terms, reason="春季回馈：满500减50，团队全体会员")

    def vip() -> None:
        terms = coupon_rules.CouponTerms(kind="discount", rate_per_mille=900, min_spend_fen=100_000,
                                         valid_from=till.day, valid_until=today + timedelta(days=60),
                                         tiers=("gold", "platinum"))
        coupons.issue_campaign(s, erin, name="金卡白金卡 9折券", terms=terms, reason="高端会员专享：满1000打9折")

    def coupon_code() -> str:
        return s.scalar(select(Coupon.code).where(Coupon.membership_id == gold.id, Coupon.status == "issued",
                                                  Coupon.kind == "amount").order_by(Coupon.id))

    def sale_with(**extra):
        from .membership import purchases
        from .membership.outcomes import PurchaseRequest

        def step():
            till.receipts += 1
            purchases.record_purchase(s, vault, alice, PurchaseRequest(
                receipt_no=f"CPN{till.day:%Y%m%d}-{till.receipts:04d}", payment_method="cash",
                lines=(_line(MOUTAI, 1), _line(WULIANGYE, 1)) if "coupon_code" in extra else (_line(GUOJIAO, 1),),
                card_number=number(), **{k: v() if callable(v) else v for k, v in extra.items()}))
        return step

    till.at(9, spring)
    if erin is not None:
        till.at(8, vip)
    till.at(6, sale_with(coupon_code=coupon_code))          # ¥50 off after the gold discount
    till.at(4, sale_with(points_used=2_000))                 # ¥200 of it paid with points
    till.at(2, lambda: points.exchange_for_cash(s, alice, number(), 1_000))  # gold: 10 points = ¥1
    for days_ago in range(6, -1, -1):                        # this week's birthday coupons
        till.at(days_ago, lambda: coupons.issue_birthday_coupons(s, vault, till.day))
    till.run()
    s.flush()
    summary.notes.append(f"Coupons: bob's spring campaign and erin's 9折 campaign on /coupons; card {number()} "
                         "used one at the till, paid part of a purchase with 2,000 points and exchanged "
                         "1,000 points for ¥100 in cash (its file's membership section lists its coupons).")
