"""Every encrypted column in the database, and key rotation over all of them.

The registry is found, not kept by hand: a column is ciphertext when it is binary and its name
ends in `_ct`. Its blobs are sealed (vault.py) with the table name, the column name without
`_ct` and the row's primary key as associated data. `portal keys rotate` re-encrypts every
registered column, `portal keys status` counts each key's blobs in them, and `portal keys
retire` forgets only keys that no blob in any of them uses. A binary column that is not
ciphertext says so with `info={"not_ciphertext": "why"}`; a test fails on any other binary
column in the database that the registry misses.

A table whose `info` names a `subject_key` column (customer files: their id) keeps its blobs
under each customer's own data key (subject_keys.py): rotation re-wraps those keys (the
`customer_key` table is itself registered) rather than the blobs, and moves any blob still under a
ring key to its customer's key, so `portal keys rotate` is also the migration to per-customer keys.

Works on any SQLAlchemy MetaData (pass `portal.models.metadata`), so this module sits beside
vault.py and imports no domain package.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable, Iterable

from sqlalchemy import Column, LargeBinary, MetaData, Table, func, select, update
from sqlalchemy.orm import Session

from .vault import Vault, VaultError

SUFFIX = "_ct"
# A table with this column records which key sealed the whole row (customer files do); rotation
# keeps it in step with the blobs.
ROW_KEY_COLUMN = "key_id"
# The key id counted for a blob sealed with a customer's own key (it names no ring key).
SUBJECT_KEY = 0


class RegistryError(Exception):
    """A ciphertext column the conventions cannot handle (e.g. a table without a single primary key)."""


@dataclass(frozen=True)
class EncryptedTable:
    """One table's ciphertext columns and how their associated data is formed."""

    table: Table
    columns: tuple[Column, ...]
    pk: Column
    row_key: Column | None = None
    subject: Column | None = None  # the column naming the customer whose own key seals the row

    @property
    def name(self) -> str:
        return self.table.name

    @staticmethod
    def aad_column(col: Column) -> str:
        return col.name[: -len(SUFFIX)]


def is_binary(col: Column) -> bool:
    return isinstance(col.type, LargeBinary)


def is_ciphertext(col: Column) -> bool:
    return is_binary(col) and col.name.endswith(SUFFIX) and not col.info.get("not_ciphertext")


def registry(metadata: MetaData) -> list[EncryptedTable]:
    """Every table holding ciphertext, in a stable order."""
    out = []
    for table in sorted(metadata.tables.values(), key=lambda t: t.name):
        cols = tuple(c for c in table.columns if is_ciphertext(c))
        if not cols:
            continue
        pks = list(table.primary_key.columns)
        if len(pks) != 1:
            raise RegistryError(f"{table.name}: ciphertext needs a single-column primary key "
                                f"(the associated data names the row)")
        row_key = table.c.get(ROW_KEY_COLUMN)
        subject = table.info.get("subject_key")
        out.append(EncryptedTable(table, cols, pks[0], row_key,
                                  table.c[subject] if subject else None))
    return out


def _kid(prefix) -> int:
    # The blob header: version byte, then the key id (uint16, big-endian); version 2 blobs are
    # under a customer's own key.
    version, kid = struct.unpack(">BH", bytes(prefix))
    return SUBJECT_KEY if version == 2 else kid


def key_counts(s: Session, tables: Iterable[EncryptedTable]) -> dict[str, dict[int, int]]:
    """Per table, how many blobs each data key sealed (read from the blob headers in SQL)."""
    counts: dict[str, dict[int, int]] = {}
    for et in tables:
        per_key = counts.setdefault(et.name, {})
        for col in et.columns:
            head = func.substr(col, 1, 3)  # version and key id; substr works on BLOB and bytea
            for prefix, n in s.execute(select(head, func.count()).where(col.is_not(None)).group_by(head)):
                kid = _kid(prefix)
                per_key[kid] = per_key.get(kid, 0) + n
    return counts


def keys_in_use(s: Session, tables: Iterable[EncryptedTable]) -> set[int]:
    """The ring keys some blob needs (a customer's own key is not one of them)."""
    return {kid for per_key in key_counts(s, tables).values() for kid, n in per_key.items()
            if n and kid != SUBJECT_KEY}


@dataclass
class Cursor:
    """Where rotation stands in one table: the last primary key looked at, rows changed."""

    table: EncryptedTable
    after: object = None
    done: bool = False
    changed: int = 0
    seen: int = 0


def reencrypt_batch(s: Session, vault: Vault, cur: Cursor, key_id: int, batch: int = 500) -> int:
    """Re-seal, under `key_id`, every blob of the next `batch` rows (in primary-key order) that
    another key sealed; returns how many rows changed. The rows are locked (FOR UPDATE on
    PostgreSQL; SQLite's write transaction holds the whole database), so a concurrent edit is
    neither lost nor overwritten. In a table of per-customer blobs, a blob under a ring key moves
    to its customer's own key instead, and a blob already there is left alone."""
    et = cur.table
    cols = [et.pk, *et.columns] + ([et.subject] if et.subject is not None else []) \
        + ([et.row_key] if et.row_key is not None else [])
    stmt = select(*cols).order_by(et.pk).limit(batch).with_for_update()
    if cur.after is not None:
        stmt = stmt.where(et.pk > cur.after)
    rows = s.execute(stmt).all()
    changed = 0
    for row in rows:
        pk = row[0]
        values: dict[str, object] = {}
        subject = row[1 + len(et.columns)] if et.subject is not None else None
        target = SUBJECT_KEY if subject is not None else key_id
        for col, blob in zip(et.columns, row[1:1 + len(et.columns)]):
            if blob is None or Vault.key_id_of(blob) == target:
                continue
            aad = dict(table=et.name, column=et.aad_column(col), row_id=pk)
            try:
                plain = vault.decrypt(blob, **aad)
            except VaultError as exc:
                raise VaultError(f"{et.name}.{col.name} of row {pk}: {exc}") from None
            if subject is not None:
                values[col.name] = vault.encrypt(plain, subject=subject, **aad)
            else:
                values[col.name] = vault.encrypt(plain, key_id=key_id, **aad)
        if et.row_key is not None and row[-1] != target:
            values[et.row_key.name] = target
        if values:
            s.execute(update(et.table).where(et.pk == pk).values(**values))
            changed += 1
    cur.seen += len(rows)
    cur.changed += changed
    if rows:
        cur.after = rows[-1][0]
    cur.done = len(rows) < batch
    return changed


@dataclass
class RotationReport:
    key_id: int
    changed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.changed.values())


def reencrypt_all(write: Callable, vault: Vault, tables: Iterable[EncryptedTable], key_id: int,
                  batch: int = 500, progress: Callable[[str, int, int], None] | None = None) -> RotationReport:
    """Walk every registered table once, one transaction per batch (`write()` opens one);
    `progress(table, rows changed, rows looked at)` after each batch."""
    report = RotationReport(key_id)
    for et in tables:
        cur = Cursor(et)
        while not cur.done:
            seen = cur.seen
            with write() as s:
                n = reencrypt_batch(s, vault, cur, key_id, batch)
            if progress is not None:
                progress(et.name, n, cur.seen - seen)
        report.changed[et.name] = cur.changed
    return report
