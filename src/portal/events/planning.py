"""Planning member events: a leader's yearly plan per unit, its events, and who sees them.

Who sees an event: staff of the event's unit, of the units below it and above it (a company
event is on every salesperson's calendar; a team's event on its team's and its leaders').
Planning and managing are a leader's, for the units they lead (policy action ``event.manage``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from .. import clock
from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.service import InvalidInput, NotFound
from ..membership.programme import fen_from_yuan, settings_on
from ..membership.rules import PROGRAMME_TZ, programme_today
from ..org.models import OrgUnit
from ..policy import Action, PermissionDenied, can
from ..policy.scope import subtree_range
from . import rules
from .models import Event, EventPlan

MAX_FEN = 10_000_000_000  # ¥100,000,000: beyond any member event


def ancestor_paths(unit_path: str) -> list[str]:
    """"/1/4/9/" -> ["/1/", "/1/4/", "/1/4/9/"]."""
    parts = [p for p in unit_path.split("/") if p]
    return ["/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts) + 1)]


def visible_clause(actor: Actor, column) -> ColumnElement[bool]:
    """The events (or plans) ``actor`` sees, as SQL on their unit path column."""
    if not actor.unit_path:
        return column.is_(None)  # nobody without a unit
    lo, hi = subtree_range(actor.unit_path)
    return or_(column.in_(ancestor_paths(actor.unit_path)), (column >= lo) & (column < hi))


def is_visible(actor: Actor, unit_path: str) -> bool:
    return bool(actor.unit_path) and (unit_path in ancestor_paths(actor.unit_path)
                                      or unit_path.startswith(actor.unit_path))


def may_manage(actor: Actor, unit_path: str) -> bool:
    return can(actor, Action.EVENT_MANAGE, owner_id=0, unit_path=unit_path)


def plannable_units(s: Session, actor: Actor) -> list[OrgUnit]:
    """The units whose plans ``actor`` may make: the units they lead."""
    if not actor.unit_path:
        return []
    lo, hi = subtree_range(actor.unit_path)
    units = s.scalars(select(OrgUnit).where(OrgUnit.path >= lo, OrgUnit.path < hi).order_by(OrgUnit.path))
    return [u for u in units if may_manage(actor, u.path)]


# ---------------------------------------------------------------- plans

@dataclass(frozen=True)
class PlanRow:
    id: int
    unit: str
    year: int
    budget_fen: int
    events: int
    events_budget_fen: int
    manageable: bool


def _money(raw: str, field: str, errors: dict[str, str], *, required: bool = True) -> int:
    raw = (raw or "").strip()
    if not raw and not required:
        return 0
    fen = fen_from_yuan(raw)
    if fen is None or fen > MAX_FEN:
        errors[field] = "Enter an amount in yuan, e.g. 12000 or 12000.50."
        return 0
    return fen


def create_plan(s: Session, actor: Actor, *, unit_code: str, year: str, budget: str, note: str = "") -> EventPlan:
    """A leader's yearly plan for a unit they lead; one per unit and year."""
    errors: dict[str, str] = {}
    unit = s.scalar(select(OrgUnit).where(OrgUnit.code == (unit_code or "").strip()))
    if unit is None:
        errors["unit"] = "Choose a unit."
    elif not may_manage(actor, unit.path):
        raise PermissionDenied(Action.EVENT_MANAGE, unit.code)
    y = int(year) if (year or "").strip().isdigit() else 0
    this_year = programme_today().year
    if not this_year - 1 <= y <= this_year + 1:
        errors["year"] = "Choose last year, this year or next year."
    budget_fen = _money(budget, "budget", errors)
    note = (note or "").strip()
    if len(note) > 500:
        errors["note"] = "At most 500 characters."
    if not errors and s.scalar(select(EventPlan.id).where(EventPlan.unit_id == unit.id, EventPlan.year == y)):
        errors["year"] = "This unit already has a plan for that year."
    if errors:
        raise InvalidInput(errors)
    plan = EventPlan(unit_id=unit.id, unit_path=unit.path, year=y, budget_fen=budget_fen, note=note,
                     created_by_id=actor.user_id, created_at=clock.now())
    s.add(plan)
    s.flush()
    audit.record(s, actor, Action.EVENT_MANAGE.value, object_type="event_plan", object_id=str(plan.id),
                 detail=f"plan {unit.code} {y} budget {budget_fen} fen")
    return plan


def list_plans(s: Session, actor: Actor) -> list[PlanRow]:
    """The plans of the units ``actor`` sees, newest year first, with their events' count and budget."""
    totals = (select(Event.plan_id, func.count(Event.id).label("n"),
                     func.coalesce(func.sum(Event.budget_fen), 0).label("fen"))
              .where(Event.status != "cancelled").group_by(Event.plan_id).subquery())
    q = (select(EventPlan, OrgUnit.name, totals.c.n, totals.c.fen)
         .join(OrgUnit, OrgUnit.id == EventPlan.unit_id)
         .outerjoin(totals, totals.c.plan_id == EventPlan.id)
         .where(visible_clause(actor, EventPlan.unit_path))
         .order_by(EventPlan.year.desc(), EventPlan.unit_path))
    return [PlanRow(p.id, name, p.year, p.budget_fen, int(n or 0), int(fen or 0), may_manage(actor, p.unit_path))
            for p, name, n, fen in s.execute(q)]


def get_plan(s: Session, actor: Actor, plan_id: int) -> tuple[EventPlan, OrgUnit, list[Event]]:
    plan = s.get(EventPlan, plan_id)
    if plan is None:
        raise NotFound("no such plan")
    if not is_visible(actor, plan.unit_path):
        raise PermissionDenied(Action.EVENT_VIEW, f"plan {plan_id}")
    events = list(s.scalars(select(Event).where(Event.plan_id == plan.id).order_by(Event.starts_at, Event.id)))
    return plan, s.get(OrgUnit, plan.unit_id), events


# ---------------------------------------------------------------- events

def parse_moment(raw: str) -> datetime | None:
    """"2026-12-05T14:30" (a datetime-local field, Asia/Shanghai) -> aware UTC; None if malformed."""
    raw = (raw or "").strip()
    try:
        if "T" in raw or " " in raw:
            local = datetime.fromisoformat(raw.replace(" ", "T"))
        else:
            local = datetime.combine(date.fromisoformat(raw), time.min)
    except ValueError:
        return None
    if local.tzinfo is not None:
        return None
    return local.replace(tzinfo=PROGRAMME_TZ).astimezone(timezone.utc)


def _count(raw: str, field: str, errors: dict[str, str], lo: int, hi: int, message: str) -> int:
    raw = (raw or "").strip()
    if not raw.isascii() or not raw.isdigit() or not lo <= int(raw) <= hi:
        errors[field] = message
        return lo
    return int(raw)


def add_event(s: Session, actor: Actor, plan_id: int, form: dict, tiers: list[str]) -> Event:
    """Add an event to a plan. ``form`` holds the form's strings: kind, theme, place, content,
    starts_at, ends_at, registration_opens_at, capacity, budget (yuan), points."""
    plan = s.get(EventPlan, plan_id)
    if plan is None:
        raise NotFound("no such plan")
    if not may_manage(actor, plan.unit_path):
        raise PermissionDenied(Action.EVENT_MANAGE, f"plan {plan_id}")
    errors: dict[str, str] = {}
    kind = form.get("kind", "")
    if kind not in rules.KINDS:
        errors["kind"] = "Choose the kind of event."
    theme, place = (form.get("theme") or "").strip(), (form.get("place") or "").strip()
    content = (form.get("content") or "").strip()
    if not 2 <= len(theme) <= 200:
        errors["theme"] = "Give the theme (2 to 200 characters)."
    if not 2 <= len(place) <= 200:
        errors["place"] = "Give the place (2 to 200 characters)."
    if len(content) > 2000:
        errors["content"] = "At most 2,000 characters."
    starts, ends = parse_moment(form.get("starts_at", "")), parse_moment(form.get("ends_at", ""))
    opens = parse_moment(form.get("registration_opens_at", ""))
    if starts is None:
        errors["starts_at"] = "Enter the date and time it starts."
    elif rules.local_day(starts).year != plan.year:
        errors["starts_at"] = "The event must fall in the plan's year."
    if ends is None or (starts is not None and ends <= starts):
        errors["ends_at"] = "Enter when it ends, after it starts."
    if opens is None or (starts is not None and opens >= starts):
        errors["registration_opens_at"] = "Enter when registration opens, before the event starts."
    capacity = _count(form.get("capacity", ""), "capacity", errors, 1, 100_000,
                      "Enter how many members can take part (1 to 100,000).")
    points = _count(form.get("points") or "0", "points", errors, 0, 100_000,
                    "Enter the points each attendee earns (0 to 100,000).")
    budget_fen = _money(form.get("budget", ""), "budget", errors)
    try:
        tier_values = rules.parse_tiers(tiers)
    except rules.EventRuleError as exc:
        errors[exc.field] = exc.message
        tier_values = ()
    if errors:
        raise InvalidInput(errors)
    priority_days = settings_on(s, programme_today()).event_priority_days
    now = clock.now()
    ev = Event(plan_id=plan.id, unit_id=plan.unit_id, unit_path=plan.unit_path, kind=kind, theme=theme,
               place=place, content=content, starts_at=starts, ends_at=ends, capacity=capacity,
               budget_fen=budget_fen, tiers=rules.tiers_text(tier_values), points=points,
               registration_opens_at=opens, priority_opens_at=rules.priority_opens(opens, priority_days),
               created_by_id=actor.user_id, created_at=now, updated_at=now)
    s.add(ev)
    s.flush()
    audit.record(s, actor, Action.EVENT_MANAGE.value, object_type="event", object_id=str(ev.id),
                 detail=f"event {kind} in plan {plan.id}, capacity {capacity}, budget {budget_fen} fen, "
                        f"points {points}, tiers {ev.tiers}")
    return ev


def get_event(s: Session, actor: Actor, event_id: int, *, lock: bool = False) -> Event:
    """The event if ``actor`` sees it (NotFound, PermissionDenied). ``lock``: FOR UPDATE."""
    ev = s.get(Event, event_id, with_for_update=lock, populate_existing=lock)
    if ev is None:
        raise NotFound("no such event")
    if not is_visible(actor, ev.unit_path):
        raise PermissionDenied(Action.EVENT_VIEW, f"event {event_id}")
    return ev


def record_cost(s: Session, actor: Actor, event_id: int, cost: str) -> Event:
    """The event's actual cost, against its budget (a leader of its unit)."""
    ev = s.get(Event, event_id)
    if ev is None:
        raise NotFound("no such event")
    if not may_manage(actor, ev.unit_path):
        raise PermissionDenied(Action.EVENT_MANAGE, f"event {event_id}")
    errors: dict[str, str] = {}
    fen = _money(cost, "cost", errors)
    if errors:
        raise InvalidInput(errors)
    ev.actual_cost_fen = fen
    ev.updated_at = clock.now()
    audit.record(s, actor, Action.EVENT_MANAGE.value, object_type="event", object_id=str(ev.id),
                 detail=f"actual cost {fen} fen against budget {ev.budget_fen} fen")
    return ev


def upcoming(s: Session, actor: Actor, limit: int = 20) -> list[Event]:
    """Events the actor sees that have not ended, soonest first."""
    return list(s.scalars(select(Event).where(visible_clause(actor, Event.unit_path),
                                              Event.ends_at > clock.now(), Event.status == "planned")
                          .order_by(Event.starts_at, Event.id).limit(limit)))
