"""The monthly unit report: live figures, a leader's sending (frozen, signed by the sender), and the
sent reports that leaders above read."""
from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..audit import service as audit
from ..audit.deferred import read_then_audit
from ..membership.rules import programme_today
from ..policy import Action, PermissionDenied, may_perform
from ..reports import monthly
from ..reports.model import _
from ..reports.filters import units_in_scope
from .rendering import render
from .reports import chart_data, show
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _sent(request: Request) -> list:
    with request.app.state.db.read() as s:
        return monthly.sent_reports(s, current_actor(request))


@get("/reports/monthly", opt={"action": Action.REPORT_VIEW}, sync_to_thread=True)
def report_monthly(request: Request) -> Response:
    actor = current_actor(request)
    last = programme_today().replace(day=1) - timedelta(days=1)
    return show(request, "monthly", defaults={"period": "month", "month": f"{last:%Y-%m}"},
                sent=_sent(request), may_send=may_perform(actor, Action.REPORT_SEND))


@post("/reports/monthly/send", opt={"action": Action.REPORT_SEND}, sync_to_thread=True)
def send_monthly(request: Request, data: Form) -> Response:
    actor = current_actor(request)
    code, month = data.get("unit", "").strip(), data.get("month", "").strip()
    try:
        with request.app.state.db.write() as s:
            unit = next((u for u in units_in_scope(s, actor) if u.code == code), None)
            if unit is None:
                raise PermissionDenied(Action.REPORT_SEND, code[:16])
            if not monthly.valid_month(month):
                raise monthly.ReportError("month", _("Enter a month as YYYY-MM."))
            row = monthly.send(s, actor, unit, month)
    except monthly.ReportError as exc:
        return _send_refused(request, str(exc))
    return Redirect(path=f"/reports/monthly/sent/{row.id}", status_code=303)


def _send_refused(request: Request, message: str) -> Response:
    actor = current_actor(request)
    return render(request, "reports/send_refused.html", message=i18n.gettext(message), status=400,
                  may_send=may_perform(actor, Action.REPORT_SEND))


@get("/reports/monthly/sent/{report_id:int}", opt={"action": Action.REPORT_VIEW}, sync_to_thread=True)
def sent_monthly(request: Request, report_id: int) -> Response:
    actor = current_actor(request)
    with read_then_audit(request.app.state.db) as s:
        row = monthly.sent_report(s, actor, report_id)
        audit.record(s, actor, "report.view", object_type="report", object_id=f"monthly:{report_id}",
                     detail=f"sent month={row.month} sha256={row.sha256}")
    rep, raw = monthly.report_from_body(row.body)
    return render(request, "reports/sent.html", rep=rep, raw=raw, row=row, intact=monthly.verify(row),
                  charts=chart_data(rep), today=programme_today())


ROUTES = [report_monthly, send_monthly, sent_monthly]
