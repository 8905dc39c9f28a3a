"""Membership on a customer file: the panel's context, its action forms and the purchase form.

Every action is a POST with the CSRF token, declares its action for the route gate, and is
decided again by the domain on the file the card (or receipt) belongs to. Success sends the
browser back to the file's membership section (303); bad input shows the file page again
with the message next to the field (400) and nothing written.
"""
from __future__ import annotations

import re
import secrets
from datetime import date
from decimal import Decimal
from typing import Annotated, Callable
from uuid import UUID

from litestar import Request, Response, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..access import service as access
from ..audit.deferred import read_then_audit
from ..customers import rules as customer_rules
from ..customers import service as customers
from ..customers.rules import InvalidField
from ..customers.service import InvalidInput, NotFound
from ..membership import cards, members, overview, points, purchases, submissions
from ..membership.ledger import InsufficientPoints
from ..membership.outcomes import PAYMENT_METHODS
from ..membership.rules import programme_today, redemption_open
from ..membership.settings import Tier
from ..policy import Action, PermissionDenied
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
SECRET_FIELDS = ("_csrf", "pin", "id_number", "holder_check")  # never echoed back into a page
_ = i18n.gettext  # messages raised here are literal _() calls, so extraction finds them
_AMOUNT = re.compile(r"[+-]?[0-9]{1,10}(?:\.([0-9]+))?")


# ---------------------------------------------------------------- money and numbers

def yuan(fen: int | None) -> str:
    """The Jinja ``yuan`` filter: 123450 -> "¥1,234.50", -5 -> "-¥0.05"."""
    if fen is None:
        return ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{'-' if fen < 0 else ''}¥{whole:,}.{cents:02d}"


def fen_of(raw: str, field: str, *, signed: bool = False) -> int:
    """"128.50" -> 12850 exactly (Decimal from the string, never a float); at most two decimals."""
    text = re.sub(r"[¥￥,，\s]", "", raw or "")
    m = _AMOUNT.fullmatch(text)
    if not m or (not signed and text[0] in "+-"):
        raise InvalidField(field, "amount.invalid", _("Enter an amount in yuan, like 128.50."))
    if m.group(1) is not None and len(m.group(1)) > 2:
        raise InvalidField(field, "amount.decimals", _("At most two decimals: amounts are in whole fen."))
    return int(Decimal(text) * 100)


def whole_number(raw: str, field: str, *, signed: bool = False) -> int:
    text = (raw or "").strip().replace(",", "")
    if not re.fullmatch(r"[+-]?[0-9]{1,9}" if signed else r"[0-9]{1,9}", text):
        raise InvalidField(field, f"{field}.invalid", _("Enter a whole number."))
    return int(text)


# ---------------------------------------------------------------- errors shown next to fields

def field_errors(exc: Exception, fields: tuple[str, ...], rename: dict[str, str] | None = None) -> dict[str, str]:
    """{form field: translated message}; what no field of the form shows goes under "_form"."""
    if isinstance(exc, InsufficientPoints):
        raw = {exc.field: i18n.gettext("%(requested)s points requested but only %(available)s can be "
                                       "redeemed now.", requested=exc.requested, available=exc.available)}
    elif isinstance(exc, InvalidField):
        raw = {exc.field: i18n.gettext(exc.message)}
    else:
        raw = {k: i18n.gettext(v) for k, v in exc.errors.items()}
    out: dict[str, str] = {}
    for key, message in raw.items():
        key = (rename or {}).get(key, key)
        key = key if key in fields else "_form"
        out[key] = f"{out[key]} {message}" if key in out else message
    return out


def _echo(data: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in data.items() if k not in SECRET_FIELDS}


# ---------------------------------------------------------------- the section on the file page

def _next_tier(panel, settings) -> dict | None:
    if panel is None:
        return None
    for tier in (Tier.SILVER, Tier.GOLD):
        if tier > Tier(panel.tier):
            return {"tier": tier.value, "points": settings.tier_points(tier),
                    "spend_fen": settings.tier_spend_fen(tier)}
    return None


def file_context(s, actor, file_id: UUID, card=None) -> dict:
    """The membership section for a file page whose view was just authorised and audited;
    empty when the viewer may not see membership on this file. ``card``: the file as
    customers.read_file() read it in this transaction (then it is not read again)."""
    try:
        if card is not None:
            f, grant_id = customers.open_card_for(s, actor, card, Action.MEMBER_VIEW)
        else:
            f, grant_id = customers.open_for(s, actor, file_id, Action.MEMBER_VIEW)
    except PermissionDenied:
        return {}
    panel, info, settings = overview.file_section(s, actor, f, grant_id)
    today = programme_today()
    return {"panel": panel, "info": info, "settings": settings, "next_tier": _next_tier(panel, settings),
            "card_types": {c.code: i18n.data_label(c.name) for c in settings.card_types}, "today": today,
            "payment_methods": PAYMENT_METHODS, "file_id": f.id,
            "redemption_open": redemption_open(today, settings),
            "form": "", "errors": {}, "values": {}}


def file_page(request: Request, file_id: UUID, *, status: int = 200, form: str = "",
              errors: dict[str, str] | None = None, values: dict[str, str] | None = None) -> Response:
    """The file page again (audited like any view), with one membership form's errors in place."""
    actor = current_actor(request)
    st = request.app.state
    with read_then_audit(st.db) as s:
        card = customers.view_file(s, st.vault, actor, file_id)
        grants = (access.grants_on_file(s, card.id)
                  if card.owner_id == actor.user_id or "customer.reassign" in card.allowed else None)
        membership = file_context(s, actor, file_id)
    membership.update(form=form, errors=errors or {}, values=values or {})
    return render(request, "customers/detail.html", status=status, card=card, grants=grants,
                  categories=customer_rules.CATEGORY_LABELS, membership=membership)


def _back(file_id: UUID) -> Response:
    return Redirect(path=f"/customers/{file_id}#membership", status_code=303)


def _step(request: Request, file_id: UUID, data: dict[str, str], *, form: str, fields: tuple[str, ...],
          run: Callable, rename: dict[str, str] | None = None, guarded: bool = False) -> Response:
    """Run one use case in one transaction; on bad input show the file page with the message."""
    actor = current_actor(request)
    st = request.app.state

    def once(s):
        # A double click or a reload sends the same one-time key: act on the first only.
        if submissions.first_time(s, actor, data.get("form_key")):
            run(s, actor, st.vault)

    try:
        if guarded:  # a wrong PIN undoes the step but is kept (cards.guarded), then reported
            cards.guarded(st.db, actor, once)
        else:
            with st.db.write() as s:
                once(s)
    except submissions.AlreadySubmitted:
        return _back(file_id)
    except (InvalidInput, InvalidField) as exc:
        if isinstance(exc, cards.HolderIdMismatch):
            with st.db.write() as s:
                cards.note_holder_id_mismatch(s, actor, exc, form.split("-")[0])
        return file_page(request, file_id, status=400, form=form, values=_echo(data),
                         errors=field_errors(exc, fields, {"card_number": "_form", **(rename or {})}))
    return _back(file_id)


def _card_on_file(s, actor, file_id: UUID, number: str, action: Action) -> str:
    """The card (authorised for ``action``) must belong to the file in the address."""
    hand = cards.find_card(s, actor, number, action, lock=False)
    if hand.file.id != file_id:
        raise NotFound("card is not on this file")
    return hand.card.number


def _card_step(request: Request, file_id: UUID, data: dict[str, str], kind: str, action: Action,
               fields: tuple[str, ...], work: Callable, **kw) -> Response:
    """A step on one card of the file: ``work(s, actor, vault, number)``."""
    def run(s, actor, vault):
        work(s, actor, vault, _card_on_file(s, actor, file_id, data.get("card", ""), action))
    return _step(request, file_id, data, form=f"{kind}-{data.get('card', '')}", fields=fields, run=run, **kw)


R = "/customers/{file_id:uuid}"


@post(R + "/cards/freeze", opt={"action": Action.CARD_MANAGE}, sync_to_thread=True)
def freeze_card(request: Request, file_id: UUID, data: Form) -> Response:
    return _card_step(request, file_id, data, "freeze", Action.CARD_MANAGE, ("reason",),
                      lambda s, a, v, n: cards.freeze(s, a, n, data.get("reason", "")))


@post(R + "/cards/unfreeze", opt={"action": Action.CARD_MANAGE}, sync_to_thread=True)
def unfreeze_card(request: Request, file_id: UUID, data: Form) -> Response:
    return _card_step(request, file_id, data, "unfreeze", Action.CARD_MANAGE, ("reason",),
                      lambda s, a, v, n: cards.freeze(s, a, n, data.get("reason", ""), frozen=False))


@post(R + "/cards/loss", opt={"action": Action.CARD_MANAGE}, sync_to_thread=True)
def report_card_lost(request: Request, file_id: UUID, data: Form) -> Response:
    return _card_step(request, file_id, data, "loss", Action.CARD_MANAGE, ("reason", "id_number"),
                      lambda s, a, v, n: cards.report_loss(s, a, n, data.get("reason", ""), vault=v,
                                                           id_number=data.get("id_number")))


@post(R + "/cards/replace", opt={"action": Action.CARD_MANAGE}, sync_to_thread=True)
def replace_card(request: Request, file_id: UUID, data: Form) -> Response:
    return _card_step(request, file_id, data, "replace", Action.CARD_MANAGE, ("reason", "id_number"),
                      lambda s, a, v, n: cards.replace(s, a, n, data.get("reason", ""), vault=v,
                                                       id_number=data.get("id_number")))


@post(R + "/cards/renew", opt={"action": Action.CARD_MANAGE}, sync_to_thread=True)
def renew_card(request: Request, file_id: UUID, data: Form) -> Response:
    return _card_step(request, file_id, data, "renew", Action.CARD_MANAGE, ("reason",),
                      lambda s, a, v, n: cards.renew(s, a, n, data.get("reason", "")))


@post(R + "/cards/pin", opt={"action": Action.CARD_MANAGE}, sync_to_thread=True)
def set_card_pin(request: Request, file_id: UUID, data: Form) -> Response:
    return _card_step(request, file_id, data, "pin", Action.CARD_MANAGE, ("pin", "id_number"),
                      lambda s, a, v, n: cards.set_pin(s, a, n, data.get("pin", ""), vault=v,
                                                       id_number=data.get("id_number")))


@post(R + "/cards/cancel", opt={"action": Action.CARD_CANCEL}, sync_to_thread=True)
def cancel_card(request: Request, file_id: UUID, data: Form) -> Response:
    return _card_step(request, file_id, data, "cancel", Action.CARD_CANCEL, ("reason",),
                      lambda s, a, v, n: cards.cancel(s, a, n, data.get("reason", "")))


@post(R + "/cards/restore", opt={"action": Action.CARD_CANCEL}, sync_to_thread=True)
def restore_card(request: Request, file_id: UUID, data: Form) -> Response:
    def work(s, a, v, n):
        if data.get("keep_points") not in ("yes", "no"):
            raise InvalidField("keep_points", "keep_points.required", _("Choose whether the points are kept."))
        if data.get("keep_spend", "yes") not in ("yes", "no"):
            raise InvalidField("keep_spend", "keep_spend.required", _("Choose whether the spend still counts."))
        cards.restore(s, a, n, data.get("reason", ""), keep_points=data["keep_points"] == "yes",
                      keep_spend=data.get("keep_spend", "yes") == "yes")
    return _card_step(request, file_id, data, "restore", Action.CARD_CANCEL,
                      ("reason", "keep_points", "keep_spend"), work)


@post(R + "/redeem", opt={"action": Action.MEMBER_REDEEM}, sync_to_thread=True)
def redeem_on_file(request: Request, file_id: UUID, data: Form) -> Response:
    return _card_step(request, file_id, data, "redeem", Action.MEMBER_REDEEM, ("item",),
                      lambda s, a, v, n: points.redeem_points(s, a, n, data.get("item", ""),
                                                              form_key=data.get("form_key")),
                      rename={"points": "item"})


@post(R + "/stored-value/recharge", opt={"action": Action.MEMBER_STORED_VALUE}, sync_to_thread=True)
def recharge_stored_value(request: Request, file_id: UUID, data: Form) -> Response:
    def work(s, a, v, n):
        method = data.get("payment_method", "")
        if method not in PAYMENT_METHODS or method in ("stored_value", "points"):
            raise InvalidField("payment_method", "payment.invalid", _("Choose a payment method."))
        points.recharge_stored_value(s, a, n, fen_of(data.get("amount", ""), "amount"), payment_method=method)
    return _card_step(request, file_id, data, "recharge", Action.MEMBER_STORED_VALUE,
                      ("amount", "payment_method"), work, rename={"amount_fen": "amount"})


@post(R + "/stored-value/spend", opt={"action": Action.MEMBER_STORED_VALUE}, sync_to_thread=True)
def spend_stored_value(request: Request, file_id: UUID, data: Form) -> Response:
    def work(s, a, v, n):
        points.spend_stored_value(s, v, a, n, fen_of(data.get("amount", ""), "amount"),
                                  pin=data.get("pin") or None, id_number=data.get("id_number") or None)
    return _card_step(request, file_id, data, "spend", Action.MEMBER_STORED_VALUE, ("amount", "pin"), work,
                      rename={"amount_fen": "amount"}, guarded=True)


@post(R + "/points/adjust", opt={"action": Action.MEMBER_ADJUST}, sync_to_thread=True)
def adjust_points(request: Request, file_id: UUID, data: Form) -> Response:
    def work(s, a, v, n):
        kind = "event" if data.get("kind") == "event" else "adjust"
        points.adjust_points(s, a, n, whole_number(data.get("points", ""), "points", signed=True),
                             data.get("reason", ""), kind=kind)
    return _card_step(request, file_id, data, "adjust", Action.MEMBER_ADJUST, ("points", "reason"), work)


@post(R + "/stored-value/adjust", opt={"action": Action.MEMBER_ADJUST}, sync_to_thread=True)
def adjust_stored_value(request: Request, file_id: UUID, data: Form) -> Response:
    return _card_step(request, file_id, data, "sv_adjust", Action.MEMBER_ADJUST, ("amount", "reason"),
                      lambda s, a, v, n: points.adjust_stored_value(
                          s, a, n, fen_of(data.get("amount", ""), "amount", signed=True), data.get("reason", "")),
                      rename={"amount_fen": "amount", "note": "reason"})


@post(R + "/purchases/return", opt={"action": Action.MEMBER_PURCHASE}, sync_to_thread=True)
def return_purchase(request: Request, file_id: UUID, data: Form) -> Response:
    def run(s, actor, vault):
        customers.get_file_for(s, actor, file_id, Action.MEMBER_PURCHASE)
        purchases.return_purchase(s, vault, actor, data.get("receipt_no", ""), data.get("reason", ""),
                                  customer_id=file_id)
    return _step(request, file_id, data, form=f"return-{data.get('receipt_no', '')}", fields=("reason",), run=run)


@post(R + "/tier", opt={"action": Action.MEMBER_TIER}, sync_to_thread=True)
def set_member_tier(request: Request, file_id: UUID, data: Form) -> Response:
    return _step(request, file_id, data, form="tier", fields=("tier", "floor", "ceiling", "reason"),
                 run=lambda s, a, v: members.set_tier(s, a, file_id, tier=data.get("tier", ""),
                                                      floor=data.get("floor", ""), ceiling=data.get("ceiling", ""),
                                                      reason=data.get("reason", "")))


# ---------------------------------------------------------------- the purchase form

def suggest_receipt(today: date) -> str:
    return f"P{today:%Y%m%d}{secrets.randbelow(10_000):04d}"


ROUTES = [freeze_card, unfreeze_card, report_card_lost, replace_card, renew_card, set_card_pin, cancel_card,
          restore_card, redeem_on_file, recharge_stored_value, spend_stored_value, adjust_points,
          adjust_stored_value, return_purchase, set_member_tier]
