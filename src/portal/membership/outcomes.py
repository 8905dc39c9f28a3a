"""What the membership use cases take and return: plain dataclasses shared by pages, the CLI and the POS API.

Nothing here carries personal data in the clear except ``CardSummary.masked_name`` (masked).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date

from .rules import PurchaseLine

PAYMENT_METHODS = ("cash", "cheque", "bank_transfer", "wire", "stored_value", "credit", "cash_on_delivery",
                   "points")
# Ways to pay that bring money in (a stored-value recharge takes one of these).
MONEY_METHODS = ("cash", "cheque", "bank_transfer", "wire")
# Sales that leave money owed: they go through credit.sales (catalogue codes, whole boxes, limits).
ON_TERMS = ("credit", "cash_on_delivery")


@dataclass(frozen=True)
class CardSummary:
    """A card as a POS or the service desk sees it: masked, no personal fields."""

    number: str
    card_status: str        # current | lost | void
    account_status: str     # active | frozen | cancelled
    card_type: str
    named: bool
    tier: str
    member_status: str      # active | ended
    masked_name: str
    file_no: str
    points_balance: int
    redeemable_points: int
    stored_value_fen: int
    issued_on: date
    expires_on: date
    usable: bool            # the card can be used today (current, not cancelled, not expired)


@dataclass(frozen=True)
class PurchaseRequest:
    """A sale to record. Either ``card_number`` or ``customer_id`` names the buyer; neither is an
    anonymous sale (its points can be claimed later with the receipt number)."""

    receipt_no: str
    lines: tuple[PurchaseLine, ...]
    payment_method: str
    card_number: str | None = None
    customer_id: uuid.UUID | None = None
    purchased_on: date | None = None   # default: today (Asia/Shanghai)
    pin: str | None = None             # stored-value payment on a named card: the member's PIN ...
    id_number: str | None = None       # ... or their ID number
    referrer_card: str | None = None   # who referred a customer who joins with this purchase
    coupon_code: str | None = None     # one of the member's coupons (seed 001), used once
    points_used: int | None = None     # points paying part of the price; payment "points": all of it
    holder_check: str | None = None    # the birthday discount: the holder's ID number or mobile on file


@dataclass(frozen=True)
class PurchaseOutcome:
    purchase_id: int
    receipt_no: str
    list_total_fen: int
    discount_total_fen: int
    paid_total_fen: int
    rate_per_mille: int
    discount_reason: str
    points_earned: int
    points_balance: int | None      # None: no card account (non-member)
    stored_value_fen: int | None
    tier: str | None
    card_number: str | None
    joined: bool = False            # this purchase made the customer a member
    tier_changed_to: str | None = None
    coupon_discount_fen: int = 0    # the coupon's part of discount_total_fen
    points_paid: int = 0            # points that paid part of paid_total_fen ...
    points_paid_fen: int = 0        # ... and how much
    # The birthday discount at the till: "verified" (given), "unverified" (no ID number or mobile
    # entered: tier price), "mismatch" (did not match: tier price, audited); None when not the birthday.
    birthday_check: str | None = None


@dataclass(frozen=True)
class ReturnOutcome:
    receipt_no: str
    points_reversed: int
    points_shortfall: int           # already spent; for staff to settle
    refunded_fen: int               # put back on the stored-value card
    points_balance: int | None
    stored_value_fen: int | None
    points_refunded: int = 0        # points that had paid for it, given back


@dataclass(frozen=True)
class RedemptionOutcome:
    redemption_id: int
    card_number: str
    item_code: str
    item_name: str
    points: int
    value_fen: int
    points_balance: int


@dataclass(frozen=True)
class StoredValueOutcome:
    card_number: str
    kind: str
    amount_fen: int
    balance_fen: int
    entry_id: int


@dataclass
class LedgerLine:
    id: int
    kind: str
    amount: int
    on: date
    ref: str | None
    note: str
    expires_on: date | None = None


@dataclass
class MemberPanel:
    """The membership section of a file, for the file page (already authorised)."""

    membership_id: int
    tier: str
    tier_floor: str | None
    tier_ceiling: str | None
    status: str
    joined_on: date
    join_cause: str
    last_purchase_on: date | None
    points_12m: int
    spend_12m_fen: int
    accounts: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    purchases: list[dict] = field(default_factory=list)
    allowed: set[str] = field(default_factory=set)
    coupons: list = field(default_factory=list)   # the member's coupons (seed 001), newest first
