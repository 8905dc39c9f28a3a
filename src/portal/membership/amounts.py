"""What both ledgers share: a whole positive amount, and a balance as the sum of the entries."""
from __future__ import annotations

from collections.abc import Sequence

from ..customers.rules import InvalidField


def positive(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidField(field, f"{field}.invalid", f"{field} must be a whole number of at least 1.")
    return value


def balance(entries: Sequence) -> int:
    """Sum of the entries (points, or fen for stored value)."""
    return sum(e.delta for e in entries)
