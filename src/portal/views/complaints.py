"""Complaints: the queue (gold and platinum first), recording one, its page with the history and
the next step's form, and the member-service analysis. The domain is portal.service.complaints."""
from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..audit.deferred import read_then_audit
from ..customers.service import InvalidInput
from ..membership.rules import programme_today
from ..policy import Action, may_perform
from ..service import analysis, complaints, settings
from .offload import loop_page
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
STATES = ("open", "overdue", "closed", "all")
NEW_FIELDS = ("member", "channel", "kind", "content", "promised_on")
STEP_FIELDS = {"investigate": ("passed_to", "finding", "cause", "responsible"), "propose": ("resolution",),
               "tell": ("how", "reply"), "satisfaction": ("verdict", "note", "promised_on")}


def _t(errors: dict[str, str]) -> dict[str, str]:
    return {k: i18n.gettext(v) for k, v in errors.items()}


def _choices() -> dict:
    return {"channels": complaints.CHANNELS, "kinds": complaints.KINDS, "causes": complaints.CAUSES,
            "hows": complaints.HOW_TOLD}


@get("/complaints", opt={"action": Action.COMPLAINT_VIEW})
@loop_page  # on the event loop on SQLite (views/offload.py)
def list_complaints(request: Request, show: str = "open") -> Response:
    actor = current_actor(request)
    state = show if show in STATES else "open"
    with read_then_audit(request.app.state.db) as s:  # the list is audited
        rows = complaints.queue(s, actor, state=state)
    return render(request, "service/complaints.html", fragment="service/_complaint_rows.html", rows=rows,
                  state=state, states=STATES, may_record=may_perform(actor, Action.COMPLAINT_RECORD),
                  may_analyse=may_perform(actor, Action.COMPLAINT_ANALYSIS))


def _new_form(request: Request, form: dict, errors: dict | None = None, status: int = 200) -> Response:
    return render(request, "service/complaint_new.html", form=form, errors=errors or {}, status=status, **_choices())


@get("/complaints/new", opt={"action": Action.COMPLAINT_RECORD}, sync_to_thread=True)
def new_complaint(request: Request, member: str = "") -> Response:
    with request.app.state.db.read() as s:
        days = settings.current(s).reply_days
    return _new_form(request, {"member": member[:40], "promised_on": (programme_today() + timedelta(days=days)).isoformat()})


@post("/complaints", opt={"action": Action.COMPLAINT_RECORD}, sync_to_thread=True)
def record_complaint(request: Request, data: Form) -> Response:
    st = request.app.state
    form = {k: data.get(k, "") for k in NEW_FIELDS}
    try:
        with st.db.write() as s:
            c = complaints.record_complaint(s, st.vault, current_actor(request), form)
    except InvalidInput as exc:
        return _new_form(request, form, _t(exc.errors), status=400)
    return Redirect(path=f"/complaints/{c.id}", status_code=303)


def _page(request: Request, complaint_id: int, *, form=None, errors=None, status: int = 200) -> Response:
    st = request.app.state
    actor = current_actor(request)
    with read_then_audit(st.db) as s:  # the view is audited (appended, committed) before anything is shown
        view = complaints.view_complaint(s, st.vault, actor, complaint_id)
        may_work = complaints.may_work(actor, view, s)
        days = settings.current(s).reply_days
    default_promise = (programme_today() + timedelta(days=days)).isoformat()
    return render(request, "service/complaint.html", c=view, may_work=may_work, form=form or {},
                  errors=errors or {}, default_promise=default_promise, status=status, **_choices())


@get("/complaints/{complaint_id:int}", opt={"action": Action.COMPLAINT_VIEW}, sync_to_thread=True)
def show_complaint(request: Request, complaint_id: int) -> Response:
    return _page(request, complaint_id)


@post("/complaints/{complaint_id:int}/{step:str}", opt={"action": Action.COMPLAINT_WORK}, sync_to_thread=True)
def take_step(request: Request, complaint_id: int, step: str, data: Form) -> Response:
    st = request.app.state
    if step not in STEP_FIELDS:
        return _page(request, complaint_id, errors={"step": i18n.gettext("No such step.")}, status=400)
    form = {k: data.get(k, "") for k in STEP_FIELDS[step]}
    try:
        with st.db.write() as s:
            complaints.take_step(s, st.vault, current_actor(request), complaint_id, step, form)
    except InvalidInput as exc:
        return _page(request, complaint_id, form=form, errors=_t(exc.errors), status=409 if "step" in exc.errors else 400)
    return Redirect(path=f"/complaints/{complaint_id}", status_code=303)


@get("/complaints/analysis", opt={"action": Action.COMPLAINT_ANALYSIS}, sync_to_thread=True)
def complaint_analysis(request: Request) -> Response:
    with read_then_audit(request.app.state.db) as s:  # audited
        a = analysis.complaint_analysis(s, current_actor(request))
    return render(request, "service/analysis.html", a=a, min_group=analysis.MIN_GROUP)


ROUTES = [list_complaints, new_complaint, record_complaint, show_complaint, take_step, complaint_analysis]
