"""Idempotent API writes: the first answer to a terminal's Idempotency-Key is kept and replayed.

The answer is written in the same transaction as the use case's own writes, so a crash can
never keep one without the other. The row is reserved (inserted) *before* the use case runs:
a concurrent duplicate then waits on the primary key (terminal_id, key) — on PostgreSQL the
second INSERT blocks until the first transaction ends; SQLite writers are serialised anyway —
and, once the first commits, fails, rolls back whatever it did, and replays the first answer.
If the first fails instead, nothing of it remains and the duplicate runs as if it were first.

Only successful answers are kept: a refused call writes nothing (but its audit entry), so a
retry with the same key simply runs again.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Callable

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..customers.rules import InvalidField
from ..membership.models import ApiIdempotency

HEADER = "Idempotency-Key"
# Visible ASCII, as the IETF draft's examples (UUIDs, random tokens); at most the column's width.
KEY_PATTERN = r"^[!-~]{1,100}$"  # as the OpenAPI document says it
KEY_RE = re.compile(r"[!-~]{1,100}")


class IdempotencyKeyInvalid(InvalidField):
    def __init__(self) -> None:
        super().__init__(HEADER, "idempotency_key.invalid",
                         "The Idempotency-Key header must be 1 to 100 visible ASCII characters.")


class IdempotencyKeyReused(InvalidField):
    """The key was already used for a different request (another body or another endpoint)."""

    def __init__(self) -> None:
        super().__init__(HEADER, "idempotency_key.reused",
                         "This Idempotency-Key was already used for a different request.")


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: str
    replayed: bool = False


def check_key(key: str | None) -> str:
    if key is None or not KEY_RE.fullmatch(key):
        raise IdempotencyKeyInvalid()
    return key


def request_hash(method: str, path: str, canonical_body: bytes) -> str:
    """What makes two requests "the same": method, path and the decoded body re-encoded in a
    fixed form (so whitespace or key order in the JSON do not matter)."""
    h = hashlib.sha256()
    for part in (method.upper().encode(), path.encode("utf-8"), canonical_body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def _stored(s: Session, terminal_id: int, key: str, req_hash: str) -> Answer | None:
    row = s.scalar(select(ApiIdempotency).where(ApiIdempotency.terminal_id == terminal_id,
                                                ApiIdempotency.key == key))
    if row is None:
        return None
    if not hmac.compare_digest(row.request_hash, req_hash):
        raise IdempotencyKeyReused()
    return Answer(row.status_code, row.body, replayed=True)


def replay_or_reserve(s: Session, terminal_id: int, key: str, req_hash: str) -> Answer | None:
    """The stored answer for a retry (IdempotencyKeyReused if the request differs), or None after
    reserving the key in this transaction. Raises IntegrityError when a concurrent request with
    the same key committed first (the caller rolls back and replays it)."""
    prior = _stored(s, terminal_id, key, req_hash)
    if prior is not None:
        return prior
    s.add(ApiIdempotency(terminal_id=terminal_id, key=key, request_hash=req_hash, status_code=0, body="",
                         created_at=clock.now()))
    s.flush()
    return None


def store(s: Session, terminal_id: int, key: str, status_code: int, body: str) -> None:
    """Record the answer on the reserved row, in the use case's transaction."""
    row = s.get(ApiIdempotency, (terminal_id, key))
    row.status_code, row.body = status_code, body
    s.flush()


def run_once(db, terminal_id: int, key: str, req_hash: str,
             use_case: Callable[[Session], tuple[int, str]], *,
             transaction: Callable[[Callable[[Session], Answer]], Answer] | None = None) -> Answer:
    """Run ``use_case(session) -> (status, body)`` at most once per (terminal, key), in one
    transaction with the stored answer; a retry gets the stored answer back.

    ``transaction(work)`` runs ``work(session)`` in a write transaction of the caller's kind
    (e.g. ``membership.cards.guarded``, which keeps a wrong PIN); by default ``db.write()``."""
    def work(s: Session) -> Answer:
        prior = replay_or_reserve(s, terminal_id, key, req_hash)
        if prior is not None:
            return prior
        status, body = use_case(s)
        store(s, terminal_id, key, status, body)
        return Answer(status, body)

    try:
        if transaction is not None:
            return transaction(work)
        with db.write() as s:
            return work(s)
    except IntegrityError:
        # Either a concurrent duplicate won the race (its answer is committed now) or the use
        # case itself hit a constraint; only the first is ours to answer.
        with db.read() as s:
            prior = _stored(s, terminal_id, key, req_hash)
        if prior is None:
            raise
        return prior


def purge(s: Session, older_than_days: int) -> int:
    """Forget stored answers older than the given number of days (terminals retry within
    minutes; a key reused after this is a new request). Returns how many were removed."""
    if older_than_days < 1:  # the command line's option allows 1 and up
        raise ValueError("older_than_days must be at least 1")
    cutoff = clock.now() - timedelta(days=older_than_days)
    return s.execute(delete(ApiIdempotency).where(ApiIdempotency.created_at < cutoff)).rowcount or 0
