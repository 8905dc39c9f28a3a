"""A member's service record (complaints, visits, care), due visits, recording a visit and giving
a benefit, what was given in the user's scope, and the member-service settings (leaders).
The domain is portal.service (visits, care, settings)."""
from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..audit import service as audit
from ..audit.deferred import read_then_audit
from ..customers.service import InvalidInput
from ..membership.rules import programme_today
from ..policy import Action, can, may_perform
from ..service import care, complaints, members, settings, visits
from .offload import loop_page
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
VISIT_FIELDS = ("kind", "reason", "ref", "visited_on", "satisfaction", "outcome", "issues", "passed_to")


def _t(errors: dict[str, str]) -> dict[str, str]:
    return {k: i18n.gettext(v) for k, v in errors.items()}


@get("/visits", opt={"action": Action.VISIT_VIEW})
@loop_page  # on the event loop on SQLite (views/offload.py)
def list_due_visits(request: Request) -> Response:
    with read_then_audit(request.app.state.db) as s:  # audited
        rows = visits.due_visits(s, current_actor(request))
    return render(request, "service/visits.html", rows=rows, today=programme_today())


def _member_page(request: Request, file_id: UUID, *, visit_form=None, errors=None, status: int = 200,
                 reason: str = "", ref: str = "") -> Response:
    st = request.app.state
    actor = current_actor(request)
    today = programme_today()
    with read_then_audit(st.db) as s:
        m = members.by_id(s, actor, file_id, Action.VISIT_VIEW)
        audit.record(s, actor, Action.VISIT_VIEW.value, object_type="customer", object_id=m.file_no,
                     fields=["complaints", "visits", "care"], detail="member service record")
        page = dict(
            m=m, due=visits.due_visits(s, actor, customer_id=m.customer_id, today=today),
            done=visits.visits_of(s, st.vault, m.customer_id),
            allowances=care.allowances(s, m.customer_id, m.tier, today.year),
            given=care.records_of(s, st.vault, m.customer_id),
            complaint_rows=(complaints.queue(s, actor, state="all", customer_id=m.customer_id)
                            if can(actor, Action.COMPLAINT_VIEW, owner_id=m.owner_id, unit_path=m.unit_path) else []),
            questions=settings.current(s).survey_questions,
            may_visit=can(actor, Action.VISIT_RECORD, owner_id=m.owner_id, unit_path=m.unit_path),
            may_give=can(actor, Action.CARE_RECORD, owner_id=m.owner_id, unit_path=m.unit_path),
            may_complain=can(actor, Action.COMPLAINT_RECORD, owner_id=m.owner_id, unit_path=m.unit_path))
    return render(request, "service/member.html", **page, visit_form=visit_form or {"reason": reason, "ref": ref},
                  errors=errors or {}, kinds=visits.KINDS, reasons=visits.REASONS, benefits=settings.BENEFITS,
                  year=today.year, status=status)


@get("/member-service/{file_id:uuid}", opt={"action": Action.VISIT_VIEW}, sync_to_thread=True)
def show_member_service(request: Request, file_id: UUID, reason: str = "", ref: str = "") -> Response:
    return _member_page(request, file_id, reason=reason[:16], ref=ref[:12])


@post("/member-service/{file_id:uuid}/visits", opt={"action": Action.VISIT_RECORD}, sync_to_thread=True)
def record_visit(request: Request, file_id: UUID, data: Form) -> Response:
    st = request.app.state
    form = {k: data.get(k, "") for k in VISIT_FIELDS} | {k: v for k, v in data.items() if k[:1] == "q" and k[1:].isdigit()}
    try:
        with st.db.write() as s:
            visits.record_visit(s, st.vault, current_actor(request), file_id, form)
    except InvalidInput as exc:
        return _member_page(request, file_id, visit_form=form, errors=_t(exc.errors), status=400)
    return Redirect(path=f"/member-service/{file_id}", status_code=303)


@post("/member-service/{file_id:uuid}/visits/{visit_id:int}/answer", opt={"action": Action.VISIT_RECORD},
      sync_to_thread=True)
def answer_visit_issues(request: Request, file_id: UUID, visit_id: int, data: Form) -> Response:
    st = request.app.state
    try:
        with st.db.write() as s:
            visits.answer_issues(s, st.vault, current_actor(request), visit_id, data.get("answer", ""))
    except InvalidInput as exc:
        return _member_page(request, file_id, errors={f"answer_{visit_id}": v for v in _t(exc.errors).values()},
                            status=400)
    return Redirect(path=f"/member-service/{file_id}", status_code=303)


@post("/member-service/{file_id:uuid}/care", opt={"action": Action.CARE_RECORD}, sync_to_thread=True)
def give_benefit(request: Request, file_id: UUID, data: Form) -> Response:
    st = request.app.state
    try:
        with st.db.write() as s:
            care.give(s, st.vault, current_actor(request), file_id, data.get("benefit", ""), data.get("note", ""))
    except care.AllowanceUsed as exc:
        # The refusal itself is audited: keep that entry, then show the page.
        with st.db.write() as s:
            care.record_refusal(s, current_actor(request), file_id, data.get("benefit", ""))
        return _member_page(request, file_id, errors=_t(exc.errors), status=409)
    except InvalidInput as exc:
        return _member_page(request, file_id, errors=_t(exc.errors), status=400)
    return Redirect(path=f"/member-service/{file_id}", status_code=303)


@get("/care", opt={"action": Action.CARE_VIEW}, sync_to_thread=True)
def list_care(request: Request, year: int | None = None) -> Response:
    today = programme_today()
    year = year if year and 2000 <= year <= today.year else today.year
    with read_then_audit(request.app.state.db) as s:  # audited
        summary = care.given_in_scope(s, current_actor(request), year)
    return render(request, "service/care.html", summary=summary, benefits=settings.BENEFITS, tiers=settings.TIERS)


def _settings_page(request: Request, *, form=None, errors=None, status: int = 200) -> Response:
    with request.app.state.db.read() as s:
        cur = settings.current(s)
        versions = settings.versions(s)
    return render(request, "service/settings.html", form=form or settings.form_values(cur), errors=errors or {},
                  versions=versions, tiers=settings.TIERS, benefits=settings.BENEFITS,
                  today=programme_today().isoformat(), status=status)


@get("/member-service/settings", opt={"action": Action.SERVICE_RULES}, sync_to_thread=True)
def show_service_settings(request: Request) -> Response:
    return _settings_page(request)


@post("/member-service/settings", opt={"action": Action.SERVICE_RULES}, sync_to_thread=True)
def save_service_settings(request: Request, data: Form) -> Response:
    form = dict(data)
    try:
        new = settings.from_form(form)
        try:
            effective = date.fromisoformat((form.get("effective_from") or "").strip())
        except ValueError:
            raise InvalidInput({"effective_from": "Enter the first day as YYYY-MM-DD."}) from None
        with request.app.state.db.write() as s:
            settings.save_version(s, current_actor(request), new, effective, form.get("note", ""))
    except InvalidInput as exc:
        return _settings_page(request, form=form, errors=_t(exc.errors), status=400)
    return Redirect(path="/member-service/settings", status_code=303)


ROUTES = [list_due_visits, show_member_service, record_visit, answer_visit_issues, give_benefit, list_care,
          show_service_settings, save_service_settings]
