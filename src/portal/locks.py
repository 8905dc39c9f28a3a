"""Named locks held to the end of a write transaction, for a check and its record that must not interleave.

A sign-in's throttle check, password verification and failure record, or a stored-value PIN
check and the failure it leaves, must run one at a time per account (or card holder): else
simultaneous guesses all read the same count of earlier failures and all get evaluated.

PostgreSQL: a transaction-level advisory lock on a 64-bit key derived from the name; it is
shared by every process using the database and released at commit or rollback, after the
transaction's writes are visible. Locks are per name, never global. Take them before any
row lock of the use case (and never inside a savepoint that may roll back: that releases them).

SQLite: nothing to take. A write transaction (``Database.write()``: BEGIN IMMEDIATE behind the
writer gate) already excludes every other writer, in this process and in others.
"""
from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session

_ADVISORY = text("SELECT pg_advisory_xact_lock(:key)")


def key_of(kind: str, name: str | int) -> int:
    """A signed 64-bit key for (kind, name); a rare collision only makes two names wait on each other."""
    digest = hashlib.blake2b(f"{kind}\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def hold(s: Session, kind: str, *names: str | int) -> None:
    """Wait for, then hold until this transaction ends, the lock on each of ``names`` (in the
    order given: callers keep one order so that two transactions never wait on each other)."""
    if s.get_bind().dialect.name != "postgresql":
        return
    for name in names:
        s.execute(_ADVISORY, {"key": key_of(kind, name)})
