"""Administration of POS terminals: list them, issue a terminal's API key (shown once), revoke one."""
from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..org import service as org
from ..policy import Action
from ..pos import terminals
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
OPT = {"action": Action.ADMIN_TERMINALS}


def _page(request: Request, *, form=None, errors=None, issued=None, status=200) -> Response:
    with request.app.state.db.read() as s:
        rows = terminals.list_terminals(s)
        units = org.all_units(s)
    return render(request, "terminals/list.html", terminals=rows, units=units, form=form or {},
                  errors=errors or {}, issued=issued, status=status)


@get("/admin/terminals", opt=OPT, sync_to_thread=True)
def list_terminals(request: Request) -> Response:
    return _page(request)


@post("/admin/terminals", opt=OPT, sync_to_thread=True)
def issue_terminal_key(request: Request, data: Form) -> Response:
    """The key is in this response only (never stored, never shown again): no redirect here."""
    actor = current_actor(request)
    try:
        with request.app.state.db.write() as s:
            t, key = terminals.issue_key(s, actor, data.get("name", ""), data.get("unit", ""))
            issued = {"id": t.id, "name": t.name, "key": key}
    except terminals.TerminalError as exc:
        form = {k: data.get(k, "") for k in ("name", "unit")}
        return _page(request, form=form, errors={exc.field: i18n.gettext(exc.message)}, status=400)
    return _page(request, issued=issued, status=201)


@post("/admin/terminals/{terminal_id:int}/revoke", opt=OPT, sync_to_thread=True)
def revoke_terminal_key(request: Request, terminal_id: int, data: Form) -> Response:
    actor = current_actor(request)
    try:
        with request.app.state.db.write() as s:
            terminals.revoke(s, actor, terminal_id, data.get("reason", ""))
    except terminals.TerminalError as exc:
        status = 404 if exc.code == "terminal.unknown" else 400
        return _page(request, errors={"revoke": i18n.gettext(exc.message), "revoke_id": terminal_id},
                     status=status)
    return Redirect(path="/admin/terminals", status_code=303)


ROUTES = [list_terminals, issue_terminal_key, revoke_terminal_key]
