"""The POS-facing JSON API under /api/v1: card lookup, purchases, redemptions, stored value, returns.

A terminal authenticates with its API key (``Authorization: Bearer <key>`` or ``X-API-Key``;
checked by the global guard, see ``security.authorise_api_call``) and acts as role "terminal"
for its unit. Every write needs an ``Idempotency-Key`` header: a retried call gets the first
answer back and is never counted twice (``portal.pos.idempotency``). Errors are always JSON:
``{"error": {"code", "field", "message"}}`` — 400 a malformed request, 401 a missing or bad key,
403 a member outside the terminal's unit, 404 no such card or receipt, 409 the card's or
account's state forbids it (lost, frozen, expired, not enough points or stored value, receipt
already recorded or returned), 422 a value the programme refuses. The OpenAPI document is at
/api/v1/schema and describes these routes only.
"""
from __future__ import annotations

import logging
import re
import traceback
from typing import Annotated, Any, Callable

import anyio
import msgspec
from litestar import MediaType, Request, Response, Router, get, post
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Server, Tag
from litestar.params import Parameter
from msgspec import Struct
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..audit import service as audit
from ..customers.rules import InvalidField
from ..customers.service import InvalidInput, NotFound
from ..membership import cards, points, purchases
from ..membership.ledger import InsufficientPoints, InsufficientStoredValue, RedemptionClosed
from ..membership.outcomes import PurchaseRequest
from ..membership.rules import PurchaseLine
from ..policy import Action, PermissionDenied
from ..pos import idempotency
from ..pos.schema import (CardOut, ErrorDetail, ErrorOut, PurchaseIn, PurchaseOut, RedemptionIn,
                          RedemptionOut, ReturnIn, ReturnOut, StoredValueOut, StoredValueSpendIn, fen_of,
                          yuan_of)
from .security import ApiKeyRefused, SignInRequired, current_actor, visitor

PREFIX = "/api/v1"
# Read by the global guard: the terminal's key, never a session cookie or CSRF token.
API_OPT = {"action": Action.MEMBER_POS, "api": True}
log = logging.getLogger("portal.api")
IdempotencyKey = Annotated[str, Parameter(
    header="Idempotency-Key", required=True, min_length=1, max_length=100,
    description="A unique key per logical request (e.g. a UUID). A retry with the same key and "
                "body returns the first answer; the same key with another body is refused (422).")]


# ---------------------------------------------------------------- errors

# Domain errors that are about the state of a card, account or receipt, not about the input.
CONFLICTS = (cards.CardNotUsable, InsufficientPoints, InsufficientStoredValue, RedemptionClosed)
CONFLICT_CODES = {"receipt.duplicate", "purchase.returned", "member.already"}
# The domain names some fields in its own terms; say them as the API's request does.
API_FIELDS = {"amount_fen": "amount_yuan", "item": "item_code", "ref": "reference"}


def error_response(status: int, code: str, message: str, field: str = "",
                   headers: dict[str, str] | None = None) -> Response:
    body = msgspec.json.encode(ErrorOut(error=ErrorDetail(code=code, field=field, message=message)))
    return Response(content=body, status_code=status, media_type=MediaType.JSON, headers=headers)


def _api_field(field: str) -> str:
    field = re.sub(r"\.unit_price_fen$", ".unit_price_yuan", field)
    return API_FIELDS.get(field, field)


def _on_invalid(request: Request, exc: InvalidField) -> Response:
    status = 409 if isinstance(exc, CONFLICTS) or exc.code in CONFLICT_CODES else 422
    if isinstance(exc, idempotency.IdempotencyKeyInvalid):
        status = 400
    return error_response(status, exc.code, exc.message, _api_field(exc.field))


def _on_invalid_input(request: Request, exc: InvalidInput) -> Response:
    field, message = next(iter(exc.errors.items())) if getattr(exc, "errors", None) else ("", str(exc))
    return error_response(422, f"{field or 'request'}.invalid", message, _api_field(field))


def _on_key_refused(request: Request, exc: ApiKeyRefused) -> Response:
    return error_response(401, "api_key.invalid",
                          "A valid API key is required (Authorization: Bearer <key> or X-API-Key).",
                          headers={"WWW-Authenticate": 'Bearer realm="vip-portal-pos"'})


def _on_denied(request: Request, exc: PermissionDenied) -> Response:
    """Recorded in its own transaction (the call's work is abandoned), then refused."""
    actor = visitor(request).actor
    with request.app.state.db.write() as s:
        audit.record(s, actor, exc.action.value, audit.DENIED, object_type=exc.action.obj,
                     object_id=exc.object_id, reason=str(exc)[:200],
                     detail=f"{request.method} {request.url.path}")
    return error_response(403, "forbidden", "This terminal may not do this (the member is not in its unit).")


def _on_not_found(request: Request, exc: Exception) -> Response:
    message = str(exc) if isinstance(exc, NotFound) and str(exc) else "There is nothing at this address."
    return error_response(404, "not_found", message[:1].upper() + message[1:] + ("" if message.endswith(".") else "."))


def _on_validation(request: Request, exc: ValidationException) -> Response:
    """Litestar's own validation (wrong or missing fields and types, patterns, headers): 400."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    first = extra[0] if extra and isinstance(extra[0], dict) else {}
    key = str(first.get("key") or "")
    message = str(first.get("message") or exc.detail or "")
    if not extra and f"'{idempotency.HEADER}'" in message:
        return error_response(400, "idempotency_key.missing",
                              "Send an Idempotency-Key header with every write (e.g. a new UUID).",
                              idempotency.HEADER)
    if key == "data":  # the body as a whole
        key = ""
        if message == "'data'":
            message = "The request needs a JSON object as its body."
    if key.endswith("_yuan") and "regex" in message:
        message = "Give an amount in yuan as a string with at most two decimals, like \"128.50\"."
    # msgspec's messages name the expected type or constraint, never the value sent.
    return error_response(400, "request.invalid", (message or "The request could not be understood.")[:300], key)


def _on_http(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if status == 404:
        return _on_not_found(request, exc)
    if status == 405:
        return error_response(405, "method.not_allowed", "This address does not accept that method.")
    if status >= 500:
        return _on_error(request, exc)
    if status == 400 and "JSON" in str(exc.detail):  # the body did not decode
        return error_response(400, "request.malformed", "The request body is not valid JSON.")
    return error_response(status, "request.invalid", "The request could not be understood.")


def _on_integrity(request: Request, exc: IntegrityError) -> Response:
    # Two calls raced for the same record (e.g. one receipt number under two idempotency keys).
    return error_response(409, "conflict", "This conflicts with a record written at the same moment; "
                                           "look it up before trying again.")


def _on_error(request: Request, exc: Exception) -> Response:
    # Where it failed, never the message: it may carry submitted values.
    frames = traceback.extract_tb(exc.__traceback__)[-5:]
    log.error("unhandled %s at %s", type(exc).__name__,
              " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames)))
    return error_response(500, "server.error", "The server could not complete this request. Nothing was changed.")


def _recorded(handler: Callable[[Request, Any], Response]) -> Callable[[Request, Any], Response]:
    """Every call of a known terminal is audited: a refused one (bad input, nothing to act on,
    the card's state) too, as "denied" with its error code, in a transaction of its own (the
    call's own work was rolled back). Unknown keys and scope refusals are recorded where they
    are decided."""

    def handle(request: Request, exc: Any) -> Response:
        response = handler(request, exc)
        actor = visitor(request).actor if request.scope.get("state", {}).get("visitor") else None
        if actor is not None and actor.role == "terminal" and response.status_code not in (401, 403):
            try:
                code = msgspec.json.decode(response.content)["error"]["code"]
            except Exception:
                code = "error"
            with request.app.state.db.write() as s:
                audit.record(s, actor, Action.MEMBER_POS.value, audit.DENIED, object_type="api",
                             object_id=request.url.path[:255], reason=str(code)[:200],
                             detail=f"{request.method} {request.url.path} -> {response.status_code}")
        return response

    return handle


EXCEPTION_HANDLERS: dict[Any, Callable[[Request, Any], Response]] = {
    ApiKeyRefused: _on_key_refused,
    # Litestar's automatic OPTIONS answer goes through the page guard; it is refused here too.
    SignInRequired: _on_key_refused,
    PermissionDenied: _on_denied,
    NotFound: _recorded(_on_not_found),
    InvalidField: _recorded(_on_invalid),
    InvalidInput: _recorded(_on_invalid_input),
    ValidationException: _recorded(_on_validation),
    HTTPException: _recorded(_on_http),
    IntegrityError: _recorded(_on_integrity),
    Exception: _recorded(_on_error),
}


def is_api_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def on_unrouted(request: Request, exc: Exception) -> Response:
    """For the app-level handlers: a 404 or 405 under /api/v1 (no handler matched) is JSON too."""
    if isinstance(exc, HTTPException):
        return _on_http(request, exc)
    return _on_error(request, exc)


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    what = {400: "Malformed request: not JSON, wrong or missing fields, a bad amount, no Idempotency-Key.",
            401: "Missing, unknown or revoked API key.",
            403: "The member or receipt is outside this terminal's unit.",
            404: "No such card or receipt.",
            409: "The card or account state forbids it: lost, void, cancelled, expired or frozen card; "
                 "not enough points or stored value; redemption closed; receipt already recorded or returned.",
            422: "A value the programme refuses (unknown item, wrong PIN, bad receipt number, future date), "
                 "or an Idempotency-Key reused with a different request."}
    return {c: ResponseSpec(ErrorOut, description=what[c]) for c in codes}


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
     responses=_errors(401, 403, 404, 422))
async def lookup_card(request: Request, number: Annotated[str, Parameter(
        description="Card number, e.g. 755 00243 (URL-encoded) or 75500243.", max_length=20)]) -> CardOut:
    actor = current_actor(request)
    state = request.app.state

    def run() -> CardOut:
        with state.db.write() as s:  # the audit entry is written before anything is shown
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
                  "Without card_number the sale is anonymous; its points can be claimed later.",
      responses=_errors(400, 401, 403, 404, 409, 422))
async def record_purchase(request: Request, data: PurchaseIn,
                          idempotency_key: IdempotencyKey) -> Response[PurchaseOut]:
    actor = current_actor(request)
    vault = request.app.state.vault
    lines = tuple(PurchaseLine(product=ln.product, quantity=ln.quantity,
                               unit_price_fen=fen_of(ln.unit_price_yuan, f"lines[{i}].unit_price_yuan"),
                               special_price=ln.special_price, group_buy=ln.group_buy)
                  for i, ln in enumerate(data.lines))
    req = PurchaseRequest(receipt_no=data.receipt_no, lines=lines, payment_method=data.payment_method,
                          card_number=data.card_number, purchased_on=data.purchased_on, pin=data.pin)

    def use_case(s: Session) -> tuple[int, PurchaseOut]:
        o = purchases.record_purchase(s, vault, actor, req, action=Action.MEMBER_POS)
        return 201, PurchaseOut(
            purchase_id=o.purchase_id, receipt_no=o.receipt_no,
            list_total_fen=o.list_total_fen, list_total_yuan=yuan_of(o.list_total_fen),
            discount_total_fen=o.discount_total_fen, discount_total_yuan=yuan_of(o.discount_total_fen),
            paid_total_fen=o.paid_total_fen, paid_total_yuan=yuan_of(o.paid_total_fen),
            rate_per_mille=o.rate_per_mille, discount_reason=o.discount_reason,
            points_earned=o.points_earned, points_balance=o.points_balance,
            stored_value_fen=o.stored_value_fen, stored_value_yuan=yuan_of(o.stored_value_fen),
            tier=o.tier, card_number=o.card_number, joined=o.joined, tier_changed_to=o.tier_changed_to)

    return await _write_once(request, idempotency_key, data, use_case)


@post("/redemptions", opt=API_OPT, tags=["points"], status_code=201, summary="Redeem points",
      description="Redeems a catalogue item with the card's points (only points credited before "
                  "today, within the redemption windows).",
      responses=_errors(400, 401, 403, 404, 409, 422))
async def redeem_points(request: Request, data: RedemptionIn,
                        idempotency_key: IdempotencyKey) -> Response[RedemptionOut]:
    actor = current_actor(request)

    def use_case(s: Session) -> tuple[int, RedemptionOut]:
        o = points.redeem_points(s, actor, data.card_number, data.item_code, action=Action.MEMBER_POS)
        return 201, RedemptionOut(redemption_id=o.redemption_id, card_number=o.card_number,
                                  item_code=o.item_code, item_name=o.item_name, points=o.points,
                                  value_fen=o.value_fen, value_yuan=yuan_of(o.value_fen),
                                  points_balance=o.points_balance)

    return await _write_once(request, idempotency_key, data, use_case)


@post("/stored-value/spend", opt=API_OPT, tags=["stored value"], status_code=201,
      summary="Spend stored value",
      description="Debits the card's stored value; a named card needs the member's PIN.",
      responses=_errors(400, 401, 403, 404, 409, 422))
async def spend_stored_value(request: Request, data: StoredValueSpendIn,
                             idempotency_key: IdempotencyKey) -> Response[StoredValueOut]:
    actor = current_actor(request)
    vault = request.app.state.vault
    amount = fen_of(data.amount_yuan, "amount_yuan")
    if amount < 1:
        raise InvalidField("amount_yuan", "amount.invalid", "The amount must be at least ¥0.01.")

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
      responses=_errors(400, 401, 403, 404, 409, 422))
async def return_purchase(request: Request, receipt_no: Annotated[str, Parameter(max_length=40)],
                          data: ReturnIn, idempotency_key: IdempotencyKey) -> Response[ReturnOut]:
    actor = current_actor(request)
    vault = request.app.state.vault

    def use_case(s: Session) -> tuple[int, ReturnOut]:
        o = purchases.return_purchase(s, vault, actor, receipt_no, data.reason, action=Action.MEMBER_POS)
        return 200, ReturnOut(receipt_no=o.receipt_no, points_reversed=o.points_reversed,
                              points_shortfall=o.points_shortfall, refunded_fen=o.refunded_fen,
                              refunded_yuan=yuan_of(o.refunded_fen), points_balance=o.points_balance,
                              stored_value_fen=o.stored_value_fen, stored_value_yuan=yuan_of(o.stored_value_fen))

    return await _write_once(request, idempotency_key, data, use_case)


# ---------------------------------------------------------------- wiring

SECURITY = [{"ApiKey": []}, {"Bearer": []}]  # either header

ROUTER = Router(path=PREFIX, route_handlers=[lookup_card, record_purchase, redeem_points,
                                             spend_stored_value, return_purchase],
                exception_handlers=EXCEPTION_HANDLERS, security=SECURITY, include_in_schema=True)
ROUTES: list = [ROUTER]


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
        render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"])],
        openapi_router=Router(path=f"{PREFIX}/schema", route_handlers=[], include_in_schema=False,
                              opt={"public": True}, exception_handlers=EXCEPTION_HANDLERS,
                              after_request=_schema_not_found_as_json),
    )
