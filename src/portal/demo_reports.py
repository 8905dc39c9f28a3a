"""Two years of purchases for the reports' demo: about 120 more members across the six salespeople,
with seasonal buying (Spring Festival, Mid-Autumn), tier upgrades when their spend crosses the
programme's thresholds, and bob's team report for last month sent upward.

Members join through the programme's own enrolment (cards, numbers, events, audit); their purchases
are written in bulk, each with its points credited to the ledger and the cached balance kept equal
to the entries (loading them one by one through the till would take minutes). Idempotent: once the
demo's purchases ("DR-" receipts) exist, nothing is added.
"""
from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import clock
from .accounts import service as accounts
from .accounts.models import User
from .customers.models import CustomerFile
from .org.models import OrgUnit
from .reports import card_rollup, class_window, rollup
from .vault import Vault

SEED = 20260113
PER_SALESPERSON = 20
SALESPEOPLE = ("alice", "amy", "charlie", "chris", "frank", "fiona")
PRODUCTS = (("茅台 飞天 53度 500ml", 149_900, 3), ("五粮液 第八代 500ml", 109_900, 4), ("国窖1573 500ml", 99_900, 3),
            ("汾酒 青花30 500ml", 89_900, 3), ("剑南春 水晶剑 500ml", 45_900, 5), ("拉菲传奇 波尔多红葡萄酒 750ml", 29_800, 4))
# Buying is seasonal: gifts before the Spring Festival (Jan/Feb) and Mid-Autumn (Sep) weigh most.
MONTH_WEIGHT = {1: 3, 2: 2, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1, 9: 3, 10: 1, 11: 1, 12: 2}
SH = timezone(timedelta(hours=8))


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(12), SH).astimezone(timezone.utc)


def seed(s: Session, vault: Vault, summary) -> None:
    from .membership import members
    from .membership.models import (CardAccount, Membership, MembershipApplication, PointsEntryRow, Purchase,
                                    PurchaseLineRow)
    from .membership.programme import settings_on
    from .membership.rules import programme_today
    from .membership.settings import Tier

    if s.scalar(select(Purchase.id).where(Purchase.receipt_no.like("DR-%")).limit(1)) is not None:
        return
    rng = random.Random(SEED)
    today = programme_today()
    start = today - timedelta(days=730)
    settings = settings_on(s, today)
    previous = getattr(clock, "_override", None)
    joined: list[tuple] = []
    try:
        for username in SALESPEOPLE:
            user = s.scalar(select(User).where(User.username == username, User.is_active))
            if user is None:
                continue
            actor = accounts.actor_for(user, s.get(OrgUnit, user.unit_id))
            files = list(s.scalars(select(CustomerFile).where(  # not the programme demo's members or applicants
                CustomerFile.owner_id == user.id, CustomerFile.id.not_in(select(Membership.customer_id)),
                CustomerFile.id.not_in(select(MembershipApplication.customer_id)))
                .order_by(CustomerFile.file_no).limit(PER_SALESPERSON)))
            plan = sorted(((start + timedelta(days=rng.randint(0, 660)), f) for f in files), key=lambda x: x[0])
            for day, f in plan:
                clock.set_now(_noon(day))
                if f.created_at > clock.now():
                    f.created_at = f.updated_at = clock.now() - timedelta(days=7)
                m = members.enrol(s, actor, f.id, on=day,
                                  cause=rng.choice(("single_purchase", "cumulative", "application", "application")))
                joined.append((actor, m, day))
        s.flush()
        seq = 0
        for actor, m, day in joined:
            account = s.scalar(select(CardAccount).where(CardAccount.membership_id == m.id))
            # Three kinds of buyer: a few big ones, regulars, and occasional buyers.
            kind = rng.choices(("big", "regular", "occasional"), weights=(1, 3, 6))[0]
            visits = {"big": rng.randint(10, 18), "regular": rng.randint(4, 9), "occasional": rng.randint(1, 3)}[kind]
            span = (today - day).days
            days = sorted({day} | {day + timedelta(days=d) for d in _seasonal_days(rng, day, span, visits - 1)})
            tier, points, spend_by_day = Tier.REGULAR, 0, []
            for when in days:
                seq += 1
                product, price, max_qty = rng.choice(PRODUCTS)
                qty = rng.randint(1, max_qty * (3 if kind == "big" else 1))
                list_fen = price * qty
                rate = settings.discount_per_mille(tier)
                paid = list_fen * rate // 1000
                earned = paid // 100 * settings.points_per_yuan(tier)
                p = Purchase(receipt_no=f"DR-{when:%Y%m%d}-{seq:05d}", customer_id=m.customer_id, membership_id=m.id,
                             account_id=account.id, card_number="", purchased_on=when,
                             payment_method=rng.choice(("cash", "card", "card", "wechat")), list_total_fen=list_fen,
                             discount_total_fen=list_fen - paid, paid_total_fen=paid, rate_per_mille=rate,
                             discount_reason="tier" if rate < 1000 else "none", points_earned=earned,
                             spend_counted_fen=paid, status="complete", recorded_by_id=actor.user_id,
                             created_at=_noon(when))
                s.add(p)
                s.flush()
                s.add(PurchaseLineRow(purchase_id=p.id, line_no=1, product=product, quantity=qty, unit_price_fen=price,
                                      list_fen=list_fen, paid_fen=paid))
                if earned:
                    s.add(PointsEntryRow(account_id=account.id, kind="earn", points=earned, on=when, ref=p.receipt_no,
                                         expires_on=when.replace(year=when.year + settings.points_validity_years)
                                         if not (when.month == 2 and when.day == 29) else when + timedelta(days=730),
                                         actor_id=actor.user_id, created_at=_noon(when)))
                    points += earned
                spend_by_day.append((when, paid))
                # The tier the last 12 months' spend earns (upgrades only, as the programme's rule).
                window = sum(v for d, v in spend_by_day if d > when - timedelta(days=365))
                earned_tier = (Tier.GOLD if window >= settings.gold_spend_fen else
                               Tier.SILVER if window >= settings.silver_spend_fen else Tier.REGULAR)
                if earned_tier > tier:
                    clock.set_now(_noon(when))
                    members.change_tier(s, actor, m, earned_tier, "upgrade", on=when)
                    tier = earned_tier
            m.last_purchase_on = days[-1]
            s.execute(update(CardAccount).where(CardAccount.id == account.id)
                      .values(points_balance=CardAccount.points_balance + points))
            summary.purchases_created += len(days)
        summary.members_created += len(joined)
    finally:
        clock.set_now(previous)
    s.flush()
    rollup.rebuild(s)  # the purchases above were written in bulk: the report summary from the facts
    card_rollup.rebuild(s)
    class_window.rebuild(s, today)
    _send_last_month(s)


def _seasonal_days(rng: random.Random, first: date, span: int, n: int) -> list[int]:
    """n offsets in (0, span], drawn by month weight."""
    if span <= 0 or n <= 0:
        return []
    out = []
    while len(out) < n:
        d = rng.randint(1, span)
        if rng.random() * 3 < MONTH_WEIGHT[(first + timedelta(days=d)).month]:
            out.append(d)
    return out


def _send_last_month(s: Session) -> None:
    """bob sends team 755A's report for last month, so the sent report can be read (by grace too)."""
    from .reports import monthly
    from .reports.filters import units_in_scope
    from .reports.models import SentMonthlyReport

    bob = s.scalar(select(User).where(User.username == "bob", User.role == "leader", User.is_active))
    if bob is None or s.scalar(select(SentMonthlyReport.id).limit(1)) is not None:
        return
    actor = accounts.actor_for(bob, s.get(OrgUnit, bob.unit_id))
    unit = next((u for u in units_in_scope(s, actor) if u.code == "755A"), None)
    if unit is None:
        return
    last = clock.now().astimezone(SH).date().replace(day=1) - timedelta(days=1)
    monthly.send(s, actor, unit, f"{last:%Y-%m}")
