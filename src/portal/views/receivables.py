"""The overdue board (a salesperson's customers, a leader's units), the liability report with its
CSV/XLSX export (a POST: nothing changes state on a GET; audited with the bytes' hash), and one
liability's page where a leader above the person records settlements."""
from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..audit.deferred import read_then_audit
from ..credit import board, liabilities
from ..credit.rules import BUCKETS
from ..customers.rules import InvalidField
from ..customers.service import InvalidInput
from ..membership.rules import programme_today
from ..policy import Action, may_perform
from .membership import fen_of
from .offload import loop_page
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@get("/receivables", opt={"action": Action.RECEIVABLE_BOARD})
@loop_page  # on the event loop on SQLite (views/offload.py)
def show_board(request: Request, overdue: str = "") -> Response:
    actor = current_actor(request)
    today = programme_today()
    with read_then_audit(request.app.state.db) as s:  # audited
        b = board.board(s, actor, today, overdue_only=bool(overdue))
    return render(request, "credit/board.html", board=b, buckets=BUCKETS, today=today, overdue=bool(overdue),
                  may_liability=may_perform(actor, Action.LIABILITY_VIEW))


def _period(raw_start: str, raw_end: str) -> tuple[date | None, date | None]:
    def one(raw):
        try:
            return date.fromisoformat(raw.strip()) if raw and raw.strip() else None
        except ValueError:
            return None
    return one(raw_start), one(raw_end)


@get("/liabilities", opt={"action": Action.LIABILITY_VIEW}, sync_to_thread=True)
def show_liabilities(request: Request, start: str = "", end: str = "", unsettled: str = "") -> Response:
    actor = current_actor(request)
    a, b = _period(start, end)
    with read_then_audit(request.app.state.db) as s:
        rows = liabilities.liabilities(s, actor, Action.LIABILITY_VIEW, start=a, end=b, open_only=bool(unsettled))
        from ..audit import service as audit
        audit.record(s, actor, Action.LIABILITY_VIEW.value, object_type="list", object_id="liabilities",
                     detail=f"{len(rows)} rows")
    return render(request, "credit/liabilities.html", rows=rows, totals=liabilities.totals_per_person(rows),
                  start=a.isoformat() if a else "", end=b.isoformat() if b else "", open_only=bool(unsettled),
                  may_export=may_perform(actor, Action.LIABILITY_EXPORT))


@post("/liabilities/export", opt={"action": Action.LIABILITY_EXPORT}, sync_to_thread=True, status_code=200)
def export_liabilities(request: Request, data: Form) -> Response:
    actor = current_actor(request)
    fmt = "xlsx" if data.get("format") == "xlsx" else "csv"
    a, b = _period(data.get("start", ""), data.get("end", ""))
    with request.app.state.db.write() as s:
        body, _n = liabilities.export_liabilities(s, actor, fmt, start=a, end=b)
    media = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if fmt == "xlsx"
             else "text/csv; charset=utf-8")
    return Response(content=body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="liabilities.{fmt}"'})


def _liability_page(request: Request, liability_id: int, *, form=None, errors=None, status=200) -> Response:
    today = programme_today()
    with read_then_audit(request.app.state.db) as s:  # the page is audited
        d = liabilities.detail(s, current_actor(request), liability_id)
    return render(request, "credit/liability.html", d=d, methods=liabilities.METHODS, today=today,
                  form=form or {"paid_on": today.isoformat(), "method": "payroll"}, errors=errors or {},
                  status=status)


@get("/liabilities/{liability_id:int}", opt={"action": Action.LIABILITY_VIEW}, sync_to_thread=True)
def show_liability(request: Request, liability_id: int) -> Response:
    return _liability_page(request, liability_id)


@post("/liabilities/{liability_id:int}/settlements", opt={"action": Action.LIABILITY_SETTLE}, sync_to_thread=True)
def settle_liability(request: Request, liability_id: int, data: Form) -> Response:
    raw = (data.get("paid_on") or "").strip()
    try:
        paid_on = date.fromisoformat(raw)
    except ValueError:
        paid_on = None
    try:
        try:
            amount = fen_of(data.get("amount", ""), "amount")
        except InvalidField as exc:
            raise InvalidInput({"amount": str(exc)}) from None
        with request.app.state.db.write() as s:
            liabilities.settle(s, current_actor(request), liability_id, amount_fen=amount, paid_on=paid_on,
                               method=data.get("method", ""), note=data.get("note", ""))
    except InvalidInput as exc:
        return _liability_page(request, liability_id, status=400,
                               form={k: data.get(k, "") for k in ("amount", "paid_on", "method", "note")},
                               errors={k: i18n.gettext(v) for k, v in exc.errors.items()})
    return Redirect(path=f"/liabilities/{liability_id}", status_code=303)


ROUTES = [show_board, show_liabilities, export_liabilities, show_liability, settle_liability]
