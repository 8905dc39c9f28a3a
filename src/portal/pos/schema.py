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

Yuan = Annotated[str, Meta(pattern=r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,2})?$", examples=["128.50"],
                           description="An amount in yuan as a decimal string with at most two "
                                       "decimals (no sign, no exponent); converted to fen exactly.")]
CardNumber = Annotated[str, Meta(min_length=1, max_length=20, examples=["755 00243"],
                                 description="Card number, e.g. \"755 00243\" or \"75500243\".")]
ReceiptNo = Annotated[str, Meta(min_length=1, max_length=40, examples=["R20250301-0001"])]
PaymentMethod = Literal[PAYMENT_METHODS]  # type: ignore[valid-type]


class PurchaseLineIn(Struct, forbid_unknown_fields=True, kw_only=True):
    product: Annotated[str, Meta(min_length=1, max_length=200)]
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


class RedemptionIn(Struct, forbid_unknown_fields=True, kw_only=True):
    card_number: CardNumber
    item_code: Annotated[str, Meta(min_length=1, max_length=32)]


class StoredValueSpendIn(Struct, forbid_unknown_fields=True, kw_only=True):
    card_number: CardNumber
    amount_yuan: Yuan
    pin: Annotated[str, Meta(max_length=32)] | None = None
    reference: Annotated[str, Meta(max_length=64)] | None = None


class ReturnIn(Struct, forbid_unknown_fields=True, kw_only=True):
    reason: Annotated[str, Meta(min_length=1, max_length=500)]


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

_YUAN = re.compile(r"(0|[1-9][0-9]{0,8})(?:\.([0-9]{1,2}))?")


def fen_of(text: str, field: str) -> int:
    """"128.5" -> 12850 exactly (no floats); InvalidField for anything else."""
    m = _YUAN.fullmatch(text or "")
    if not m:
        raise InvalidField(field, "amount.invalid", "Give an amount in yuan with at most two decimals.")
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))


def yuan_of(fen: int | None) -> str | None:
    if fen is None:
        return None
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"
