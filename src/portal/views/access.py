"""Cross-access: asking for another's file, the leaders' approval queue, revoking grants."""
from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..access import service as access
from ..access.reasons import shortest_full
from ..policy import Action
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _t(errors: dict[str, str]) -> dict[str, str]:
    return {k: i18n.gettext(v) for k, v in errors.items()}


@get("/access-requests", opt={"action": Action.ACCESS_REQUEST}, sync_to_thread=True)
def list_access_requests(request: Request) -> Response:
    actor = current_actor(request)
    with request.app.state.db.read() as s:
        rows = access.my_requests(s, actor)
    return render(request, "access/mine.html", rows=rows)


@get("/access-requests/new", opt={"action": Action.ACCESS_REQUEST})
async def new_access_request(request: Request, file_no: str = "") -> Response:
    return render(request, "access/new.html", form={"file_no": file_no, "scope": "view",
                                                    "hours": str(access.DEFAULT_HOURS)}, errors={},
                  reason_hint=shortest_full(request.app.state.settings.grant_reason_min))


@post("/access-requests/new", opt={"action": Action.ACCESS_REQUEST}, sync_to_thread=True)
def request_access(request: Request, data: Form) -> Response:
    actor = current_actor(request)
    form = {k: data.get(k, "") for k in ("file_no", "reason", "scope", "hours")}
    try:
        with request.app.state.db.write() as s:
            access.request_access(s, actor, form["file_no"], form["reason"], form["scope"] or "view",
                                  form["hours"] or access.DEFAULT_HOURS,
                                  reason_min=request.app.state.settings.grant_reason_min)
    except access.InvalidRequest as exc:
        return render(request, "access/new.html", status=400, form=form, errors=_t(exc.errors),
                      reason_hint=shortest_full(request.app.state.settings.grant_reason_min))
    return Redirect(path="/access-requests", status_code=303)


def _queue(request: Request, *, status: int = 200, errors: dict | None = None, focus: int | None = None):
    actor = current_actor(request)
    with request.app.state.db.read() as s:
        rows = access.approval_queue(s, actor)
    return render(request, "access/approvals.html", fragment="access/_queue.html", rows=rows,
                  errors=errors or {}, focus=focus, status=status)


@get("/approvals", opt={"action": Action.ACCESS_DECIDE}, sync_to_thread=True)
def approvals(request: Request) -> Response:
    return _queue(request)


@post("/approvals/{request_id:int}/{verdict:str}", opt={"action": Action.ACCESS_DECIDE}, sync_to_thread=True)
def decide(request: Request, request_id: int, verdict: str, data: Form) -> Response:
    """approve | deny | revoke, in place (HTMX swaps the queue) or as a plain form post."""
    actor = current_actor(request)
    try:
        with request.app.state.db.write() as s:
            if verdict == "approve":
                access.decide(s, actor, request_id, True, hours=data.get("hours"), note=data.get("note", ""))
            elif verdict == "deny":
                access.decide(s, actor, request_id, False, note=data.get("note", ""))
            elif verdict == "revoke":
                access.revoke(s, actor, request_id, data.get("note", ""))
            else:
                raise access.InvalidRequest({"request": "Unknown action."})
    except access.InvalidRequest as exc:
        return _queue(request, status=400, errors=_t(exc.errors), focus=request_id)
    except LookupError:
        return _queue(request, status=404, errors={"request": i18n.gettext("No such request.")},
                      focus=request_id)
    if request.headers.get("hx-request") == "true":
        return _queue(request)
    back = data.get("next", "")
    return Redirect(path=back if back.startswith("/customers/") else "/approvals", status_code=303)


ROUTES = [list_access_requests, new_access_request, request_access, approvals, decide]
