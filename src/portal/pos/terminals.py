"""POS terminal API keys: issue (the plaintext shown once), authenticate, revoke, list.

A key is ``vip_`` followed by 256 random bits (43 URL-safe characters). The database keeps its
first 12 characters (to find the row) and the SHA-256 of the whole key: the key is random and
long, so a fast hash cannot be brute-forced and no slow password hash is needed on every call.
A terminal acts as role "terminal" for the unit it was issued to (and the units below it).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.rules import InvalidField
from ..membership.models import PosTerminal
from ..org import service as org
from ..org.models import OrgUnit

KEY_SCHEME = "vip_"
PREFIX_LEN = 12
MAX_KEY_LEN = 100  # anything longer is not one of ours (and is not hashed)
TOUCH_EVERY = timedelta(minutes=1)
AUDIT_ACTION = "admin.terminals"


class TerminalError(InvalidField):
    """A terminal request was refused (bad name, unknown unit, unknown or already revoked terminal)."""


@dataclass(frozen=True)
class KeyCheck:
    """What checking a presented key found. ``problem`` is "" when the key is good; otherwise a
    short reason for the audit log (never the key itself)."""

    actor: Actor | None
    terminal_id: int | None
    problem: str


@dataclass(frozen=True)
class TerminalRow:
    id: int
    name: str
    unit_code: str
    unit_name: str
    key_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def live(self) -> bool:
        return self.revoked_at is None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not 1 <= len(name) <= 50 or any(unicodedata.category(ch).startswith("C") for ch in name):
        raise TerminalError("name", "terminal.name", "Name the terminal in 1 to 50 characters.")
    return name


def issue_key(s: Session, actor: Actor, name: str, unit_code: str) -> tuple[PosTerminal, str]:
    """A new terminal for the unit and its key. The plaintext is returned once and never stored."""
    name = _clean_name(name)
    unit = org.unit_by_code(s, unit_code or "")
    if unit is None:
        raise TerminalError("unit", "terminal.unit", "No unit with this code.")
    for _ in range(5):  # prefixes carry 48 random bits: a clash is all but impossible
        key = KEY_SCHEME + secrets.token_urlsafe(32)
        prefix = key[:PREFIX_LEN]
        if s.scalar(select(PosTerminal.id).where(PosTerminal.key_prefix == prefix)) is None:
            break
    else:  # pragma: no cover
        raise RuntimeError("could not draw an unused key prefix")
    t = PosTerminal(name=name, unit_id=unit.id, unit_path=unit.path, key_prefix=prefix,
                    key_hash=key_hash(key), created_by_id=actor.user_id, created_at=clock.now())
    s.add(t)
    s.flush()
    audit.record(s, actor, AUDIT_ACTION, object_type="terminal", object_id=str(t.id),
                 detail=f"issue {name} unit={unit.code} prefix={prefix}")
    return t, key


def revoke(s: Session, actor: Actor, terminal_id: int, reason: str) -> PosTerminal:
    """Stop a terminal's key at once (every process checks the row on every call)."""
    reason = " ".join((reason or "").split())
    if not 5 <= len(reason) <= 500:
        raise TerminalError("reason", "reason.required", "Give a reason of 5 to 500 characters.")
    t = s.get(PosTerminal, terminal_id, with_for_update=True)
    if t is None:
        raise TerminalError("terminal", "terminal.unknown", "No such terminal.")
    if t.revoked_at is not None:
        raise TerminalError("terminal", "terminal.revoked", "This terminal's key is already revoked.")
    t.revoked_at = clock.now()
    s.flush()
    audit.record(s, actor, AUDIT_ACTION, object_type="terminal", object_id=str(t.id), reason=reason,
                 detail=f"revoke {t.name} prefix={t.key_prefix}")
    return t


def list_terminals(s: Session) -> list[TerminalRow]:
    rows = s.execute(select(PosTerminal, OrgUnit).join(OrgUnit, OrgUnit.id == PosTerminal.unit_id)
                     .order_by(PosTerminal.id)).all()
    return [TerminalRow(id=t.id, name=t.name, unit_code=u.code, unit_name=u.name, key_prefix=t.key_prefix,
                        created_at=t.created_at, last_used_at=t.last_used_at, revoked_at=t.revoked_at)
            for t, u in rows]


def actor_for(t: PosTerminal, client_addr: str = "") -> Actor:
    return Actor(user_id=None, username=f"terminal:{t.name}", role="terminal", unit_id=t.unit_id,
                 unit_path=t.unit_path, terminal_id=t.id, client_addr=client_addr)


def check_key(s: Session, presented_key: str | None, client_addr: str = "") -> KeyCheck:
    """Find the live terminal a presented key belongs to; in a write session, note its use
    (at most once a minute, so a busy terminal does not write on every call). None stands for
    two different keys presented at once."""
    if presented_key is None:
        return KeyCheck(None, None, "two different keys")
    key = presented_key
    if not key:
        return KeyCheck(None, None, "no key")
    if not key.startswith(KEY_SCHEME) or len(key) > MAX_KEY_LEN or len(key) <= PREFIX_LEN:
        return KeyCheck(None, None, "malformed key")
    t = s.scalar(select(PosTerminal).where(PosTerminal.key_prefix == key[:PREFIX_LEN]))
    if t is None:
        return KeyCheck(None, None, "unknown key")
    if not hmac.compare_digest(key_hash(key), t.key_hash):
        return KeyCheck(None, t.id, "wrong key")
    if t.revoked_at is not None:
        return KeyCheck(None, t.id, "revoked key")
    now = clock.now()
    if t.last_used_at is None or now - t.last_used_at >= TOUCH_EVERY:
        # Conditional, so concurrent calls from several processes write it once.
        s.execute(update(PosTerminal).where(
            PosTerminal.id == t.id,
            (PosTerminal.last_used_at.is_(None)) | (PosTerminal.last_used_at <= now - TOUCH_EVERY))
            .values(last_used_at=now).execution_options(synchronize_session=False))
    return KeyCheck(actor_for(t, client_addr), t.id, "")


def authenticate(s: Session, presented_key: str | None, client_addr: str = "") -> Actor | None:
    """The terminal's actor for a good key, else None (unknown, wrong, revoked or malformed)."""
    return check_key(s, presented_key, client_addr).actor
