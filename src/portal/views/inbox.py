"""The in-app inbox: notices about requests, grants and approvals."""
from __future__ import annotations

import json

from litestar import Request, Response, get, post
from litestar.response import Redirect

from .. import i18n
from ..inbox import service as inbox
from ..policy import Action
from .rendering import render
from .security import current_actor


@get("/inbox", opt={"action": Action.ACCOUNT_SELF}, sync_to_thread=True)
def show_inbox(request: Request) -> Response:
    actor = current_actor(request)
    with request.app.state.db.read() as s:
        notices = inbox.recent(s, actor.user_id)
    shown = [(n, i18n.gettext(n.message, **json.loads(n.params or "{}"))) for n in notices]
    return render(request, "inbox.html", notices=shown)


@post("/inbox/read", opt={"action": Action.ACCOUNT_SELF}, sync_to_thread=True)
def mark_read(request: Request) -> Response:
    actor = current_actor(request)
    with request.app.state.db.write() as s:
        inbox.mark_all_read(s, actor.user_id)
    return Redirect(path="/inbox", status_code=303)


ROUTES = [show_inbox, mark_read]
