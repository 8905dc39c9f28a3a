"""The overdue board (a salesperson's customers, a leader's units) and the liability report with
its CSV/XLSX export (a POST: nothing changes state on a GET; audited with the bytes' hash)."""
from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from ..credit import board
from ..credit.rules import BUCKETS
from ..membership.rules import programme_today
from ..policy import Action, may_perform
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@get("/receivables", opt={"action": Action.RECEIVABLE_BOARD}, sync_to_thread=True)
def show_board(request: Request, overdue: str = "") -> Response:
    actor = current_actor(request)
    today = programme_today()
    with request.app.state.db.write() as s:  # audited
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
def show_liabilities(request: Request, start: str = "", end: str = "") -> Response:
    actor = current_actor(request)
    a, b = _period(start, end)
    with request.app.state.db.write() as s:
        rows = board.liabilities(s, actor, Action.LIABILITY_VIEW, start=a, end=b)
        from ..audit import service as audit
        audit.record(s, actor, Action.LIABILITY_VIEW.value, object_type="list", object_id="liabilities",
                     detail=f"{len(rows)} rows")
    return render(request, "credit/liabilities.html", rows=rows, totals=board.totals_per_person(rows),
                  start=a.isoformat() if a else "", end=b.isoformat() if b else "",
                  may_export=may_perform(actor, Action.LIABILITY_EXPORT))


@post("/liabilities/export", opt={"action": Action.LIABILITY_EXPORT}, sync_to_thread=True, status_code=200)
def export_liabilities(request: Request, data: Form) -> Response:
    actor = current_actor(request)
    fmt = "xlsx" if data.get("format") == "xlsx" else "csv"
    a, b = _period(data.get("start", ""), data.get("end", ""))
    with request.app.state.db.write() as s:
        body, _n = board.export_liabilities(s, actor, fmt, start=a, end=b)
    media = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if fmt == "xlsx"
             else "text/csv; charset=utf-8")
    return Response(content=body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="liabilities.{fmt}"'})


ROUTES = [show_board, show_liabilities, export_liabilities]
