"""Pure coupon rules: codes, terms (amount or discount, minimum spend, validity, tiers), the discount, the ledger.

Seed 001: members "不定期收到公司發送的會員專屬優惠券,可在購物時享受一定的折扣優惠" (receive member
coupons from time to time, for a discount when they buy), and on their birthday "根據會員等級,
為會員送上不同的生日福利,如...專屬優惠券" (a birthday benefit by tier, such as a coupon).

A coupon is used once. Its ledger is append-only like the points ledger: ``issued`` first, then at
most one of ``used``, ``expired`` or ``voided``; ``coupon_state`` replays it and ``next_entry``
refuses any other step. Money is integer fen; a discount is per mille of the price (900 = 9折).
"""
from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from ..customers.rules import InvalidField
from .settings import Tier

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "CouponEntryKind",
    "CouponKind",
    "CouponLedgerError",
    "CouponRefused",
    "CouponTerms",
    "allocate",
    "check_usable",
    "coupon_off",
    "coupon_state",
    "format_code",
    "new_code",
    "next_entry",
    "normalise_code",
    "refuse_ended",
    "tiers_text",
]

# Crockford's base 32 (no I, L, O or U): 12 characters are 60 random bits, read aloud without doubt.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
MAX_COUPON_FEN = 100_000_000  # ¥1,000,000


def new_code() -> str:
    """A fresh code from the operating system's random source: not guessable, not derived from anything."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def format_code(code: str) -> str:
    """"7KQ2M9XBA4TD" -> "7KQ2-M9XB-A4TD" (how it is printed and read out)."""
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def normalise_code(raw: str | None) -> str | None:
    """The stored form of a code as a cashier types it (any case, spaces or hyphens, O for 0,
    I or L for 1); None when it cannot be a code."""
    text = unicodedata.normalize("NFKC", raw or "").upper().replace("-", "").replace(" ", "")
    text = text.translate(_READ_AS)
    if len(text) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in text):
        return None
    return text


class CouponKind(StrEnum):
    AMOUNT = "amount"        # an amount off
    DISCOUNT = "discount"    # a rate off the price (per mille paid)


class CouponRefused(InvalidField):
    """The coupon cannot be used on this purchase; nothing was written."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__("coupon_code", code, message)


def tiers_text(tiers: Iterable[str]) -> str:
    """The stored form of a set of tiers: "regular,silver" in rank order."""
    chosen = {Tier(t) for t in tiers}
    return ",".join(t.value for t in sorted(chosen))


@dataclass(frozen=True)
class CouponTerms:
    """What a coupon gives and when. ``valid_until`` is the last day it can be used (inclusive)."""

    kind: str
    valid_from: date
    valid_until: date
    tiers: tuple[str, ...]
    amount_fen: int = 0          # AMOUNT: fen off
    rate_per_mille: int = 1000   # DISCOUNT: what is paid, per mille (900 = 9折)
    min_spend_fen: int = 0       # the purchase (its discountable lines) must reach this

    def __post_init__(self) -> None:
        kind = CouponKind(self.kind)
        object.__setattr__(self, "kind", kind)
        for name in ("amount_fen", "rate_per_mille", "min_spend_fen"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
        if kind is CouponKind.AMOUNT and not 1 <= self.amount_fen <= MAX_COUPON_FEN:
            raise ValueError("an amount coupon takes ¥0.01 to ¥1,000,000 off")
        if kind is CouponKind.DISCOUNT and not 1 <= self.rate_per_mille < 1000:
            raise ValueError("a discount coupon's rate is below 10折")
        if self.min_spend_fen > MAX_COUPON_FEN:
            raise ValueError("the minimum spend is at most ¥1,000,000")
        if self.valid_until < self.valid_from:
            raise ValueError("a coupon's last day cannot be before its first")
        tiers = tuple(t.value for t in sorted({Tier(t) for t in self.tiers}))
        if not tiers:
            raise ValueError("a coupon is for at least one tier")
        object.__setattr__(self, "tiers", tiers)


def refuse_ended(state: str) -> None:
    """CouponRefused for a coupon that has had its one ending (used, withdrawn, expired)."""
    if state == "used":
        raise CouponRefused("coupon.used", "This coupon has already been used: a coupon is used once.")
    if state == "voided":
        raise CouponRefused("coupon.voided", "This coupon was withdrawn.")
    if state == "expired":
        raise CouponRefused("coupon.expired", "This coupon has expired.")


def check_usable(terms: CouponTerms, *, state: str, tier: Tier, on: date) -> None:
    """CouponRefused unless the coupon is unused and valid on ``on`` for a member of ``tier``."""
    refuse_ended(state)
    if on > terms.valid_until:
        raise CouponRefused("coupon.expired", "This coupon has expired.")
    if on < terms.valid_from:
        raise CouponRefused("coupon.not_yet", "This coupon cannot be used before its first day.")
    if Tier(tier).value not in terms.tiers:
        raise CouponRefused("coupon.tier", "This coupon is not for the member's tier.")


def coupon_off(terms: CouponTerms, base_fen: int) -> int:
    """Fen off a base (the discountable lines' price after the member's discount): never more than
    the base; CouponRefused when the base is below the minimum spend."""
    if base_fen < terms.min_spend_fen or base_fen == 0:
        raise CouponRefused("coupon.min_spend", "The purchase does not reach this coupon's minimum spend.")
    if terms.kind is CouponKind.AMOUNT:
        return min(terms.amount_fen, base_fen)
    paid = (2 * base_fen * terms.rate_per_mille + 1000) // 2000  # half up, as the member discount
    return base_fen - paid


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` over ``weights`` in proportion, in whole units, summing exactly to ``total``
    (largest remainders first, then the earlier line); no share exceeds its weight when total <= sum."""
    whole = sum(weights)
    if whole <= 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    left = total - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[:left]:
        shares[i] += 1
    return shares


class CouponEntryKind(StrEnum):
    ISSUED = "issued"
    USED = "used"
    EXPIRED = "expired"
    VOIDED = "voided"


class CouponLedgerError(ValueError):
    """A step the coupon's ledger does not allow (used twice, used after expiry...)."""


def coupon_state(kinds: Sequence[str]) -> str:
    """"issued", "used", "expired" or "voided" from the coupon's entries in order; "" for none."""
    return CouponEntryKind(kinds[-1]).value if kinds else ""


def next_entry(kinds: Sequence[str], kind: str) -> CouponEntryKind:
    """The entry ``kind`` if it may follow ``kinds``: issued first and once, then one ending."""
    kind = CouponEntryKind(kind)
    if kind is CouponEntryKind.ISSUED:
        if kinds:
            raise CouponLedgerError("a coupon is issued once")
        return kind
    if coupon_state(kinds) != CouponEntryKind.ISSUED:
        raise CouponLedgerError(f"a coupon that is {coupon_state(kinds) or 'not issued'} cannot be {kind}")
    return kind
