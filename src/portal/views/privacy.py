"""Personal data (PIPL): a file's privacy page (erasure and correction requests), the leaders'
erasure queue, the subject access report, the retention setting."""
from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..audit import service as audit
from ..audit.deferred import read_then_audit
from ..customers import service as customers
from ..customers.service import InvalidInput
from ..policy import Action, can
from ..privacy import access_report, corrections, erasure, retention
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _t(errors: dict[str, str]) -> dict[str, str]:
    return {k: i18n.gettext(v) for k, v in errors.items()}


def _file_page(request: Request, file_id: UUID, *, form=None, errors=None, status=200) -> Response:
    actor = current_actor(request)
    st = request.app.state
    with read_then_audit(st.db) as s:  # audited before the requests' wording is shown
        f = customers.get_file_for(s, actor, file_id, Action.PRIVACY_REQUEST)
        audit.record(s, actor, Action.PRIVACY_REQUEST.value, object_type="customer", object_id=f.file_no,
                     detail="privacy page")
        rows = corrections.for_file(s, st.vault, f.id)
        erasures = erasure.for_file(s, f.id)
        may_edit = can(actor, Action.CUSTOMER_EDIT, owner_id=f.owner_id, unit_path=f.unit_path)
        may_report = can(actor, Action.PRIVACY_REPORT, owner_id=f.owner_id, unit_path=f.unit_path)
    return render(request, "privacy/file.html", file=f, corrections=rows, erasures=erasures,
                  fields=corrections.FIELDS, may_edit=may_edit and f.erased_at is None,
                  may_report=may_report, form=form or {}, errors=errors or {}, status=status)


@get("/customers/{file_id:uuid}/privacy", opt={"action": Action.PRIVACY_REQUEST}, sync_to_thread=True)
def file_privacy(request: Request, file_id: UUID) -> Response:
    return _file_page(request, file_id)


@post("/customers/{file_id:uuid}/privacy/erasure", opt={"action": Action.PRIVACY_REQUEST}, sync_to_thread=True)
def request_erasure(request: Request, file_id: UUID, data: Form) -> Response:
    try:
        with request.app.state.db.write() as s:
            erasure.request_erasure(s, current_actor(request), file_id, data.get("reason", ""))
    except InvalidInput as exc:
        return _file_page(request, file_id, form=dict(data), errors=_t(exc.errors), status=400)
    return Redirect(path=f"/customers/{file_id}/privacy", status_code=303)


@post("/customers/{file_id:uuid}/privacy/corrections", opt={"action": Action.PRIVACY_REQUEST},
      sync_to_thread=True)
def request_correction(request: Request, file_id: UUID, data: Form) -> Response:
    st = request.app.state
    try:
        with st.db.write() as s:
            corrections.record_request(s, st.vault, current_actor(request), file_id,
                                       data.get("field_name", ""), data.get("details", ""))
    except InvalidInput as exc:
        return _file_page(request, file_id, form=dict(data), errors=_t(exc.errors), status=400)
    return Redirect(path=f"/customers/{file_id}/privacy", status_code=303)


def _correction_file(request: Request, request_id: int) -> UUID:
    from ..privacy.models import CorrectionRequest
    with request.app.state.db.read() as s:
        req = s.get(CorrectionRequest, request_id)
        if req is None:
            raise customers.NotFound("no such request")
        return req.customer_id


@post("/privacy/corrections/{request_id:int}/answer", opt={"action": Action.CUSTOMER_EDIT}, sync_to_thread=True)
def answer_correction(request: Request, request_id: int, data: Form) -> Response:
    st = request.app.state
    file_id = _correction_file(request, request_id)
    try:
        with st.db.write() as s:
            corrections.answer(s, st.vault, current_actor(request), request_id, data.get("value", ""))
    except InvalidInput as exc:
        return _file_page(request, file_id, form={**data, "answer_id": str(request_id)},
                          errors=_t(exc.errors), status=400)
    return Redirect(path=f"/customers/{file_id}/privacy", status_code=303)


@post("/privacy/corrections/{request_id:int}/refuse", opt={"action": Action.CUSTOMER_EDIT}, sync_to_thread=True)
def refuse_correction(request: Request, request_id: int, data: Form) -> Response:
    file_id = _correction_file(request, request_id)
    try:
        with request.app.state.db.write() as s:
            corrections.refuse(s, current_actor(request), request_id, data.get("note", ""))
    except InvalidInput as exc:
        return _file_page(request, file_id, form={**data, "answer_id": str(request_id)},
                          errors=_t(exc.errors), status=400)
    return Redirect(path=f"/customers/{file_id}/privacy", status_code=303)


# ---------------------------------------------------------------- the erasure queue

def _queue(request: Request, *, errors=None, status=200) -> Response:
    with read_then_audit(request.app.state.db) as s:  # the list is audited
        rows = erasure.queue(s, current_actor(request))
    return render(request, "privacy/erasures.html", rows=rows, errors=errors or {}, status=status)


@get("/privacy/erasures", opt={"action": Action.PRIVACY_ERASE}, sync_to_thread=True)
def erasure_queue(request: Request) -> Response:
    return _queue(request)


@post("/privacy/erasures/{request_id:int}/approve", opt={"action": Action.PRIVACY_ERASE}, sync_to_thread=True)
def approve_erasure(request: Request, request_id: int, data: Form) -> Response:
    try:
        with request.app.state.db.write() as s:
            erasure.approve(s, current_actor(request), request_id, data.get("note", ""))
    except InvalidInput as exc:
        return _queue(request, errors={request_id: next(iter(_t(exc.errors).values()))}, status=400)
    return Redirect(path="/privacy/erasures", status_code=303)


@post("/privacy/erasures/{request_id:int}/refuse", opt={"action": Action.PRIVACY_ERASE}, sync_to_thread=True)
def refuse_erasure(request: Request, request_id: int, data: Form) -> Response:
    try:
        with request.app.state.db.write() as s:
            erasure.refuse(s, current_actor(request), request_id, data.get("note", ""))
    except InvalidInput as exc:
        return _queue(request, errors={request_id: next(iter(_t(exc.errors).values()))}, status=400)
    return Redirect(path="/privacy/erasures", status_code=303)


# ---------------------------------------------------------------- the subject access report

@get("/customers/{file_id:uuid}/access-report", opt={"action": Action.PRIVACY_REPORT}, sync_to_thread=True)
def subject_access_report(request: Request, file_id: UUID, purpose: str = "") -> Response:
    st = request.app.state
    with read_then_audit(st.db) as s:  # audited (privacy.report) before anything is shown
        report = access_report.build(s, st.vault, current_actor(request), file_id, purpose)
    return render(request, "privacy/report.html", report=report)


# ---------------------------------------------------------------- retention

def _retention(request: Request, *, form=None, errors=None, status=200) -> Response:
    with request.app.state.db.read() as s:
        current = retention.current(s)
        versions = retention.history(s)
    return render(request, "privacy/retention.html", current=current, versions=versions,
                  form=form or {}, errors=errors or {}, status=status)


@get("/privacy/retention", opt={"action": Action.PRIVACY_RETENTION}, sync_to_thread=True)
def retention_page(request: Request) -> Response:
    return _retention(request)


@post("/privacy/retention", opt={"action": Action.PRIVACY_RETENTION}, sync_to_thread=True)
def set_retention(request: Request, data: Form) -> Response:
    try:
        with request.app.state.db.write() as s:
            retention.set_retention(s, current_actor(request), data.get("days", ""),
                                    data.get("effective_from", ""), data.get("note", ""))
    except InvalidInput as exc:
        return _retention(request, form=dict(data), errors=_t(exc.errors), status=400)
    return Redirect(path="/privacy/retention", status_code=303)


ROUTES = [file_privacy, request_erasure, request_correction, answer_correction, refuse_correction,
          erasure_queue, approve_erasure, refuse_erasure, subject_access_report, retention_page, set_retention]
