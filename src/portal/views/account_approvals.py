"""The leaders' queue of account changes that give someone reach over customer files."""
from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..accounts import approvals
from ..audit import service as audit
from ..audit.deferred import read_then_audit
from ..policy import Action
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
OPT = {"action": Action.ACCOUNT_APPROVE}


def _queue(request: Request, *, status: int = 200, errors: dict | None = None) -> Response:
    actor = current_actor(request)
    with read_then_audit(request.app.state.db) as s:
        rows = approvals.queue(s, actor)
        audit.record(s, actor, "user.approvals_view", object_type="user", detail=f"pending={len(rows)}")
    return render(request, "account/approvals.html", rows=rows, errors=errors or {}, status=status)


@get("/account-approvals", opt=OPT, sync_to_thread=True)
def account_approvals(request: Request) -> Response:
    return _queue(request)


@post("/account-approvals/{change_id:int}/{verdict:str}", opt=OPT, sync_to_thread=True)
def decide_account_change(request: Request, change_id: int, verdict: str, data: Form) -> Response:
    """approve | deny (with a reason). Refused to anyone but a leader above the target unit who
    is neither the user concerned nor the one who asked (PermissionDenied: 403, audited)."""
    actor = current_actor(request)
    if verdict not in ("approve", "deny"):
        return _queue(request, status=400, errors={"request": i18n.gettext("Unknown action.")})
    try:
        with request.app.state.db.write() as s:
            approvals.decide(s, actor, change_id, verdict == "approve", data.get("note", ""))
    except approvals.ApprovalError as exc:
        return _queue(request, status=400 if exc.field == "note" else 409,
                      errors={exc.field: i18n.error_text(exc)})
    except LookupError:
        return _queue(request, status=404, errors={"request": i18n.gettext("No such request.")})
    return Redirect(path="/account-approvals", status_code=303)


ROUTES = [account_approvals, decide_account_change]
