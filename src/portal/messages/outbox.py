"""The outbox: messages to members, written in the caller's transaction, sent later by a job.

The API other code calls (complaints, events, membership)::

    from portal.messages import outbox
    msg_id = outbox.enqueue(s, customer_id=f.id, kind="event_invitation", purpose="marketing",
                            context={"event_title": "新品品鉴会", "event_when": "2026-12-05 19:00",
                                     "event_place": "深圳"},
                            reference=f"event:{event.id}")

- It writes one ``outbox_message`` row in the session ``s`` (the caller's transaction: the
  message exists exactly when the event that caused it does) and returns its id, or None
  when nothing is to be sent: the member has no consent for ``purpose`` on any channel with
  an address (marketing needs consent given; service goes unless withdrawn), or a message of
  this ``kind`` with this ``reference`` was already written for the member (the occasion
  key: the same birthday, reminder or invitation is never written twice).
- ``kind`` is one of ``templates.KINDS`` (the texts are in messages/templates.py, zh_CN and
  en, chosen by the member's language); ``context`` fills the template and must hold **no
  personal data** (it is stored in the clear): card numbers, tiers, points, dates, titles of
  events, ids. Personal free text (a complaint reply) goes in ``text=`` together with
  ``vault=``: it is stored encrypted. ``reference`` is at most 64 characters.
- The channel is the member's preferred one (``member_contact``; SMS to the file's mobile by
  default), else the other one if it has an address and consent.

``portal jobs send`` (messages/sender.py) claims due messages, renders them (the member's
name and address are decrypted then and stored encrypted as sent), sends, and records the
outcome. Logs and errors name message ids only.
"""
from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .. import clock, locks
from ..accounts.actor import Actor
from ..consent import service as consent
from ..customers.models import CustomerFile
from ..vault import Vault
from .models import MemberContact, OutboxMessage
from .rules import MessageRules
from .templates import KINDS

TABLE = "outbox_message"


class OutboxError(ValueError):
    """A message the outbox cannot take (unknown kind, personal data in the clear...)."""


def _clean_context(context: dict | None) -> str:
    out = {}
    for k, v in (context or {}).items():
        if isinstance(v, (date, datetime)):
            v = v.isoformat()
        if not isinstance(k, str) or not (v is None or isinstance(v, (str, int, float, bool))):
            raise OutboxError(f"context value {k!r}: plain values only")
        out[k] = v
    return json.dumps(out, ensure_ascii=False, sort_keys=True)


def channel_for(s: Session, f: CustomerFile, purpose: str) -> tuple[str, str] | None:
    """(channel, language) the member is reached on for ``purpose``; None: no consented channel."""
    contact = s.get(MemberContact, f.id)
    language = contact.language if contact else "zh_CN"
    preferred = contact.channel if contact else "sms"
    order = [preferred] + [c for c in ("sms", "email") if c != preferred]
    for channel in order:
        has_address = f.mobile_ct is not None if channel == "sms" else bool(contact and contact.email_ct)
        if has_address and consent.allows(s, f.id, channel, purpose):
            return channel, language
    return None


def enqueue(s: Session, *, customer_id: uuid.UUID, kind: str, purpose: str, context: dict | None,
            reference: str, text: str | None = None, vault: Vault | None = None,
            actor: Actor | None = None, batch_id: str | None = None,
            send_after: datetime | None = None) -> int | None:
    """Write one message in the caller's transaction; see the module's docstring."""
    if kind not in KINDS:
        raise OutboxError(f"unknown message kind {kind!r}")
    if purpose not in consent.PURPOSES:
        raise OutboxError(f"unknown purpose {purpose!r}")
    if KINDS[kind] == "marketing" and purpose != "marketing":
        raise OutboxError(f"{kind} is marketing")
    if not reference or len(reference) > 64:
        raise OutboxError("reference: 1 to 64 characters")
    if text is not None and vault is None:
        raise OutboxError("personal text needs the vault (it is stored encrypted)")
    f = s.get(CustomerFile, customer_id)
    if f is None:
        raise OutboxError("no such file")
    reach = channel_for(s, f, purpose)
    if reach is None:
        return None
    channel, language = reach
    now = clock.now()
    values = dict(customer_id=f.id, kind=kind, purpose=purpose,
                  channel=channel, language=language, reference=reference, context=_clean_context(context),
                  batch_id=batch_id, status="pending", attempts=0, next_attempt_at=send_after or now,
                  provider_id="", last_error="", created_by_id=actor.user_id if actor else None,
                  created_at=now)
    dialect = s.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(OutboxMessage)
    stmt = (ins.values(**values)
            .on_conflict_do_nothing(index_elements=["customer_id", "kind", "reference"])
            .returning(OutboxMessage.id))
    msg_id = s.execute(stmt).scalar()
    if msg_id is not None and text is not None:
        s.execute(update(OutboxMessage).where(OutboxMessage.id == msg_id).values(
            text_ct=vault.encrypt(text, table=TABLE, column="text", row_id=msg_id)))
    return msg_id


# ---------------------------------------------------------------- claiming (the sender's side)

def _due(channel: str, now: datetime, rules: MessageRules):
    stale = now - timedelta(seconds=rules.lease_seconds)
    return and_(OutboxMessage.channel == channel, or_(
        and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == "sending", OutboxMessage.claimed_at < stale)))


def claim(s: Session, channel: str, rules: MessageRules, *, limit: int, token: str,
          now: datetime | None = None) -> list[OutboxMessage]:
    """Claim up to ``limit`` due messages of one channel for this sender (``token``).

    Safe with several senders at once: claims of one channel take a named lock (PostgreSQL:
    an advisory lock; SQLite: the write transaction excludes every other writer) so the rate
    limit counts every sender's claims of the last minute; the rows are read FOR UPDATE SKIP
    LOCKED and taken with a conditional UPDATE that only a still-due row satisfies. A message
    is claimed by one sender; a claim older than the lease (a crashed sender) is taken again.
    Quiet hours hold SMS back (they stay pending until the quiet hours end).
    """
    now = now or clock.now()
    if rules.quiet(channel, now):
        return []
    locks.hold(s, "outbox-claim", channel)
    used = s.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.channel == channel, OutboxMessage.claimed_at > now - timedelta(seconds=60))) or 0
    room = min(limit, rules.per_minute(channel) - used)
    if room <= 0:
        return []
    q = (select(OutboxMessage.id).where(_due(channel, now, rules))
         .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(room))
    if s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    ids = list(s.scalars(q))
    taken = []
    for mid in ids:
        res = s.execute(update(OutboxMessage).where(OutboxMessage.id == mid, _due(channel, now, rules))
                        .values(status="sending", claim_token=token, claimed_at=now,
                                attempts=OutboxMessage.attempts + 1))
        if res.rowcount == 1:
            taken.append(mid)
    if not taken:
        return []
    return list(s.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(taken)).order_by(OutboxMessage.id)
                          .execution_options(populate_existing=True)))


def new_token() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Outcome:
    status: str            # sent | pending (retry) | failed | suppressed
    provider_id: str = ""
    error: str = ""
    retry_at: datetime | None = None


def finish(s: Session, message_id: int, token: str, outcome: Outcome, now: datetime | None = None) -> bool:
    """Record a send's outcome, only if this sender still holds the claim."""
    now = now or clock.now()
    values = dict(status=outcome.status, last_error=outcome.error[:200], claim_token=None)
    if outcome.status == "sent":
        values.update(sent_at=now, provider_id=outcome.provider_id[:100])
    if outcome.retry_at is not None:
        values["next_attempt_at"] = outcome.retry_at
    res = s.execute(update(OutboxMessage).where(OutboxMessage.id == message_id,
                                                OutboxMessage.claim_token == token,
                                                OutboxMessage.status == "sending").values(**values))
    return res.rowcount == 1


def hold_back(s: Session, message_id: int, token: str, until: datetime) -> None:
    """Give a claimed message back, due again at ``until`` (its attempt not counted)."""
    s.execute(update(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.claim_token == token)
              .values(status="pending", claim_token=None, next_attempt_at=until,
                      attempts=OutboxMessage.attempts - 1))


# ---------------------------------------------------------------- opt-out tokens

def opt_out_token(vault: Vault, message_id: int) -> str:
    return f"{message_id}-{vault.sign('opt-out', str(message_id))[:32]}"


def message_for_token(s: Session, vault: Vault, token: str) -> OutboxMessage | None:
    head, _, mac = token.partition("-")
    if not head.isdigit() or len(mac) != 32:
        return None
    if not secrets.compare_digest(vault.sign("opt-out", head)[:32], mac):
        return None
    return s.get(OutboxMessage, int(head))
