"""The POS API's request and response bodies (msgspec structs, so Litestar validates them and
documents them exactly in the OpenAPI schema), and exact yuan <-> fen conversion.

Amounts travel as decimal strings in yuan ("128.50") and as integer fen; never as floats.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from msgspec import Meta, Struct

from ..customers.rules import InvalidField
from ..membership.outcomes import PAYMENT_METHODS

# Every pattern below says exactly what the server accepts, read the same by Python's ``re``
# (msgspec checks it with ``re.search``) and by JSON Schema's ECMA-262 dialect: white space is
# spelled out (the two disagree on U+001C-U+001F, U+0085 and U+FEFF) and the anchored patterns
# are checked once more with ``fullmatch`` (Python's ``$`` also matches before a final newline).
# Rules that need today's date or several fields at once are 422 instead.
YUAN_RE = r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,2})?$"
# ¥0.01 to ¥1,000,000 (what a stored-value spend may be), as a pattern.
SPEND_RE = r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,5}(\.[0-9]{1,2})?|1000000(\.00?)?)$"
# membership.rules.parse_card_number in ASCII: region, an optional hyphen or spaces, a sequence
# number 00001-99999; spaces around it are ignored.
CARD_RE = r"^ *[0-9]{1,6}( *- *| +)?(0000[1-9]|000[1-9][0-9]|00[1-9][0-9]{2}|0[1-9][0-9]{3}|[1-9][0-9]{4}) *$"
# membership.purchases.RECEIPT, spaces around it ignored.
RECEIPT_RE = r"^ *[A-Za-z0-9][A-Za-z0-9._/-]{0,39} *$"
_VISIBLE = r"[^\s\x1c-\x1f\x85\ufeff]"  # not white space in Python nor in ECMA-262
NOT_BLANK_RE = _VISIBLE  # at least one character that is not white space
# At least 5 characters once leading and trailing white space is trimmed.
REASON_RE = _VISIBLE + r"[\s\S]{3,}" + _VISIBLE

Yuan = Annotated[str, Meta(pattern=YUAN_RE, examples=["128.50"],
                           description="An amount in yuan as a decimal string with at most two "
                                       "decimals (no sign, no exponent); converted to fen exactly.")]
SpendYuan = Annotated[str, Meta(pattern=SPEND_RE, examples=["30.50"],
                                description="An amount in yuan from 0.01 to 1000000 with at most two "
                                            "decimals (no sign, no exponent); converted to fen exactly.")]
CardNumber = Annotated[str, Meta(min_length=1, max_length=20, pattern=CARD_RE, examples=["755 00243"],
                                 description="Card number, e.g. \"755 00243\", \"755-00243\" or \"75500243\".")]
ReceiptNo = Annotated[str, Meta(min_length=1, max_length=40, pattern=RECEIPT_RE, examples=["R20250301-0001"],
                                description="1 to 40 letters, digits, '.', '_', '/' or '-', starting "
                                            "with a letter or digit.")]
PaymentMethod = Literal[PAYMENT_METHODS]  # type: ignore[valid-type]
# membership.coupon_rules.normalise_code in ASCII: 12 characters of Crockford base 32 (O, I and L
# read as 0, 1 and 1), in any case, hyphens or spaces between; spaces around it are ignored.
COUPON_RE = r"^ *([0-9A-Za-z] *-? *){11}[0-9A-Za-z] *$"
CouponCode = Annotated[str, Meta(min_length=12, max_length=40, pattern=COUPON_RE, examples=["7KQ2-M9XB-A4TD"],
                                 description="One of the card's member's coupons (used once), e.g. "
                                             "\"7KQ2-M9XB-A4TD\"; case, hyphens and spaces do not matter.")]


class PurchaseLineIn(Struct, forbid_unknown_fields=True, kw_only=True):
    product: Annotated[str, Meta(min_length=1, max_length=200, pattern=NOT_BLANK_RE,
                                 description="The product's name (not blank).")]
    quantity: Annotated[int, Meta(ge=1, le=100_000)]
    unit_price_yuan: Yuan
    special_price: bool = False
    group_buy: bool = False


class PurchaseIn(Struct, forbid_unknown_fields=True, kw_only=True):
    receipt_no: ReceiptNo
    payment_method: PaymentMethod
    lines: Annotated[list[PurchaseLineIn], Meta(min_length=1, max_length=200)]
    card_number: CardNumber | None = None
    purchased_on: date | None = None
    pin: Annotated[str, Meta(max_length=32)] | None = None
    coupon_code: CouponCode | None = None
    points_used: Annotated[int, Meta(ge=1, le=100_000_000, description=(
        "Points paying part of the price at the programme's redemption rate (with card_number); "
        "payment_method \"points\" pays it all with points."))] | None = None
    holder_check: Annotated[str, Meta(max_length=32, description=(
        "On the holder's birthday: their ID card number or, without it, the mobile number on file, "
        "as the cashier enters it. The birthday discount is given only when it matches; otherwise "
        "the sale is priced at the tier's rate (birthday_check says which)."))] | None = None


class RedemptionIn(Struct, forbid_unknown_fields=True, kw_only=True):
    card_number: CardNumber
    item_code: Annotated[str, Meta(min_length=1, max_length=32)]


class StoredValueSpendIn(Struct, forbid_unknown_fields=True, kw_only=True):
    card_number: CardNumber
    amount_yuan: SpendYuan
    pin: Annotated[str, Meta(max_length=32)] | None = None
    reference: Annotated[str, Meta(max_length=64)] | None = None


class ReturnIn(Struct, forbid_unknown_fields=True, kw_only=True):
    reason: Annotated[str, Meta(min_length=5, max_length=500, pattern=REASON_RE,
                                description="Why the sale is returned: 5 to 500 characters once "
                                            "leading and trailing white space is trimmed.")]


class CardOut(Struct, kw_only=True):
    number: str
    card_status: Literal["current", "lost", "void"]
    account_status: Literal["active", "frozen", "cancelled"]
    card_type: str
    named: bool
    tier: str
    member_status: Literal["active", "ended"]
    masked_name: str
    points_balance: int
    redeemable_points: int
    stored_value_fen: int
    stored_value_yuan: str
    issued_on: date
    expires_on: date
    usable: bool


class PurchaseOut(Struct, kw_only=True):
    purchase_id: int
    receipt_no: str
    list_total_fen: int
    list_total_yuan: str
    discount_total_fen: int
    discount_total_yuan: str
    paid_total_fen: int
    paid_total_yuan: str
    rate_per_mille: int
    discount_reason: str
    points_earned: int
    points_balance: int | None
    stored_value_fen: int | None
    stored_value_yuan: str | None
    tier: str | None
    card_number: str | None
    joined: bool
    tier_changed_to: str | None
    coupon_discount_fen: int = 0
    coupon_discount_yuan: str = "0.00"
    points_paid: int = 0
    points_paid_fen: int = 0
    points_paid_yuan: str = "0.00"
    birthday_check: Literal["verified", "unverified", "mismatch"] | None = None


class RedemptionOut(Struct, kw_only=True):
    redemption_id: int
    card_number: str
    item_code: str
    item_name: str
    points: int
    value_fen: int
    value_yuan: str
    points_balance: int


class StoredValueOut(Struct, kw_only=True):
    card_number: str
    kind: str
    amount_fen: Annotated[int, Meta(description="The ledger entry's amount: negative for a spend.")]
    amount_yuan: Annotated[str, Meta(description="amount_fen in yuan, e.g. \"-30.50\".")]
    balance_fen: int
    balance_yuan: str
    entry_id: int


class ReturnOut(Struct, kw_only=True):
    receipt_no: str
    points_reversed: int
    points_shortfall: int
    refunded_fen: int
    refunded_yuan: str
    points_refunded: int = 0
    points_balance: int | None
    stored_value_fen: int | None
    stored_value_yuan: str | None


class ErrorDetail(Struct, kw_only=True):
    code: str
    field: str
    message: str


class ErrorOut(Struct, kw_only=True):
    error: ErrorDetail


# ---------------------------------------------------------------- money

class MalformedValue(InvalidField):
    """A value outside its documented pattern that got past the schema check (Python's ``$`` also
    matches before a final newline): a malformed request (400), like any other pattern failure."""


_YUAN = re.compile(r"(0|[1-9][0-9]{0,8})(?:\.([0-9]{1,2}))?")
_EXACT = {"card": (re.compile(CARD_RE[1:-1]), "card.invalid", "Enter a card number like 755 00243."),
          "receipt": (re.compile(RECEIPT_RE[1:-1]), "receipt.invalid",
                      "A receipt number is 1 to 40 letters, digits, '.', '_', '/' or '-'."),
          "coupon": (re.compile(COUPON_RE[1:-1]), "coupon.invalid", "Enter a coupon code like 7KQ2-M9XB-A4TD.")}


def exactly(kind: str, value: str | None, field: str) -> str | None:
    """``value`` if it matches its documented pattern in full (None passes), else MalformedValue."""
    pattern, code, message = _EXACT[kind]
    if value is not None and not pattern.fullmatch(value):
        raise MalformedValue(field, code, message)
    return value


def fen_of(text: str, field: str) -> int:
    """"128.5" -> 12850 exactly (no floats); InvalidField for anything else."""
    m = _YUAN.fullmatch(text or "")
    if not m:
        raise MalformedValue(field, "amount.invalid", "Give an amount in yuan with at most two decimals.")
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))


def yuan_of(fen: int | None) -> str | None:
    if fen is None:
        return None
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"
