"""Each customer's own data key, for erasure by crypto-shredding.

A customer's personal fields are sealed (vault.py, blob version 2) with a random AES-256 key of
their own. That key is kept in `customer_key`, itself sealed under the key ring's active key
(the `key_ct` column is registered ciphertext, so `portal keys rotate` re-wraps it like any other
value). Erasing the customer clears `key_ct` (the row stays as a tombstone saying when).

Where the key must not survive:
- backups: they never hold this table's rows (backup/snapshot.py leaves them out; a restore
  takes the keys from the live database or a short-lived key backup, backup/customer_keys.py);
- the live SQLite file: `secure_delete` (db.py) zeroes the freed bytes, and after the erasing
  transaction commits the write-ahead log is checkpointed and truncated (below), so no older page
  holding the key stays in the -wal file. PostgreSQL keeps the old row version until VACUUM (see
  the README, "Personal data").

Keys are read in the transaction the caller runs in (db.current_session()) and kept for the
rest of that transaction only, so an erasure in one process holds at once in every other.
"""
from __future__ import annotations

import base64
import logging
import uuid
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Column, LargeBinary, event, select, update
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from . import clock
from .db import UTCDateTime, current_session
from .vault import Vault, VaultError

TABLE = "customer_key"
_CACHE = "subject_keys"
_DESTROYED = "subject_keys_destroyed"
log = logging.getLogger(__name__)


class CustomerKey(SQLModel, table=True):
    """One customer's data key, wrapped by the key ring; `key_ct` is None once erased."""

    __tablename__ = TABLE

    customer_id: uuid.UUID = Field(primary_key=True)
    key_ct: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    erased_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class CustomerErased(VaultError):
    """A value cannot be sealed for a customer whose key was destroyed."""


def _session():
    s = current_session()
    if s is None:
        raise VaultError("a customer's own key is read within a transaction (Database.write/read)")
    return s


def aead_for(vault: Vault, customer_id: uuid.UUID, *, create: bool) -> AESGCM | None:
    """The customer's key, ready to use; None when it was erased. With `create`, a customer
    without one gets a new key (in the open transaction). Raises VaultError when there is none."""
    s = _session()
    cache = s.info.setdefault(_CACHE, {})
    if customer_id in cache:
        aead = cache[customer_id]
        if aead is None and create:
            raise CustomerErased("this customer's data was erased")
        return aead
    with s.no_autoflush:
        row = s.execute(select(CustomerKey.key_ct, CustomerKey.erased_at)
                        .where(CustomerKey.customer_id == customer_id)).first()
    if row is None:
        if not create:
            raise VaultError("no data key for this customer")
        raw = AESGCM.generate_key(256)
        s.add(CustomerKey(customer_id=customer_id, created_at=clock.now(),
                          key_ct=vault.encrypt(base64.b64encode(raw).decode("ascii"), table=TABLE,
                                               column="key", row_id=customer_id)))
        s.flush()
        aead = AESGCM(raw)
    elif row.key_ct is None:
        aead = None
        if create:
            raise CustomerErased("this customer's data was erased")
    else:
        wrapped = vault.decrypt(row.key_ct, table=TABLE, column="key", row_id=customer_id)
        aead = AESGCM(base64.b64decode(wrapped))
    cache[customer_id] = aead
    return aead


def prefetch(vault: Vault, customer_ids) -> None:
    """Read many customers' keys in one query (a list page opens a name per row)."""
    s = _session()
    cache = s.info.setdefault(_CACHE, {})
    wanted = [c for c in set(customer_ids) if c not in cache]
    for i in range(0, len(wanted), 500):
        with s.no_autoflush:
            rows = s.execute(select(CustomerKey.customer_id, CustomerKey.key_ct)
                             .where(CustomerKey.customer_id.in_(wanted[i:i + 500]))).all()
        for cid, key_ct in rows:
            cache[cid] = None if key_ct is None else AESGCM(base64.b64decode(
                vault.decrypt(key_ct, table=TABLE, column="key", row_id=cid)))


def destroy(s, customer_id: uuid.UUID) -> bool:
    """Destroy a customer's key (leave a tombstone); True when there was a key to destroy."""
    now = clock.now()
    n = s.execute(update(CustomerKey).where(CustomerKey.customer_id == customer_id,
                                            CustomerKey.key_ct.is_not(None))
                  .values(key_ct=None, erased_at=now)).rowcount
    if not n and s.get(CustomerKey, customer_id) is None:
        s.add(CustomerKey(customer_id=customer_id, key_ct=None, created_at=now, erased_at=now))
    s.flush()
    s.info.setdefault(_CACHE, {})[customer_id] = None
    s.info[_DESTROYED] = True
    return bool(n)


def truncate_sqlite_wal(engine, busy_ms: int = 2000) -> bool | None:
    """Checkpoint a SQLite database's write-ahead log into the database file and truncate it to
    zero bytes, so no older copy of a page (a destroyed key, say) stays in the -wal file. True
    when done, False when a reader still on an older snapshot prevented it (the nightly
    `portal jobs retention` tries again), None for other databases."""
    if engine.dialect.name != "sqlite":
        return None
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        try:
            busy, _log, _done = cur.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
        return busy == 0
    finally:
        raw.close()


@event.listens_for(Session, "after_commit")
def _checkpoint_after_destroy(session: Session) -> None:
    if not session.info.pop(_DESTROYED, False):
        return
    try:
        if truncate_sqlite_wal(session.get_bind()) is False:
            log.warning("erasure: the write-ahead log could not be truncated yet (a long read is "
                        "open); `portal jobs retention` truncates it")
    except Exception:  # noqa: BLE001 - the erasure itself is committed; the job tries again
        log.exception("erasure: checkpointing the write-ahead log failed")


def is_erased(s, customer_id: uuid.UUID) -> bool:
    return s.scalar(select(CustomerKey.erased_at).where(CustomerKey.customer_id == customer_id)) is not None
