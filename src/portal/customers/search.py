"""What the search box means, and the blind indexes that let SQL find it without plain text.

Exact mobile and ID number use the vault's blind indexes (as before). Names use three more
keyed indexes, each under its own derived key (vault.keyed_index):

- ``name_bidx``: HMAC of the normalised full name ("王建国");
- ``surname_bidx``: HMAC of the surname (compound surnames such as 欧阳 are kept whole);
- ``mobile_tail_bidx``: HMAC of the mobile's last four digits cut to TAIL_BITS bits, so that
  about ten different endings share each value; candidates are confirmed by decrypting.
- ``birthday_md_bidx``: HMAC of the birthday's month and day ("MM-DD") cut to BIRTHDAY_BITS
  bits, so that about three days of the year share each value: the home page's "birthdays
  today" reads only the candidates and confirms them by decrypting (home/sales.py).

`portal customers reindex` computes them for rows written before they existed (and after the
name rules change). The README's "Search by name" note says what they leak.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..vault import Vault, keyed_index
from . import names, rules
from .models import CustomerFile

TABLE = "customer_file"
# 10 bits: 1,024 index values for 10,000 possible endings; a search reads about 1/1,024 of the
# files in scope and keeps the ~1/10,000 that really end with the digits.
TAIL_BITS = 10
# 7 bits: 128 index values for 366 month-days, about three days per value.
BIRTHDAY_BITS = 7


def name_index(vault: Vault, normalised: str) -> str:
    return keyed_index(vault, "name", normalised)


def surname_index(vault: Vault, surname: str) -> str:
    return keyed_index(vault, "surname", surname)


def tail_index(vault: Vault, last_four: str) -> str:
    return keyed_index(vault, "mobile_tail", last_four, bits=TAIL_BITS)


def birthday_index(vault: Vault, month: int, day: int) -> str:
    return keyed_index(vault, "birthday_md", f"{month:02d}-{day:02d}", bits=BIRTHDAY_BITS)


def birthday_values(vault: Vault, days: list[tuple[int, int]]) -> list[str]:
    """The index values to look for to find the birthdays on these (month, day)s."""
    return sorted({birthday_index(vault, m, d) for m, d in days})


def _birthday_index_of(vault: Vault, birthday: str | date | None) -> str | None:
    if isinstance(birthday, str):
        try:
            birthday = date.fromisoformat(birthday)
        except ValueError:
            return None
    return birthday_index(vault, birthday.month, birthday.day) if birthday else None


def index_values(vault: Vault, name: str | None, mobile: str | None,
                 birthday: str | date | None) -> dict[str, str | None]:
    """The search columns of a file with this (plain) name, normalised mobile and birthday
    (a date or its ISO text)."""
    n = names.normalise(name or "")
    surname = names.surname_of(n)
    return {
        "name_bidx": name_index(vault, n) if n else None,
        "surname_bidx": surname_index(vault, surname) if surname else None,
        "mobile_tail_bidx": tail_index(vault, mobile[-4:]) if mobile and len(mobile) >= 4 else None,
        "birthday_md_bidx": _birthday_index_of(vault, birthday),
    }


# Columns whose value picks out a few files (an exact mobile, ID number, file number or full
# name): a search on them walks their own index, with the whole scope as a filter. The others
# (a surname, the mobile's last four digits) are shared by many files: they are walked per scope
# arm with the (column, owner or unit, created_at, id) indexes.
SELECTIVE = frozenset({"mobile_bidx", "id_number_bidx", "file_no", "name_bidx"})


@dataclass
class Query:
    """The search box, read: ``kind`` is "", "file_no", "mobile", "id_number", "name",
    "mobile_tail" or "unsupported"; a file matches if any of ``terms`` (column, value) holds,
    and, for "mobile_tail", its decrypted mobile ends with ``tail``."""

    kind: str
    terms: list[tuple[str, str]] = field(default_factory=list)
    tail: str | None = None

    @property
    def fields(self) -> list[str]:
        return ["mobile"] if self.kind == "mobile_tail" else [self.kind] if self.kind else []


def read_query(vault: Vault, q: str) -> Query:
    q = (q or "").strip()
    if not q:
        return Query("")
    # A mobile number also has a file number's shape (6 + 5 digits): try it first.
    if rules.looks_like_mobile(q):
        return Query("mobile", [("mobile_bidx", vault.blind_index("mobile", rules.normalise_mobile(q)))])
    if rules.looks_like_id_number(q):
        return Query("id_number", [("id_number_bidx", vault.blind_index(
            "id_number", rules.normalise_id_number(q)))])
    parsed = rules.parse_file_number(q)
    if parsed:
        return Query("file_no", [("file_no", rules.format_file_number(*parsed))])
    tail = names.mobile_tail(q)
    if tail:
        return Query("mobile_tail", [("mobile_tail_bidx", tail_index(vault, tail))], tail=tail)
    if names.looks_like_name(q):
        full, surnames = names.query_terms(q)
        terms = [("name_bidx", name_index(vault, n)) for n in sorted(full)]
        terms += [("surname_bidx", surname_index(vault, sn)) for sn in sorted(surnames)]
        if terms:
            return Query("name", terms)
    return Query("unsupported")


# ---------------------------------------------------------------- keeping the indexes filled

def birthday_unindexed():
    """Files with a birthday but no birthday index yet (written before it existed); erased
    files are left out (their birthday no longer opens). ix_customer_birthday_unindexed."""
    return (CustomerFile.birthday_md_bidx.is_(None) & CustomerFile.birthday_ct.is_not(None)
            & CustomerFile.erased_at.is_(None))


def needs_reindex():
    """Files whose search indexes are missing (written before the indexes existed). Not erased
    files: their fields no longer open, so their indexes stay empty (and an erased file kept
    here would come back in every batch: more than a batch of them and reindex never ended)."""
    return ((CustomerFile.name_ct.is_not(None) & CustomerFile.name_bidx.is_(None)) | (
        CustomerFile.mobile_ct.is_not(None) & CustomerFile.mobile_tail_bidx.is_(None))
        | CustomerFile.birthday_ct.is_not(None) & CustomerFile.birthday_md_bidx.is_(None)) & CustomerFile.erased_at.is_(None)


def reindex_batch(s: Session, vault: Vault, *, batch: int = 1000, everything_after=None) -> tuple[int, object]:
    """Compute the search indexes of up to ``batch`` files; returns (how many, the last id).

    Without ``everything_after`` only files that lack them; with it (an id, or "" to start),
    every file in id order, to recompute after the name rules changed."""
    cols = (CustomerFile.id, CustomerFile.name_ct, CustomerFile.mobile_ct, CustomerFile.birthday_ct)
    if everything_after is None:
        stmt = select(*cols).where(needs_reindex())
    else:
        stmt = select(*cols)
        if everything_after != "":
            stmt = stmt.where(CustomerFile.id > everything_after)
    rows = list(s.execute(stmt.order_by(CustomerFile.id).limit(batch)))
    table = CustomerFile.__table__
    for fid, name_ct, mobile_ct, birthday_ct in rows:
        name = vault.decrypt(name_ct, table=TABLE, column="name", row_id=fid)
        mobile = vault.decrypt(mobile_ct, table=TABLE, column="mobile", row_id=fid)
        birthday = vault.decrypt(birthday_ct, table=TABLE, column="birthday", row_id=fid)
        s.execute(table.update().where(table.c.id == fid).values(
            **index_values(vault, name, mobile, birthday)))
    return len(rows), (rows[-1][0] if rows else None)


def count_unindexed(s: Session) -> int:
    from sqlalchemy import func
    return s.scalar(select(func.count()).select_from(CustomerFile).where(needs_reindex())) or 0


def any_of(alternatives: list):
    return or_(*alternatives) if len(alternatives) > 1 else alternatives[0]
