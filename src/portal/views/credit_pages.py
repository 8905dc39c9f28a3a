"""A customer's credit page: grant, limit, outstanding boxes, sales on terms, applications,
delivery, payments and write-off. Each POST declares its action and the domain decides again on
the file; success redirects back (303); bad input or a refused sale re-renders with the message
next to the field (400, nothing written)."""
from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..audit.deferred import read_then_audit
from ..catalogue.service import UnknownProduct, catalogue_on, product_on
from ..credit import accounts, board, receivables, sales
from ..credit.models import CreditOrder
from ..credit.rules import CreditRefused
from ..credit.terms import terms_on
from ..customers.rules import InvalidField
from ..customers.service import InvalidInput, get_file_for
from ..membership.rules import programme_today
from ..policy import Action, can
from .membership import fen_of, suggest_receipt
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
R = "/customers/{file_id:uuid}/credit"
_ = i18n.gettext


def _messages(exc: Exception) -> dict[str, str]:
    if isinstance(exc, CreditRefused):
        return {exc.field: i18n.gettext(exc.template) % exc.params if exc.params else i18n.gettext(exc.template)}
    if isinstance(exc, InvalidField):
        return {exc.field: i18n.gettext(str(exc))}
    return {k: i18n.gettext(v) for k, v in exc.errors.items()}


def credit_page(request: Request, file_id: UUID, *, form=None, errors=None, status=200) -> Response:
    actor = current_actor(request)
    today = programme_today()
    with read_then_audit(request.app.state.db) as s:  # the page is audited
        f = get_file_for(s, actor, file_id, Action.CREDIT_VIEW)
        grant = accounts.live_grant(s, f.id)
        terms = terms_on(s, today)
        ctx = dict(file=f, grant=grant, limit=terms.limit(grant.credit_class) if grant else None,
                   outstanding=accounts.outstanding_boxes(s, f.id), orders=board.orders_of(s, f.id, today),
                   applications=board.applications_of(s, f.id), products=catalogue_on(s, today),
                   methods=receivables.METHODS, today=today,
                   may={a.value for a in (Action.CREDIT_GRANT, Action.CREDIT_SELL, Action.CREDIT_DECIDE,
                                          Action.RECEIVABLE_COLLECT, Action.RECEIVABLE_WRITE_OFF)
                        if can(actor, a, owner_id=f.owner_id, unit_path=f.unit_path)})
        from ..audit import service as audit
        audit.record(s, actor, Action.CREDIT_VIEW.value, object_type="customer", object_id=f.file_no,
                     detail=f"credit page, {len(ctx['orders'])} orders")
    form = form or {"receipt_no": suggest_receipt(today), "terms": "credit", "boxes": "1"}
    return render(request, "credit/file.html", status=status, form=form, errors=errors or {}, me=actor, **ctx)


@get(R, opt={"action": Action.CREDIT_VIEW}, sync_to_thread=True)
def show_credit(request: Request, file_id: UUID) -> Response:
    return credit_page(request, file_id)


def _run(request: Request, file_id: UUID, data: dict, work, echo=()) -> Response:
    try:
        with request.app.state.db.write() as s:
            work(s)
    except (InvalidInput, InvalidField, CreditRefused) as exc:
        return credit_page(request, file_id, form={k: data.get(k, "") for k in echo},
                           errors=_messages(exc), status=400)
    return Redirect(path=f"/customers/{file_id}/credit", status_code=303)


@post(R + "/grant", opt={"action": Action.CREDIT_GRANT}, sync_to_thread=True)
def grant_credit(request: Request, file_id: UUID, data: Form) -> Response:
    actor = current_actor(request)
    if data.get("revoke"):
        return _run(request, file_id, data, lambda s: accounts.revoke_credit(s, actor, file_id, data.get("reason", "")))
    return _run(request, file_id, data, lambda s: accounts.grant_credit(s, actor, file_id, data.get("reason", "")))


def _int(raw: str | None, field: str) -> int:
    text = (raw or "").strip() or "0"
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        raise InvalidInput({field: _("Enter a whole number.")})
    return int(text)


def _opt_id(raw: str | None, field: str) -> int | None:
    return _int(raw, field) or None


@post(R + "/sales", opt={"action": Action.CREDIT_SELL}, sync_to_thread=True)
def sell_on_terms(request: Request, file_id: UUID, data: Form) -> Response:
    actor = current_actor(request)
    st = request.app.state

    def work(s):
        sale = sales.TermsSale(
            customer_id=file_id, receipt_no=data.get("receipt_no", ""), terms=data.get("terms", ""),
            items=(sales.Item((data.get("product") or "").strip(), _int(data.get("boxes"), "lines")),),
            extra_days=_int(data.get("extra_days"), "period_days"),
            application_id=_opt_id(data.get("application_id"), "application_id"),
            discount_application_id=_opt_id(data.get("discount_application_id"), "discount_application_id"))
        sales.sell_on_terms(s, st.vault, actor, sale)
    return _run(request, file_id, data, work, echo=("receipt_no", "terms", "product", "boxes", "extra_days",
                                                     "application_id", "discount_application_id"))


@post(R + "/applications", opt={"action": Action.CREDIT_SELL}, sync_to_thread=True)
def apply(request: Request, file_id: UUID, data: Form) -> Response:
    actor = current_actor(request)

    def work(s):
        if data.get("kind") == "discount":
            code = (data.get("product") or "").strip()
            try:
                p = product_on(s, code, programme_today())
            except UnknownProduct:
                raise InvalidInput({"product": _("Choose a product from the catalogue.")}) from None
            accounts.apply_for_discount(s, actor, file_id, reason=data.get("reason", ""), product_code=p.code,
                                        price_fen=fen_of(data.get("price", ""), "price"),
                                        group_price_fen=p.group_price_fen)
        else:
            accounts.apply_for_credit(s, actor, file_id, reason=data.get("reason", ""),
                                      extra_boxes=data.get("extra_boxes"), extra_days=data.get("extra_days"))
    return _run(request, file_id, data, work, echo=("kind", "reason", "extra_boxes", "extra_days", "product", "price"))


@post(R + "/applications/{application_id:int}/decide", opt={"action": Action.CREDIT_DECIDE}, sync_to_thread=True)
def decide_application(request: Request, file_id: UUID, application_id: int, data: Form) -> Response:
    actor = current_actor(request)

    def work(s):
        accounts.decide(s, actor, application_id, approve=data.get("decision") == "approve",
                        note=data.get("note", ""), discount_valid_days=terms_on(s, programme_today()).discount_valid_days)
    return _run(request, file_id, data, work, echo=("note",))


def _order_on_file(s, order_id: int, file_id: UUID) -> None:
    o = s.get(CreditOrder, order_id)
    if o is None or o.customer_id != file_id:
        raise InvalidInput({"_form": _("No such order on this file.")})


@post(R + "/orders/{order_id:int}/deliver", opt={"action": Action.CREDIT_SELL}, sync_to_thread=True)
def deliver_order(request: Request, file_id: UUID, order_id: int, data: Form) -> Response:
    actor = current_actor(request)

    def work(s):
        _order_on_file(s, order_id, file_id)
        raw = (data.get("delivered_on") or "").strip()
        try:
            on = date.fromisoformat(raw) if raw else None
        except ValueError:
            raise InvalidInput({"delivered_on": _("Enter a date like 2026-03-10.")}) from None
        receivables.deliver(s, actor, order_id, on=on)
    return _run(request, file_id, data, work)


@post(R + "/orders/{order_id:int}/payments", opt={"action": Action.RECEIVABLE_COLLECT}, sync_to_thread=True)
def record_payment(request: Request, file_id: UUID, order_id: int, data: Form) -> Response:
    actor = current_actor(request)

    def work(s):
        _order_on_file(s, order_id, file_id)
        receivables.record_payment(s, actor, order_id, amount_fen=fen_of(data.get("amount", ""), "amount"),
                                   method=data.get("method", ""), reference=data.get("reference", ""),
                                   received_by=data.get("received_by", ""))
    return _run(request, file_id, data, work, echo=("amount", "method", "reference", "received_by"))


@post(R + "/orders/{order_id:int}/write-off", opt={"action": Action.RECEIVABLE_WRITE_OFF}, sync_to_thread=True)
def write_off(request: Request, file_id: UUID, order_id: int, data: Form) -> Response:
    actor = current_actor(request)

    def work(s):
        _order_on_file(s, order_id, file_id)
        receivables.write_off(s, actor, order_id, reason=data.get("reason", ""))
    return _run(request, file_id, data, work, echo=("reason",))


ROUTES = [show_credit, grant_credit, sell_on_terms, apply, decide_application, deliver_order, record_payment,
          write_off]
