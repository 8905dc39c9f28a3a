"""Demo member events: the 755 region's plan for the year (grace leads it), with past events
(registrations, a waiting list, check-ins with points, satisfaction, cost: their summaries) and
coming ones open for registration. Made through the events' own use cases, each on its day.

Only into a database without any event plan (a second `portal demo` changes nothing).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock
from .accounts import service as accounts
from .accounts.models import User
from .customers.service import InvalidInput
from .events import invitations, planning, registrations
from .events.models import EventPlan, EventRegistration
from .membership import members
from .membership.models import Membership
from .membership.rules import PROGRAMME_TZ, programme_today
from .org.models import OrgUnit
from .policy.scope import subtree_range
from .vault import Vault

ALL_TIERS = ["regular", "silver", "gold", "platinum"]
# days from today, kind, theme, place, places, budget (yuan), points, tiers, actual cost (yuan)
EVENTS = (
    (-75, "launch", "春季新品发布会", "深圳湾万象城 三楼宴会厅", 6, "30000", 200, ALL_TIERS, "28650.00"),
    (-40, "birthday_party", "当月会员生日会", "前海会所", 4, "8000", 100, ALL_TIERS, "8420.50"),
    (-12, "experience", "名酒品鉴体验会", "福田香格里拉 酒廊", 5, "15000", 150, ["silver", "gold", "platinum"],
     "12800.00"),
    (10, "promotion", "会员专享促销日", "南山旗舰店", 30, "5000", 50, ALL_TIERS, None),
    (25, "travel", "会员黄山之旅", "安徽黄山", 12, "60000", 300, ["gold", "platinum"], None),
    (40, "birthday_party", "下月会员生日会", "前海会所", 20, "8000", 100, ALL_TIERS, None),
)


def _actor(s: Session, username: str):
    user = s.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        return None
    return accounts.actor_for(user, s.get(OrgUnit, user.unit_id))


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), PROGRAMME_TZ).astimezone(timezone.utc)


def _local(moment: datetime) -> str:
    return moment.astimezone(PROGRAMME_TZ).strftime("%Y-%m-%dT%H:%M")


def seed(s: Session, vault: Vault, summary) -> None:
    if s.scalar(select(EventPlan.id).limit(1)) is not None:
        return
    grace, cathy = _actor(s, "grace"), _actor(s, "cathy")
    region = s.scalar(select(OrgUnit).where(OrgUnit.code == "755"))
    if grace is None or cathy is None or region is None:
        summary.warnings.append("no member events demo: grace, cathy or the 755 region is missing")
        return
    lo, hi = subtree_range(region.path)
    people = list(s.scalars(select(Membership).where(Membership.unit_path >= lo, Membership.unit_path < hi,
                                                     Membership.status == "active").order_by(Membership.id)))
    today = programme_today()
    previous = getattr(clock, "_override", None)
    plans: dict[int, int] = {}
    try:
        for offset, kind, theme, place, places, budget, points, tiers, cost in EVENTS:
            day = today + timedelta(days=offset)
            starts, ends = _at(day, 14), _at(day, 17)
            opens = starts - timedelta(days=7)
            clock.set_now(min(opens - timedelta(days=8), _now(previous)))
            if day.year not in plans:
                plans[day.year] = planning.create_plan(
                    s, grace, unit_code="755", year=str(day.year), budget="400000",
                    note="深圳大区年度会员活动计划（演示）").id
            ev = planning.add_event(s, grace, plans[day.year], {
                "kind": kind, "theme": theme, "place": place, "content": "会员活动（演示数据）",
                "starts_at": _local(starts), "ends_at": _local(ends), "registration_opens_at": _local(opens),
                "capacity": str(places), "budget": budget, "points": str(points)}, tiers)
            if offset > 0 and offset > 15:
                continue  # far ahead: not even invited yet
            clock.set_now(min(opens - timedelta(days=7), _now(previous)))
            invitations.send_invitations(s, grace, ev.id)
            invited = [m for m in people if m.tier in tiers]
            for i, m in enumerate(invited[:places + 1]):  # one more than the places: a waiting list
                clock.set_now(min(opens + timedelta(hours=1 + i), _now(previous)) if offset < 0
                              else _now(previous))
                if offset > 0 and i >= 3:
                    break
                card = members.current_card(s, members.primary_account(s, m).id)
                try:
                    registrations.register(s, cathy, ev.id, card.number)
                except InvalidInput:  # a member whose window is not open yet: leave them out
                    continue
            if offset > 0:
                continue
            clock.set_now(starts + timedelta(minutes=30))
            regs = list(s.scalars(select(EventRegistration).where(
                EventRegistration.event_id == ev.id, EventRegistration.status == "registered")
                .order_by(EventRegistration.id)))
            for i, reg in enumerate(regs[:-1] if len(regs) > 2 else regs):  # one no-show
                registrations.check_in(s, cathy, ev.id, reg.id)
                registrations.record_satisfaction(s, cathy, ev.id, reg.id, str(5 - i % 3))
            clock.set_now(ends + timedelta(days=2))
            planning.record_cost(s, grace, ev.id, cost)
    finally:
        clock.set_now(previous)



def _now(previous):
    return previous if previous is not None else datetime.now(timezone.utc)
