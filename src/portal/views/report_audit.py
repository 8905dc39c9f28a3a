"""Audit analytics for the auditor: activity per day, user and unit, and unusual activity linked
into the log. Staff activity only; no customer figures, no personal data."""
from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import Body

from .. import i18n
from ..audit import service as audit
from ..audit.deferred import read_then_audit
from ..membership.rules import programme_today
from ..policy import Action
from ..reports import audit_days
from ..reports.audit_stats import Unusual, audit_stats
from ..reports.exporting import FORMATS, export_report
from ..reports.filters import parse_filter
from .rendering import render
from .reports import chart_data, filter_context, scope_words
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
DEFAULTS = {"period": "month"}


def _unusual(request: Request) -> Unusual:
    st = request.app.state.settings
    return Unusual(work_start_hour=st.alert_work_start_hour, work_end_hour=st.alert_work_end_hour,
                   denials=st.alert_denied_burst)


def _build(request: Request, params):
    params = dict(params)
    if "period" not in params:
        params.update(DEFAULTS)
    f, errors = parse_filter(params, programme_today(), [])
    audit_days.catch_up_if_behind(request.app.state.db)
    with request.app.state.db.read() as s:
        rep = audit_stats(s, f, _unusual(request))
    return rep, f, errors


@get("/reports/audit", opt={"action": Action.REPORT_AUDIT}, sync_to_thread=True)
def report_audit(request: Request) -> Response:
    actor = current_actor(request)
    rep, f, errors = _build(request, request.query_params)
    with read_then_audit(request.app.state.db) as s:
        audit.record(s, actor, "report.view", object_type="report", object_id="audit", detail=scope_words(f))
    return render(request, "reports/audit.html", rep=rep, charts=chart_data(rep), export_path="/reports/audit/export",
                  audit_only=True,
                  status=400 if errors else 200, **filter_context(f, errors, []))


@post("/reports/audit/export", opt={"action": Action.REPORT_AUDIT}, sync_to_thread=True)
def export_audit_report(request: Request, data: Form) -> Response:
    actor = current_actor(request)
    fmt = data.get("format", "csv")
    if fmt not in FORMATS:
        raise HTTPException(status_code=400)
    rep, f, _errors = _build(request, data)
    with request.app.state.db.write() as s:
        out = export_report(s, actor, rep, fmt, scope=scope_words(f), tr=i18n.gettext)
    return Response(content=out.content, media_type=out.media_type, status_code=200,
                    headers={"Content-Disposition": f'attachment; filename="{out.filename}"'})


ROUTES = [report_audit, export_audit_report]
