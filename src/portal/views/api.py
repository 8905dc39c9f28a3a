"""The POS-facing JSON API under /api/v1: card lookup, purchases, redemptions, stored value, returns.

A terminal authenticates with its API key (``Authorization: Bearer <key>`` or ``X-API-Key``;
checked by the global guard, see ``security.authorise_api_call``) and acts as role "terminal"
for its unit. Every write needs an ``Idempotency-Key`` header: a retried call gets the first
answer back and is never counted twice (``portal.pos.idempotency``). Errors are always JSON:
``{"error": {"code", "field", "message"}}`` — 400 a malformed request (a body that does not
decode, a value outside its documented pattern, an unknown field), 401 a missing or bad key,
403 a member outside the terminal's unit, 404 no such card or receipt, 405 a method the address
does not take (with Allow), 409 the card's or account's state forbids it (lost, frozen, expired,
not enough points or stored value, receipt already recorded or returned), 415 a body not sent as
application/json, 422 a value the programme refuses (rules of dates and of several fields, named
in each operation), 429 too many calls with invalid keys from one address in a minute (with
Retry-After). The OpenAPI document is at /api/v1/schema and describes these routes only.
"""
from __future__ import annotations

import copy
from typing import Annotated, Any, Callable

import anyio
import msgspec
from litestar import MediaType, Request, Response, Router, get, post, route
from litestar.enums import HttpMethod
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Server, Tag
from litestar.params import Parameter
from msgspec import Struct
from sqlalchemy.orm import Session

from ..audit.deferred import read_then_audit
from ..credit import sales as credit_sales
from ..membership import cards, points, purchases
from ..membership.outcomes import PurchaseRequest
from ..membership.rules import PurchaseLine
from ..policy import Action
from ..pos import idempotency
from ..pos.schema import (CARD_RE, RECEIPT_RE, CardOut, PurchaseIn, PurchaseLineIn, PurchaseOut, RedemptionIn,
                          RedemptionOut, ReturnIn, ReturnOut, StoredValueOut, StoredValueSpendIn, exactly,
                          fen_of, yuan_of)
from .api_errors import (EXCEPTION_HANDLERS, PREFIX, check_body, documented_errors, error_response,
                         is_api_path, on_unrouted)
from .security import current_actor

__all__ = ["ROUTES", "is_api_path", "on_unrouted", "openapi_config"]

# Read by the global guard: the terminal's key, never a session cookie or CSRF token.
API_OPT = {"action": Action.MEMBER_POS, "api": True}
IdempotencyKey = Annotated[str, Parameter(
    header="Idempotency-Key", required=True, min_length=1, max_length=100, pattern=idempotency.KEY_PATTERN,
    description="A unique key per logical request (e.g. a UUID): 1 to 100 visible ASCII characters. "
                "A retry with the same key and body returns the first answer; the same key with "
                "another body is refused (422).")]
READ_ERRORS = documented_errors(400, 401, 403, 404, 422, 429)
WRITE_ERRORS = documented_errors(400, 401, 403, 404, 409, 415, 422, 429)
# Rules no schema can say (today's date, several fields at once): 422, named in each description.
PROGRAMME_RULES = " Refused by the programme (422): "


# ---------------------------------------------------------------- plumbing

def _encode(out: Struct) -> str:
    return msgspec.json.encode(out).decode("utf-8")


async def _write_once(request: Request, key: str, data: Struct,
                      use_case: Callable[[Session], tuple[int, Struct]]) -> Response:
    """Run a write under the terminal's Idempotency-Key: the first answer is stored with the
    write, in its transaction, and replayed byte for byte on a retry."""
    actor = current_actor(request)
    key = idempotency.check_key(key)
    req_hash = idempotency.request_hash(request.method, request.url.path, msgspec.json.encode(data))

    def run(s: Session) -> tuple[int, str]:
        status, out = use_case(s)
        return status, _encode(out)

    db = request.app.state.db

    def once() -> idempotency.Answer:
        # A wrong PIN undoes the call but is kept, so that guesses lock the card's stored value
        # (the same guard as the pages').
        return idempotency.run_once(db, actor.terminal_id, key, req_hash, run,
                                    transaction=lambda work: cards.guarded(db, actor, work))

    answer = await anyio.to_thread.run_sync(once)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return Response(content=answer.body.encode("utf-8"), status_code=answer.status_code,
                    media_type=MediaType.JSON, headers=headers)


# ---------------------------------------------------------------- endpoints

@get("/cards/{number:str}", opt=API_OPT, tags=["cards"], summary="Look up a card (masked)",
     description="The card's standing and balances; the holder's name masked. Audited as member.pos.",
     responses=READ_ERRORS)
async def lookup_card(request: Request, number: Annotated[str, Parameter(
        description="Card number, e.g. 755 00243 (URL-encoded) or 75500243.", min_length=1, max_length=20,
        pattern=CARD_RE)]) -> CardOut:
    actor = current_actor(request)
    state = request.app.state
    exactly("card", number, "number")

    def run() -> CardOut:
        with read_then_audit(state.db) as s:  # the audit entry is committed before anything is shown
            c = cards.lookup_card(s, state.vault, actor, number, action=Action.MEMBER_POS)
        return CardOut(number=c.number, card_status=c.card_status, account_status=c.account_status,
                       card_type=c.card_type, named=c.named, tier=c.tier, member_status=c.member_status,
                       masked_name=c.masked_name, points_balance=c.points_balance,
                       redeemable_points=c.redeemable_points, stored_value_fen=c.stored_value_fen,
                       stored_value_yuan=yuan_of(c.stored_value_fen), issued_on=c.issued_on,
                       expires_on=c.expires_on, usable=c.usable)

    return await anyio.to_thread.run_sync(run)


@post("/purchases", opt=API_OPT, tags=["purchases"], status_code=201, summary="Record a purchase",
      description="Prices the sale for the card's member (discount, points), pays from stored value "
                  "if asked (with the PIN for a named card), and may make the buyer a member. "
                  "Without card_number the sale is anonymous; its points can be claimed later."
                  + PROGRAMME_RULES + "purchased_on in the future or before the claim period "
                  "(date.future, date.too_old); lines totalling more than ¥10,000,000 "
                  "(total.too_large); payment_method stored_value without card_number "
                  "(payment.no_card); stored value from a named card without the member's PIN, "
                  "or a wrong one (pin.invalid); a coupon that is not the card member's, not yet "
                  "valid, not for their tier or above the purchase (coupon.unknown, coupon.not_yet, "
                  "coupon.tier, coupon.min_spend; used, withdrawn or expired: 409); points without "
                  "a card or more than the price needs (points.no_card, points.too_many; more "
                  "than can be redeemed, or outside the redemption months: 409). On the holder's birthday the birthday discount needs holder_check.",
      responses=WRITE_ERRORS)
async def record_purchase(request: Request, data: PurchaseIn,
                          idempotency_key: IdempotencyKey) -> Response[PurchaseOut]:
    actor = current_actor(request)
    vault = request.app.state.vault
    exactly("receipt", data.receipt_no, "receipt_no")
    exactly("card", data.card_number, "card_number")
    exactly("coupon", data.coupon_code, "coupon_code")
    lines = tuple(PurchaseLine(product=ln.product, quantity=ln.quantity,
                               unit_price_fen=fen_of(ln.unit_price_yuan, f"lines[{i}].unit_price_yuan"),
                               special_price=ln.special_price, group_buy=ln.group_buy)
                  for i, ln in enumerate(data.lines))
    req = PurchaseRequest(receipt_no=data.receipt_no, lines=lines, payment_method=data.payment_method,
                          card_number=data.card_number, purchased_on=data.purchased_on, pin=data.pin,
                          coupon_code=data.coupon_code, points_used=data.points_used,
                          holder_check=data.holder_check)

    def use_case(s: Session) -> tuple[int, PurchaseOut]:
        o = credit_sales.record_sale(s, vault, actor, req, action=Action.MEMBER_POS)
        return 201, PurchaseOut(
            purchase_id=o.purchase_id, receipt_no=o.receipt_no,
            list_total_fen=o.list_total_fen, list_total_yuan=yuan_of(o.list_total_fen),
            discount_total_fen=o.discount_total_fen, discount_total_yuan=yuan_of(o.discount_total_fen),
            paid_total_fen=o.paid_total_fen, paid_total_yuan=yuan_of(o.paid_total_fen),
            rate_per_mille=o.rate_per_mille, discount_reason=o.discount_reason,
            points_earned=o.points_earned, points_balance=o.points_balance,
            stored_value_fen=o.stored_value_fen, stored_value_yuan=yuan_of(o.stored_value_fen),
            tier=o.tier, card_number=o.card_number, joined=o.joined, tier_changed_to=o.tier_changed_to,
            coupon_discount_fen=o.coupon_discount_fen, coupon_discount_yuan=yuan_of(o.coupon_discount_fen),
            points_paid=o.points_paid, points_paid_fen=o.points_paid_fen,
            points_paid_yuan=yuan_of(o.points_paid_fen), birthday_check=o.birthday_check)

    return await _write_once(request, idempotency_key, data, use_case)


@post("/redemptions", opt=API_OPT, tags=["points"], status_code=201, summary="Redeem points",
      description="Redeems a catalogue item with the card's points (only points credited before "
                  "today, within the redemption windows)." + PROGRAMME_RULES + "an item_code "
                  "not in the catalogue.",
      responses=WRITE_ERRORS)
async def redeem_points(request: Request, data: RedemptionIn,
                        idempotency_key: IdempotencyKey) -> Response[RedemptionOut]:
    actor = current_actor(request)
    exactly("card", data.card_number, "card_number")

    def use_case(s: Session) -> tuple[int, RedemptionOut]:
        o = points.redeem_points(s, actor, data.card_number, data.item_code, action=Action.MEMBER_POS)
        return 201, RedemptionOut(redemption_id=o.redemption_id, card_number=o.card_number,
                                  item_code=o.item_code, item_name=o.item_name, points=o.points,
                                  value_fen=o.value_fen, value_yuan=yuan_of(o.value_fen),
                                  points_balance=o.points_balance)

    return await _write_once(request, idempotency_key, data, use_case)


@post("/stored-value/spend", opt=API_OPT, tags=["stored value"], status_code=201,
      summary="Spend stored value",
      description="Debits the card's stored value; a named card needs the member's PIN."
                  + PROGRAMME_RULES + "a named card without its PIN, or a wrong one (pin.invalid).",
      responses=WRITE_ERRORS)
async def spend_stored_value(request: Request, data: StoredValueSpendIn,
                             idempotency_key: IdempotencyKey) -> Response[StoredValueOut]:
    actor = current_actor(request)
    vault = request.app.state.vault
    exactly("card", data.card_number, "card_number")
    amount = fen_of(data.amount_yuan, "amount_yuan")  # the schema's pattern: ¥0.01 to ¥1,000,000

    def use_case(s: Session) -> tuple[int, StoredValueOut]:
        o = points.spend_stored_value(s, vault, actor, data.card_number, amount, pin=data.pin,
                                      id_number=None, ref=data.reference, action=Action.MEMBER_POS)
        return 201, StoredValueOut(card_number=o.card_number, kind=o.kind, amount_fen=o.amount_fen,
                                   amount_yuan=yuan_of(o.amount_fen), balance_fen=o.balance_fen,
                                   balance_yuan=yuan_of(o.balance_fen), entry_id=o.entry_id)

    return await _write_once(request, idempotency_key, data, use_case)


@post("/purchases/{receipt_no:str}/return", opt=API_OPT, tags=["purchases"], status_code=200,
      summary="Return a purchase",
      description="Takes back a whole purchase: reverses its points (any already spent are reported "
                  "as a shortfall) and refunds stored value it was paid with.",
      responses=WRITE_ERRORS)
async def return_purchase(request: Request, receipt_no: Annotated[str, Parameter(
        description="The sale's receipt number.", min_length=1, max_length=40, pattern=RECEIPT_RE)],
                          data: ReturnIn, idempotency_key: IdempotencyKey) -> Response[ReturnOut]:
    actor = current_actor(request)
    exactly("receipt", receipt_no, "receipt_no")
    vault = request.app.state.vault

    def use_case(s: Session) -> tuple[int, ReturnOut]:
        o = purchases.return_purchase(s, vault, actor, receipt_no, data.reason, action=Action.MEMBER_POS)
        return 200, ReturnOut(receipt_no=o.receipt_no, points_reversed=o.points_reversed,
                              points_shortfall=o.points_shortfall, refunded_fen=o.refunded_fen,
                              refunded_yuan=yuan_of(o.refunded_fen), points_refunded=o.points_refunded,
                              points_balance=o.points_balance,
                              stored_value_fen=o.stored_value_fen, stored_value_yuan=yuan_of(o.stored_value_fen))

    return await _write_once(request, idempotency_key, data, use_case)


# ---------------------------------------------------------------- wiring

SECURITY = [{"ApiKey": []}, {"Bearer": []}]  # either header
OPERATIONS = [lookup_card, record_purchase, redeem_points, spend_stored_value, return_purchase]


def _options_handler(path: str, methods: set[str]):
    """OPTIONS on an API address: 204 with its Allow header, for a terminal's key like any call.
    (Listed before the operations: Litestar adds its own OPTIONS handler, without the API's key
    check, to a path whose first handler is not one.)"""
    allow = ", ".join(sorted(methods | {"OPTIONS"}))

    @route(path, http_method=HttpMethod.OPTIONS, opt=API_OPT, include_in_schema=False,
           name=f"api-options:{path}")
    async def options(request: Request) -> Response:
        return Response(content=b"", status_code=204, headers={"Allow": allow})

    return options


def _methods_by_path() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for h in OPERATIONS:
        for path in h.paths:
            found.setdefault(path, set()).update(h.http_methods)
    return found


ROUTER = Router(path=PREFIX,
                route_handlers=[*(_options_handler(p, m) for p, m in _methods_by_path().items()), *OPERATIONS],
                exception_handlers=EXCEPTION_HANDLERS, security=SECURITY, include_in_schema=True,
                before_request=check_body)
ROUTES: list = [ROUTER]
# Request bodies refuse unknown fields (forbid_unknown_fields); the schema says so.
CLOSED_BODIES = tuple(c.__name__ for c in (PurchaseIn, PurchaseLineIn, RedemptionIn, StoredValueSpendIn, ReturnIn)
                      if c.__struct_config__.forbid_unknown_fields)


class ContractJsonRenderPlugin(JsonRenderPlugin):
    """The JSON document, with what Litestar's generator leaves out: request bodies that refuse
    unknown fields are ``additionalProperties: false``."""

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        doc = copy.deepcopy(openapi_schema)
        schemas = doc.get("components", {}).get("schemas", {})
        for name in CLOSED_BODIES:
            if name in schemas:
                schemas[name]["additionalProperties"] = False
        return super().render(request, doc)


def _schema_not_found_as_json(response: Response) -> Response:
    # Litestar's schema router answers unknown paths below it with a small HTML page.
    if response.status_code == 404:
        return error_response(404, "not_found", "There is nothing at this address.")
    return response


def openapi_config() -> OpenAPIConfig:
    """The OpenAPI document of /api/v1 only (every other route is left out of the schema), as
    JSON at /api/v1/schema and /api/v1/schema/openapi.json. No documentation UI: those load
    scripts from CDNs, which the Content-Security-Policy forbids."""
    return OpenAPIConfig(
        title="VIP Portal POS API", version="1.0.0",
        description=__doc__.split("\n", 1)[1].strip(),
        servers=[Server(url="/")],
        tags=[Tag(name="cards"), Tag(name="purchases"), Tag(name="points"), Tag(name="stored value")],
        components=Components(security_schemes={
            "ApiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header",
                                     description="The terminal's API key."),
            "Bearer": SecurityScheme(type="http", scheme="bearer",
                                     description="The terminal's API key as a bearer token."),
        }),
        render_plugins=[ContractJsonRenderPlugin(path=["/", "/openapi.json"])],
        openapi_router=Router(path=f"{PREFIX}/schema", route_handlers=[], include_in_schema=False,
                              opt={"public": True}, exception_handlers=EXCEPTION_HANDLERS,
                              after_request=_schema_not_found_as_json),
    )
