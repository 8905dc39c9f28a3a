"""A customer's birthday, read from its encrypted field (for the till's discount, the birthday
coupon and the birthday wish)."""
from __future__ import annotations

from datetime import date

from sqlalchemy import or_

from ..vault import Vault
from .models import CustomerFile
from .search import birthday_unindexed, birthday_values


def birthday_of(vault: Vault, f: CustomerFile) -> date | None:
    """The file's birthday, or None when it is not given (or erased, or not a date)."""
    raw = vault.decrypt(f.birthday_ct, table="customer_file", column="birthday", row_id=f.id)
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def candidates_on(vault: Vault, days: list[tuple[int, int]]):
    """SQL: the files whose birthday may fall on one of these (month, day)s (membership.pricing
    birthday_days): their truncated month-day index says so, or they have none yet. The caller
    decrypts the candidates' birthdays to keep the real ones."""
    return or_(CustomerFile.birthday_md_bidx.in_(birthday_values(vault, days)), birthday_unindexed())
