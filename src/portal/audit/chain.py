"""The hash chain: each audit entry's hash covers its content and the previous entry's hash."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

GENESIS = "0" * 64

# The fields a hash covers, in order.
CHAINED = ("seq", "at", "actor_id", "actor_username", "actor_role", "action", "object_type",
           "object_id", "fields", "outcome", "reason", "detail", "grant_id", "client_addr")


def _canon(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(timezone.utc).replace(tzinfo=None)
        return v.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return str(v)


def canon_stored_time(v: object) -> str:
    """_canon() of a UTC timestamp as the database driver returns it without type processing:
    SQLite's text "YYYY-MM-DD HH:MM:SS.ffffff", or a naive UTC datetime (PostgreSQL)."""
    if v.__class__ is str:
        if len(v) == 26 and v[10] == " ":
            return v[:10] + "T" + v[11:]
        v = datetime.fromisoformat(v)
    if isinstance(v, datetime) and v.tzinfo is None:
        return v.isoformat(timespec="microseconds")
    return _canon(v)


def entry_hash(values: dict | tuple, prev_hash: str) -> str:
    """values: a mapping with the CHAINED keys, or a tuple in CHAINED order."""
    seq = values if isinstance(values, tuple) else tuple(values[k] for k in CHAINED)
    payload = "\x1f".join(_canon(v) for v in seq) + "\x1e" + prev_hash
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
