"""The credit terms page (an administrator, through the policy): the version in force, every version
with its reason, and a form that saves a new version from an effective date (audited)."""
from __future__ import annotations

import dataclasses
from datetime import date
from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..credit import terms as credit_terms
from ..customers.service import InvalidInput
from ..membership.rules import programme_today
from ..policy import Action
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
FIELDS = (*credit_terms.BOUNDS, "effective_from", "reason")


def _page(request: Request, *, form=None, errors=None, status=200) -> Response:
    today = programme_today()
    with request.app.state.db.read() as s:
        current = credit_terms.terms_on(s, today)
        history = credit_terms.history(s)
    if form is None:
        form = {k: str(v) for k, v in dataclasses.asdict(current).items()} | {"effective_from": today.isoformat()}
    return render(request, "credit/terms.html", current=current, history=history, today=today,
                  upcoming=[v for v in history if v.effective_from > today], form=form, errors=errors or {},
                  status=status)


@get("/credit/terms", opt={"action": Action.CREDIT_TERMS}, sync_to_thread=True)
def show_terms(request: Request) -> Response:
    return _page(request)


@post("/credit/terms", opt={"action": Action.CREDIT_TERMS}, sync_to_thread=True)
def save_terms(request: Request, data: Form) -> Response:
    try:
        start = date.fromisoformat((data.get("effective_from") or "").strip())
    except ValueError:
        start = None
    try:
        with request.app.state.db.write() as s:
            credit_terms.save_terms(s, current_actor(request), data, effective_from=start, today=programme_today(),
                                    reason=data.get("reason", ""))
    except InvalidInput as exc:
        return _page(request, form={k: data.get(k, "") for k in FIELDS},
                     errors={k: i18n.gettext(v) for k, v in exc.errors.items()}, status=400)
    return Redirect(path="/credit/terms", status_code=303)


ROUTES = [show_terms, save_terms]
