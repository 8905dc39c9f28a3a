"""The POS API's errors: one JSON body for every refusal, the handlers that build it, the checks
made before a body is read (415, malformed JSON), and how each status is documented.

Every error is ``{"error": {"code", "field", "message"}}`` (``ErrorOut``), and the OpenAPI
document shows that body for every error status it lists.
"""
from __future__ import annotations

import logging
import re
import traceback
from typing import Any, Callable

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from sqlalchemy.exc import IntegrityError

from ..audit import service as audit
from ..credit.rules import CreditRefused
from ..customers.rules import InvalidField
from ..customers.service import InvalidInput, NotFound
from ..membership import cards
from ..membership.ledger import InsufficientPoints, InsufficientStoredValue, RedemptionClosed
from ..policy import Action, PermissionDenied
from ..pos import idempotency
from ..pos.schema import ErrorDetail, ErrorOut, MalformedValue
from .security import ApiKeyRefused, SignInRequired, visitor

PREFIX = "/api/v1"
log = logging.getLogger("portal.api")

# Domain errors that are about the state of a card, account or receipt, not about the input.
CONFLICTS = (cards.CardNotUsable, InsufficientPoints, InsufficientStoredValue, RedemptionClosed)
CONFLICT_CODES = {"receipt.duplicate", "purchase.returned", "member.already",
                  "coupon.used", "coupon.voided", "coupon.expired", "redemption.closed"}
# The domain names some fields in its own terms; say them as the API's request does.
API_FIELDS = {"amount_fen": "amount_yuan", "item": "item_code", "ref": "reference"}
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyRefused(Exception):
    """The body of a write is not JSON: 415 for another media type, 400 for bytes that do not
    decode (invalid JSON or UTF-8, nesting too deep)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


def is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def check_body(request: Request) -> None:
    """Before the handler's body is parsed (after the key is checked): a write's body must be
    declared JSON (415) and must decode (400). Litestar keeps the body read here for the
    handler."""
    if request.method not in UNSAFE:
        return
    if not is_json_media_type(request.headers.get("content-type", "")):
        raise BodyRefused(415, "request.media_type",
                          "Send the body as JSON with the header Content-Type: application/json.")
    body = await request.body()
    try:
        msgspec.json.decode(body)
    except (msgspec.DecodeError, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BodyRefused(400, "request.malformed", "The request body is not valid JSON.") from None


def error_response(status: int, code: str, message: str, field: str = "",
                   headers: dict[str, str] | None = None) -> Response:
    body = msgspec.json.encode(ErrorOut(error=ErrorDetail(code=code, field=field, message=message)))
    return Response(content=body, status_code=status, media_type=MediaType.JSON, headers=headers)


def _api_field(field: str) -> str:
    field = re.sub(r"\.unit_price_fen$", ".unit_price_yuan", field)
    return API_FIELDS.get(field, field)


def _on_invalid(request: Request, exc: InvalidField) -> Response:
    status = 409 if isinstance(exc, CONFLICTS) or exc.code in CONFLICT_CODES else 422
    if isinstance(exc, (idempotency.IdempotencyKeyInvalid, MalformedValue)):
        status = 400
    return error_response(status, exc.code, exc.message, _api_field(exc.field))


def _on_credit_refused(request: Request, exc: CreditRefused) -> Response:
    """A sale on credit the rules refuse: the limit, the outstanding boxes and how to apply."""
    return error_response(422, exc.code, exc.message, _api_field(exc.field))


def _on_invalid_input(request: Request, exc: InvalidInput) -> Response:
    field, message = next(iter(exc.errors.items())) if getattr(exc, "errors", None) else ("", str(exc))
    return error_response(422, f"{field or 'request'}.invalid", message, _api_field(field))


def _on_body(request: Request, exc: BodyRefused) -> Response:
    return error_response(exc.status, exc.code, exc.message)


def _on_key_refused(request: Request, exc: Exception) -> Response:
    retry_after = getattr(exc, "retry_after", 0)
    if retry_after:
        return error_response(429, "api_key.throttled",
                              "Too many calls with an invalid API key from this address; wait and try again.",
                              headers={"Retry-After": str(retry_after)})
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
    name = re.sub(r"^.*\.", "", key)  # lines[0].product -> product
    if name in FIELD_RULES and message.startswith("Expected `str`"):  # a string outside its pattern
        code, message = FIELD_RULES[name]
        if name == "idempotency_key":
            key = idempotency.HEADER
        return error_response(400, code, message, key)
    # msgspec's messages name the expected type or constraint, never the value sent.
    return error_response(400, "request.invalid", (message or "The request could not be understood.")[:300], key)


# A string outside its documented pattern or length: the field's own code and a plain message
# (rather than msgspec's, which quotes the regular expression).
FIELD_RULES = {
    "number": ("card.invalid", "Enter a card number like 755 00243."),
    "card_number": ("card.invalid", "Enter a card number like 755 00243."),
    "receipt_no": ("receipt.invalid", "A receipt number is 1 to 40 letters, digits, '.', '_', '/' or '-'."),
    "idempotency_key": ("idempotency_key.invalid",
                        "The Idempotency-Key header must be 1 to 100 visible ASCII characters."),
    "reason": ("reason.invalid", "Give a reason of 5 to 500 characters."),
    "product": ("product.required", "Name the product (at most 200 characters)."),
    "unit_price_yuan": ("amount.invalid",
                        "Give an amount in yuan as a string with at most two decimals, like \"128.50\"."),
    "amount_yuan": ("amount.invalid", "Give an amount from 0.01 to 1000000 yuan as a string with at most "
                                      "two decimals, like \"30.50\"."),
}


def _on_http(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if status == 404:
        return _on_not_found(request, exc)
    if status == 405:  # keep the router's Allow header
        allow = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
        return error_response(405, "method.not_allowed", "This address does not accept that method.",
                              headers=allow or None)
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
    # A call that reached no API handler's guard (should not happen: OPTIONS has its own).
    SignInRequired: _on_key_refused,
    PermissionDenied: _on_denied,
    BodyRefused: _recorded(_on_body),
    NotFound: _recorded(_on_not_found),
    InvalidField: _recorded(_on_invalid),
    InvalidInput: _recorded(_on_invalid_input),
    CreditRefused: _recorded(_on_credit_refused),
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


# ---------------------------------------------------------------- documentation

ERROR_STATUSES = {
    400: "Malformed request: a body that is not JSON (or not UTF-8, or nested too deep), wrong or "
         "missing fields, a value outside its pattern, an unknown field, no or a bad Idempotency-Key.",
    401: "Missing, unknown or revoked API key.",
    403: "The member or receipt is outside this terminal's unit.",
    404: "No such card or receipt.",
    409: "The card or account state forbids it: lost, void, cancelled, expired or frozen card; "
         "not enough points or stored value; redemption closed; receipt already recorded or returned; "
         "coupon already used, withdrawn or expired.",
    415: "The body is not declared as JSON (send Content-Type: application/json).",
    422: "A value the programme refuses (see the operation's description), or an Idempotency-Key "
         "reused with a different request.",
    429: "Too many calls with an invalid API key from this address in this minute; the Retry-After "
         "header says how many seconds to wait.",
}


def documented_errors(*codes: int) -> dict[int, ResponseSpec]:
    """The error responses of an operation, all with the one error body."""
    return {c: ResponseSpec(ErrorOut, description=ERROR_STATUSES[c]) for c in codes}
