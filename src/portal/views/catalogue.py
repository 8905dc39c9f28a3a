"""The product catalogue: everyone who sells reads it; an administrator adds versions from a date."""
from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..catalogue import service as catalogue
from ..customers.rules import InvalidField
from ..customers.service import InvalidInput
from ..membership.rules import programme_today
from ..policy import Action, may_perform
from .membership import fen_of
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
_ = i18n.gettext
FIELDS = ("code", "name", "bottles_per_box", "list_price", "group_price", "active_from", "active_to", "note")


def _page(request: Request, *, form=None, errors=None, status=200) -> Response:
    actor = current_actor(request)
    today = programme_today()
    with request.app.state.db.read() as s:
        current = catalogue.catalogue_on(s, today)
        versions = catalogue.history(s)
    return render(request, "catalogue/index.html", current=current, versions=versions, today=today,
                  may_edit=may_perform(actor, Action.CATALOGUE_EDIT), status=status,
                  form=form or {"active_from": today.isoformat(), "bottles_per_box": "6"}, errors=errors or {})


@get("/catalogue", opt={"action": Action.CATALOGUE_VIEW}, sync_to_thread=True)
def show_catalogue(request: Request) -> Response:
    return _page(request)


def _date(raw: str, field: str, errors: dict, *, optional: bool = False) -> date | None:
    raw = (raw or "").strip()
    if not raw and optional:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[field] = _("Enter a date like 2026-03-10.")
        return None


def product_input(data: dict[str, str]) -> catalogue.ProductInput:
    errors: dict[str, str] = {}
    prices = {}
    for field in ("list_price", "group_price"):
        try:
            prices[field] = fen_of(data.get(field, ""), field)
        except InvalidField as exc:
            errors[field] = str(exc)
    raw_bpb = (data.get("bottles_per_box") or "").strip()
    bpb = int(raw_bpb) if raw_bpb.isascii() and raw_bpb.isdigit() and len(raw_bpb) < 4 else 0
    start = _date(data.get("active_from", ""), "active_from", errors)
    end = _date(data.get("active_to", ""), "active_to", errors, optional=True)
    if errors:
        raise InvalidInput(errors)
    return catalogue.ProductInput(code=data.get("code", ""), name=data.get("name", ""), bottles_per_box=bpb,
                                  list_price_fen=prices["list_price"], group_price_fen=prices["group_price"],
                                  active_from=start, active_to=end, note=data.get("note", ""))


@post("/catalogue", opt={"action": Action.CATALOGUE_EDIT}, sync_to_thread=True)
def add_product_version(request: Request, data: Form) -> Response:
    actor = current_actor(request)
    try:
        inp = product_input(data)
        with request.app.state.db.write() as s:
            catalogue.add_version(s, actor, inp, today=programme_today())
    except InvalidInput as exc:
        return _page(request, form={k: data.get(k, "") for k in FIELDS},
                     errors={k: i18n.gettext(v) for k, v in exc.errors.items()}, status=400)
    return Redirect(path="/catalogue", status_code=303)


ROUTES = [show_catalogue, add_product_version]
