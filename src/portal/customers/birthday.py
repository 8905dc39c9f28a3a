"""A customer's birthday, read from its encrypted field (for the till's discount, the birthday
coupon and the birthday wish)."""
from __future__ import annotations

from datetime import date

from ..vault import Vault
from .models import CustomerFile


def birthday_of(vault: Vault, f: CustomerFile) -> date | None:
    """The file's birthday, or None when it is not given (or erased, or not a date)."""
    raw = vault.decrypt(f.birthday_ct, table="customer_file", column="birthday", row_id=f.id)
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None
