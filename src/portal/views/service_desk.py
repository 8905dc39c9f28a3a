"""The customer-service desk: a masked card lookup, card loss and freezing, missed-points claims, and application review."""
from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..audit.deferred import read_then_audit
from ..customers import service as customers
from ..customers.rules import InvalidField, looks_like_id_number, looks_like_mobile
from ..membership import applications, cards, desk_search, overview, programme, purchases
from ..membership.rules import parse_card_number
from ..policy import Action, PermissionDenied, may_perform
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

RECENT_DECISIONS = 20
# Errors the domain reports under a name of its own, shown next to the field they belong to.
_FIELD_OF = {"card": "card_number", "number": "card_number"}


def _t(errors: dict[str, str]) -> dict[str, str]:
    return {_FIELD_OF.get(k, k): i18n.gettext(v) for k, v in errors.items()}


def _not_found(exc: LookupError) -> dict[str, str]:
    """The domain says which record is missing in its message: a receipt, or else a card."""
    if "purchase" in str(exc):
        return {"receipt_no": i18n.gettext("No purchase has this receipt number.")}
    return {"card_number": i18n.gettext("No card has this number.")}


# ---------------------------------------------------------------- the desk

def _desk(request: Request, *, status: int = 200, summary=None, number: str = "", form: str = "",
          errors: dict | None = None, values: dict | None = None, notice: str = "", claimed=None,
          matches=None, searched: bool = False) -> Response:
    """The desk page (or, for HTMX, its body): ``form`` names the form the errors belong to."""
    actor = current_actor(request)
    with request.app.state.db.read() as s:
        card_types = {c.code: i18n.data_label(c.name) for c in programme.current_settings(s).card_types}
    return render(request, "service/desk.html", fragment="service/_desk.html", status=status,
                  summary=summary, number=number, form=form, errors=errors or {}, values=values or {},
                  notice=notice, claimed=claimed, yuan=programme.yuan_text, card_types=card_types,
                  matches=matches or [], searched=searched,
                  may_manage=may_perform(actor, Action.SERVICE_CARD),
                  may_claim=may_perform(actor, Action.MEMBER_CLAIM))


def _summary_or_none(request: Request, number: str):
    """The card again after a refused step (a fresh, audited lookup); None if it cannot be shown."""
    st = request.app.state
    try:
        with read_then_audit(st.db) as s:
            return cards.lookup_card(s, st.vault, current_actor(request), number, action=Action.SERVICE_LOOKUP)
    except (InvalidField, customers.NotFound, PermissionDenied):
        return None


@get("/service", opt={"action": Action.SERVICE_LOOKUP}, sync_to_thread=True)
def service_desk(request: Request) -> Response:
    return _desk(request)


@post("/service/lookup", opt={"action": Action.SERVICE_LOOKUP}, sync_to_thread=True, status_code=200)
def lookup_card(request: Request, data: Form) -> Response:
    """By POST so a card number, mobile, ID number or name never sits in a URL, the history or a log.
    A card number opens the card; a mobile, ID number or full name lists the members it finds
    (masked; one match opens its card)."""
    number = data.get("card_number", "").strip()
    st = request.app.state
    actor = current_actor(request)
    # A mobile number also has a card number's shape: mobile and ID number first.
    if number and (parse_card_number(number) is None or looks_like_mobile(number)
                   or looks_like_id_number(number)):
        with st.db.write() as s:
            kind, matches = desk_search.find_members(s, st.vault, actor, number)
        if kind is None:
            return _desk(request, status=400, number=number, form="lookup", errors={"card_number": i18n.gettext(
                "Enter a card number, a mobile or ID number, or the member's full name.")})
        if len(matches) != 1 or not matches[0].card_number:
            return _desk(request, number=number, matches=matches, searched=True)
        number = matches[0].card_number
    try:
        with st.db.write() as s:
            summary = cards.lookup_card(s, st.vault, actor, number, action=Action.SERVICE_LOOKUP)
    except InvalidField as exc:
        return _desk(request, status=400, number=number, form="lookup",
                     errors={exc.field: i18n.gettext(exc.message)})
    except customers.NotFound as exc:
        return _desk(request, status=404, number=number, form="lookup", errors=_not_found(exc))
    return _desk(request, summary=summary, number=summary.number)


def _card_step(s, actor, vault, step: str, number: str, reason: str, id_number: str | None) -> str:
    """Run one life-cycle step on a card; the message to show when it is done."""
    if step == "loss":
        cards.report_loss(s, actor, number, reason, action=Action.SERVICE_CARD, vault=vault, id_number=id_number)
        return i18n.gettext("The card is reported lost and no longer works.")
    cards.freeze(s, actor, number, reason, frozen=step == "freeze", action=Action.SERVICE_CARD)
    return i18n.gettext("The card is frozen.") if step == "freeze" else i18n.gettext("The card is unfrozen.")


@post("/service/cards/{step:str}", opt={"action": Action.SERVICE_CARD}, sync_to_thread=True, status_code=200)
def manage_card(request: Request, step: str, data: Form) -> Response:
    """Report a card lost, freeze or unfreeze it, with a reason; the desk then shows the card as it is now."""
    if step not in ("loss", "freeze", "unfreeze"):
        raise customers.NotFound(step)
    actor = current_actor(request)
    st = request.app.state
    number = data.get("card_number", "").strip()
    reason = data.get("reason", "")
    try:
        with st.db.write() as s:
            done = _card_step(s, actor, st.vault, step, number, reason, data.get("id_number"))
            summary = cards.lookup_card(s, st.vault, actor, number, action=Action.SERVICE_LOOKUP)
    except (InvalidField, customers.InvalidInput, customers.NotFound) as exc:
        if isinstance(exc, cards.HolderIdMismatch):
            with st.db.write() as s:
                cards.note_holder_id_mismatch(s, actor, exc, step)
        if isinstance(exc, InvalidField):
            errors, code = {exc.field: i18n.gettext(exc.message)}, 400
        elif isinstance(exc, customers.InvalidInput):
            errors, code = _t(exc.errors), 400
        else:
            errors, code = _not_found(exc), 404
        return _desk(request, status=code, summary=_summary_or_none(request, number), number=number,
                     form=step, errors=errors, values={"reason": reason})
    return _desk(request, summary=summary, number=summary.number, notice=done)


@post("/service/claims", opt={"action": Action.MEMBER_CLAIM}, sync_to_thread=True, status_code=200)
def claim_missed_points(request: Request, data: Form) -> Response:
    """Attach a sale made without the card to the member's card and credit its points."""
    actor = current_actor(request)
    st = request.app.state
    values = {k: data.get(k, "").strip() for k in ("receipt_no", "card_number")}
    values["reason"] = data.get("reason", "")
    try:
        with st.db.write() as s:
            out = purchases.claim_missed_points(s, actor, values["receipt_no"], values["card_number"],
                                                values["reason"])
            summary = cards.lookup_card(s, st.vault, actor, out.card_number, action=Action.SERVICE_LOOKUP)
    except InvalidField as exc:
        return _desk(request, status=400, form="claim", errors={exc.field: i18n.gettext(exc.message)},
                     values=values)
    except customers.InvalidInput as exc:
        return _desk(request, status=400, form="claim", errors=_t(exc.errors), values=values)
    except customers.NotFound as exc:
        return _desk(request, status=404, form="claim", errors=_not_found(exc), values=values)
    return _desk(request, summary=summary, number=summary.number, claimed=out,
                 notice=i18n.gettext("%(points)s points credited for receipt %(receipt)s.",
                                     points=f"{out.points_earned:,}", receipt=out.receipt_no))


# ---------------------------------------------------------------- applications

def _applications(request: Request, *, status: int = 200, errors: dict | None = None,
                  focus: int | None = None, reasons: dict | None = None) -> Response:
    actor = current_actor(request)
    st = request.app.state
    with read_then_audit(st.db) as s:
        pending = applications.pending_applications(s, actor, "pending")
        decided = (applications.pending_applications(s, actor, "approved", limit=RECENT_DECISIONS)
                   + applications.pending_applications(s, actor, "rejected", limit=RECENT_DECISIONS))
        decided.sort(key=lambda a: (a.reviewed_at is not None, a.reviewed_at, a.id), reverse=True)
        rows = overview.application_rows(s, st.vault, actor, pending + decided[:RECENT_DECISIONS])
    return render(request, "service/applications.html", fragment="service/_applications.html",
                  status=status, pending=[r for r in rows if r["app"].status == "pending"],
                  decided=[r for r in rows if r["app"].status != "pending"], errors=errors or {},
                  focus=focus, reasons=reasons or {}, yuan=programme.yuan_text,
                  fee_methods=applications.FEE_METHODS)


@get("/service/applications", opt={"action": Action.MEMBER_REVIEW}, sync_to_thread=True)
def list_applications(request: Request) -> Response:
    return _applications(request)


@post("/service/applications/{application_id:int}/{verdict:str}", opt={"action": Action.MEMBER_REVIEW},
      sync_to_thread=True)
def review_application(request: Request, application_id: int, verdict: str, data: Form) -> Response:
    """approve | reject (a reason is required to reject); back to the list, or its fragment for HTMX."""
    if verdict not in ("approve", "reject"):
        raise customers.NotFound(verdict)
    actor = current_actor(request)
    reason = data.get("reason", "")
    try:
        with request.app.state.db.write() as s:
            applications.review_application(s, actor, application_id, approve=verdict == "approve",
                                            reason=reason, fee_method=data.get("fee_method", ""))
    except customers.InvalidInput as exc:
        return _applications(request, status=400, errors=_t(exc.errors), focus=application_id,
                             reasons={application_id: reason})
    except InvalidField as exc:
        return _applications(request, status=400, errors={exc.field: i18n.gettext(exc.message)},
                             focus=application_id, reasons={application_id: reason})
    except customers.NotFound:
        return _applications(request, status=404, focus=application_id,
                             errors={"application": i18n.gettext("No such application.")})
    if request.headers.get("hx-request") == "true":
        return _applications(request)
    return Redirect(path="/service/applications", status_code=303)


ROUTES = [service_desk, lookup_card, manage_card, claim_missed_points, list_applications, review_application]
