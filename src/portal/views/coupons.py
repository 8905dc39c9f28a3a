"""Coupons (seed 001): the campaigns in the viewer's reach, issuing one, withdrawing a coupon.

Leaders issue to the members of their units, an administrator to every member; the page shows
figures only (how many coupons of each campaign were issued, used, expired or withdrawn), never
a member. A member's own coupons show on their file's membership section.
"""
from __future__ import annotations

from datetime import date

from litestar import Request, Response, get, post
from litestar.response import Redirect

from .. import i18n
from ..customers.rules import InvalidField
from ..customers.service import InvalidInput, NotFound
from ..membership import coupons, submissions
from ..membership.programme import per_mille_from_zhe
from ..membership.rules import programme_today
from ..policy import Action, may_perform
from .membership import Form, fen_of, field_errors
from .rendering import render
from .security import current_actor

_ = i18n.gettext
TIERS = ("regular", "silver", "gold", "platinum")
CAMPAIGN_FIELDS = ("name", "kind", "amount", "discount", "min_spend", "valid_from", "valid_until", "tiers",
                   "reason")


def _page(request: Request, *, form: dict | None = None, errors: dict | None = None, done: str = "",
          void_form: dict | None = None, void_errors: dict | None = None, status: int = 200) -> Response:
    actor = current_actor(request)
    today = programme_today()
    with request.app.state.db.read() as s:
        rows = coupons.campaigns_in_reach(s, actor)
    form = form or {"kind": "amount", "valid_from": today.isoformat(), "tiers": list(TIERS)}
    return render(request, "coupons/index.html", status=status, rows=rows, form=form, errors=errors or {},
                  done=done, void_form=void_form or {}, void_errors=void_errors or {}, tiers=TIERS, today=today, may_issue=may_perform(actor, Action.COUPON_ISSUE),
                  may_void=may_perform(actor, Action.COUPON_VOID))


@get("/coupons", opt={"action": Action.COUPON_VIEW}, sync_to_thread=True)
def coupons_page(request: Request) -> Response:
    return _page(request, done=request.query_params.get("done", ""))


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat((raw or "").strip())
    except ValueError:
        return None


@post("/coupons/campaigns", opt={"action": Action.COUPON_ISSUE}, sync_to_thread=True)
def issue_campaign(request: Request, data: Form) -> Response:
    actor = current_actor(request)
    form = {k: data.get(k, "") for k in CAMPAIGN_FIELDS if k != "tiers"}
    form["tiers"] = [t for t in TIERS if data.get(f"tier_{t}")]
    try:
        errors: dict[str, str] = {}
        amount = rate = None
        if form["kind"] == "amount":
            try:
                amount = fen_of(form["amount"], "amount")
            except InvalidField as exc:
                errors["amount"] = exc.message
        elif form["kind"] == "discount":
            rate = per_mille_from_zhe(form["discount"])
        try:
            min_spend = fen_of(form["min_spend"] or "0", "min_spend")
        except InvalidField as exc:
            errors["min_spend"], min_spend = exc.message, 0
        try:
            terms = coupons.campaign_terms(kind=form["kind"], amount_fen=amount, rate_per_mille=rate,
                                           min_spend_fen=min_spend, valid_from=_day(form["valid_from"]),
                                           valid_until=_day(form["valid_until"]), tiers=form["tiers"],
                                           today=programme_today())
        except InvalidInput as exc:
            raise InvalidInput({**exc.errors, **errors}) from None
        if errors:
            raise InvalidInput(errors)
        with request.app.state.db.write() as s:
            if not submissions.first_time(s, actor, data.get("form_key")):
                return Redirect(path="/coupons", status_code=303)
            campaign = coupons.issue_campaign(s, actor, name=form["name"], terms=terms, reason=form["reason"])
    except submissions.AlreadySubmitted:
        return Redirect(path="/coupons", status_code=303)
    except (InvalidInput, InvalidField) as exc:
        return _page(request, form=form, errors=field_errors(exc, CAMPAIGN_FIELDS), status=400)
    return Redirect(path=f"/coupons?done=issued-{campaign.issued_count}", status_code=303)


@post("/coupons/void", opt={"action": Action.COUPON_VOID}, sync_to_thread=True)
def void_coupon(request: Request, data: Form) -> Response:
    actor = current_actor(request)
    form = {"code": data.get("code", ""), "reason": data.get("reason", "")}
    try:
        with request.app.state.db.write() as s:
            coupons.void_coupon(s, actor, form["code"], form["reason"])
    except NotFound:
        return _page(request, void_form=form, void_errors={"code": _("No coupon has this code.")}, status=400)
    except (InvalidInput, InvalidField) as exc:
        return _page(request, void_form=form, void_errors=field_errors(exc, ("code", "reason")), status=400)
    return Redirect(path="/coupons?done=voided", status_code=303)


ROUTES = [coupons_page, issue_campaign, void_coupon]
