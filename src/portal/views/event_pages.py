"""One member event: invitations, registration on a member's behalf, check-in, satisfaction,
cost, and the post-event summary. Every step is a POST that redirects back to the event."""
from __future__ import annotations

from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.response import Redirect

from ..audit import service as audit
from ..audit.deferred import read_then_audit
from ..customers.service import InvalidInput
from ..events import invitations, planning, registrations, rules, summary
from ..events.registrations import places_taken
from ..membership.cards import CardNotYours
from ..policy import Action, may_perform
from .card_refusal import refuse_card_quietly
from .events import Form, one, translated
from .rendering import render
from .security import current_actor

# What the page says after a step (the redirect carries the word, never personal data).
OUTCOMES = ("registered", "waitlisted", "cancelled", "promoted", "checked_in", "already", "no_points",
            "invited", "cost", "satisfaction")


def _back(event_id: int, **params) -> Redirect:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return Redirect(path=f"/events/{event_id}" + (f"?{query}" if query else ""), status_code=303)


def _event_page(request: Request, event_id: int, *, errors=None, form=None, status=200) -> Response:
    """The event, its figures, and the registrations of the members the viewer may register
    (masked): the view is audited before anything is shown."""
    actor = current_actor(request)
    st = request.app.state
    with read_then_audit(st.db) as s:
        ev = planning.get_event(s, actor, event_id)
        rows = registrations.list_registrations(s, st.vault, actor, ev) \
            if may_perform(actor, Action.EVENT_REGISTER) else []
        counts = {"taken": places_taken(s, ev.id)}
        figures = summary.compute(s, ev)
        audit.record(s, actor, Action.EVENT_VIEW.value, object_type="event", object_id=str(ev.id),
                     detail=f"{len(rows)} registrations shown")
    done = request.query_params.get("done", "")
    return render(request, "events/event.html", fragment="events/_registrations.html", ev=ev, rows=rows,
                  counts=counts, figures=figures, tiers=rules.tiers_of(ev.tiers),
                  may_manage=planning.may_manage(actor, ev.unit_path),
                  may_register=may_perform(actor, Action.EVENT_REGISTER),
                  may_check_in=may_perform(actor, Action.EVENT_CHECKIN),
                  may_summary=may_perform(actor, Action.EVENT_SUMMARY),
                  done=done if done in OUTCOMES else "", n=request.query_params.get("n", ""),
                  errors=errors or {}, form=form or {}, status=status)


@get("/events/{event_id:int}", opt={"action": Action.EVENT_VIEW}, sync_to_thread=True)
def show_event(request: Request, event_id: int) -> Response:
    return _event_page(request, event_id)


@post("/events/{event_id:int}/invitations", opt={"action": Action.EVENT_MANAGE}, sync_to_thread=True)
def invite_members(request: Request, event_id: int) -> Response:
    actor = current_actor(request)
    try:
        with request.app.state.db.write() as s:
            n = invitations.send_invitations(s, actor, event_id)
    except InvalidInput as exc:
        return _event_page(request, event_id, errors=translated(exc), status=400)
    return _back(event_id, done="invited", n=n)


@post("/events/{event_id:int}/cost", opt={"action": Action.EVENT_MANAGE}, sync_to_thread=True)
def record_cost(request: Request, event_id: int, data: Form) -> Response:
    actor = current_actor(request)
    try:
        with request.app.state.db.write() as s:
            planning.record_cost(s, actor, event_id, one(data, "cost"))
    except InvalidInput as exc:
        return _event_page(request, event_id, errors=translated(exc), form={"cost": one(data, "cost")},
                           status=400)
    return _back(event_id, done="cost")


@post("/events/{event_id:int}/registrations", opt={"action": Action.EVENT_REGISTER}, sync_to_thread=True)
def register_member(request: Request, event_id: int, data: Form) -> Response:
    actor = current_actor(request)
    try:
        with request.app.state.db.write() as s:
            out = registrations.register(s, actor, event_id, one(data, "card"))
    except InvalidInput as exc:
        return _event_page(request, event_id, errors=translated(exc), form={"card": one(data, "card")},
                           status=400)
    except CardNotYours as exc:
        return _event_page(request, event_id, errors={"card": refuse_card_quietly(request, exc)},
                           form={"card": one(data, "card")}, status=400)
    return _back(event_id, done=out.status, n=out.position or None)


@post("/events/{event_id:int}/registrations/{registration_id:int}/cancel",
      opt={"action": Action.EVENT_REGISTER}, sync_to_thread=True)
def cancel_registration(request: Request, event_id: int, registration_id: int) -> Response:
    actor = current_actor(request)
    try:
        with request.app.state.db.write() as s:
            promoted = registrations.cancel(s, actor, event_id, registration_id)
    except InvalidInput as exc:
        return _event_page(request, event_id, errors=translated(exc), status=400)
    return _back(event_id, done="promoted" if promoted else "cancelled")


@post("/events/{event_id:int}/registrations/{registration_id:int}/check-in",
      opt={"action": Action.EVENT_CHECKIN}, sync_to_thread=True)
def check_in(request: Request, event_id: int, registration_id: int) -> Response:
    actor = current_actor(request)
    try:
        with request.app.state.db.write() as s:
            out = registrations.check_in(s, actor, event_id, registration_id)
    except InvalidInput as exc:
        return _event_page(request, event_id, errors=translated(exc), status=400)
    if out.already:
        return _back(event_id, done="already")
    return _back(event_id, done="checked_in" if out.points or not out.note else "no_points", n=out.points)


@post("/events/{event_id:int}/registrations/{registration_id:int}/satisfaction",
      opt={"action": Action.EVENT_CHECKIN}, sync_to_thread=True)
def record_satisfaction(request: Request, event_id: int, registration_id: int, data: Form) -> Response:
    actor = current_actor(request)
    try:
        with request.app.state.db.write() as s:
            registrations.record_satisfaction(s, actor, event_id, registration_id, one(data, "satisfaction"))
    except InvalidInput as exc:
        return _event_page(request, event_id, errors=translated(exc), status=400)
    return _back(event_id, done="satisfaction")


@get("/events/{event_id:int}/summary", opt={"action": Action.EVENT_SUMMARY}, sync_to_thread=True)
def show_summary(request: Request, event_id: int) -> Response:
    """Attendance, satisfaction, cost against budget, attendees' sales: figures only, audited."""
    actor = current_actor(request)
    with read_then_audit(request.app.state.db) as s:
        got = summary.event_summary(s, actor, event_id)
        ev = planning.get_event(s, actor, event_id)
    return render(request, "events/summary.html", ev=ev, got=got, min_group=rules.MIN_GROUP)


ROUTES = [show_event, invite_members, record_cost, register_member, cancel_registration, check_in,
          record_satisfaction, show_summary]
