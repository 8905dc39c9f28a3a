"""Member events: the calendar, a unit's yearly plan, adding events (leaders)."""
from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..customers.service import InvalidInput
from ..events import planning, rules
from ..membership.programme import current_settings
from ..membership.rules import programme_today
from ..policy import Action, may_perform
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
EVENT_FIELDS = ("kind", "theme", "place", "content", "starts_at", "ends_at", "registration_opens_at",
                "capacity", "budget", "points")


def one(data: dict, key: str) -> str:
    """A single form value (the last one if the field was sent twice)."""
    value = data.get(key, "")
    if isinstance(value, list):
        value = value[-1] if value else ""
    return str(value)


def many(data: dict, key: str) -> list[str]:
    value = data.get(key, [])
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def translated(exc: InvalidInput) -> dict[str, str]:
    return {k: i18n.gettext(v) for k, v in exc.errors.items()}


def _index(request: Request, *, form=None, errors=None, status=200) -> Response:
    actor = current_actor(request)
    with request.app.state.db.read() as s:
        plans = planning.list_plans(s, actor)
        events = planning.upcoming(s, actor)
        units = planning.plannable_units(s, actor)
    return render(request, "events/index.html", plans=plans, events=events, units=units,
                  form=form or {"year": str(programme_today().year)}, errors=errors or {}, status=status,
                  may_plan=bool(units) and may_perform(actor, Action.EVENT_MANAGE))


@get("/events", opt={"action": Action.EVENT_VIEW}, sync_to_thread=True)
def list_events(request: Request) -> Response:
    """The plans and coming events of the viewer's units (and the units above them)."""
    return _index(request)


@post("/events/plans", opt={"action": Action.EVENT_MANAGE}, sync_to_thread=True)
def create_plan(request: Request, data: Form) -> Response:
    actor = current_actor(request)
    fields = ("unit", "year", "budget", "note")
    try:
        with request.app.state.db.write() as s:
            plan = planning.create_plan(s, actor, unit_code=one(data, "unit"), year=one(data, "year"),
                                        budget=one(data, "budget"), note=one(data, "note"))
            plan_id = plan.id
    except InvalidInput as exc:
        return _index(request, form={k: one(data, k) for k in fields}, errors=translated(exc), status=400)
    return Redirect(path=f"/events/plans/{plan_id}", status_code=303)


def _plan_page(request: Request, plan_id: int, *, form=None, tiers=None, errors=None, status=200) -> Response:
    actor = current_actor(request)
    with request.app.state.db.read() as s:
        plan, unit, events = planning.get_plan(s, actor, plan_id)
        priority_days = current_settings(s).event_priority_days
    months: dict[int, list] = {}
    for ev in events:
        months.setdefault(rules.local_day(ev.starts_at).month, []).append(ev)
    planned = sum(ev.budget_fen for ev in events if ev.status != "cancelled")
    return render(request, "events/plan.html", plan=plan, unit=unit, months=sorted(months.items()),
                  planned_fen=planned, kinds=rules.KINDS, priority_days=priority_days,
                  may_manage=planning.may_manage(actor, plan.unit_path), form=form or {},
                  tiers=tiers if tiers is not None else ["silver", "gold", "platinum"],
                  errors=errors or {}, status=status)


@get("/events/plans/{plan_id:int}", opt={"action": Action.EVENT_VIEW}, sync_to_thread=True)
def show_plan(request: Request, plan_id: int) -> Response:
    """A unit's calendar for the year: each month's events with their budgets, against the plan's."""
    return _plan_page(request, plan_id)


@post("/events/plans/{plan_id:int}/events", opt={"action": Action.EVENT_MANAGE}, sync_to_thread=True)
def add_event(request: Request, plan_id: int, data: Form) -> Response:
    actor = current_actor(request)
    form = {k: one(data, k) for k in EVENT_FIELDS}
    tiers = many(data, "tiers")
    try:
        with request.app.state.db.write() as s:
            event_id = planning.add_event(s, actor, plan_id, form, tiers).id
    except InvalidInput as exc:
        return _plan_page(request, plan_id, form=form, tiers=tiers, errors=translated(exc), status=400)
    return Redirect(path=f"/events/{event_id}", status_code=303)


ROUTES = [list_events, create_plan, show_plan, add_event]
