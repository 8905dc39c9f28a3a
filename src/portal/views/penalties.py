"""Penalties (seed 000): leaders record them against staff in their units, with evidence; auditors read."""
from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..audit.deferred import read_then_audit
from ..customers.service import InvalidInput
from ..membership.programme import current_settings
from ..penalties import service as penalties
from ..policy import Action, may_perform
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _page(request: Request, *, form=None, errors=None, status=200) -> Response:
    actor = current_actor(request)
    with read_then_audit(request.app.state.db) as s:  # the list is audited
        rows = penalties.list_penalties(s, actor)
        fine = current_settings(s).leak_penalty_fen
    return render(request, "penalties/index.html", rows=rows, form=form or {}, errors=errors or {},
                  may_record=may_perform(actor, Action.PENALTY_RECORD), leak_fine_fen=fine,
                  kinds=penalties.KINDS, evidence_types=penalties.EVIDENCE_TYPES, status=status)


@get("/penalties", opt={"action": Action.PENALTY_VIEW}, sync_to_thread=True)
def list_penalties(request: Request) -> Response:
    return _page(request)


@post("/penalties", opt={"action": Action.PENALTY_RECORD}, sync_to_thread=True)
def record_penalty(request: Request, data: Form) -> Response:
    actor = current_actor(request)
    fields = ("username", "kind", "evidence_type", "evidence_id", "reason")
    try:
        with request.app.state.db.write() as s:
            penalties.record_penalty(s, actor, leak_fine_fen=current_settings(s).leak_penalty_fen,
                                     **{k: data.get(k, "") for k in fields})
    except InvalidInput as exc:
        return _page(request, form={k: data.get(k, "") for k in fields},
                     errors={k: i18n.gettext(v) for k, v in exc.errors.items()}, status=400)
    return Redirect(path="/penalties", status_code=303)


ROUTES = [list_penalties, record_penalty]
