"""A member's consent per channel (email, sms) and purpose (service, marketing), with its history.

The rules (PIPL arts. 13-17, and the member-service issue):

- **Marketing** (monthly care messages, event invitations) is sent only while the newest
  record for that channel says *given*. No record means no consent.
- **Service** messages (joining notice, card dispatch, points expiry, birthday benefit,
  complaint replies) belong to the membership the member asked for: they are sent unless the
  member *withdrew* service messages on that channel.
- Every record says what was collected (field names, never values), for which purpose, how
  consent was given or withdrawn, when, and who recorded it (staff, or the member through an
  opt-out link or SMS reply). Records are never changed or deleted: a withdrawal is a new row.

``record()`` writes a record and its audit entry in the caller's transaction; ``allows()`` is
the check the outbox makes when a message is written and again when it is sent.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..audit import service as audit
from ..accounts.actor import Actor
from ..customers.models import CustomerFile
from ..customers.service import InvalidInput
from .models import ConsentRecord

CHANNELS = ("sms", "email")
PURPOSES = ("service", "marketing")
METHODS = ("paper_form", "verbal", "phone", "online", "sms_reply", "email_link")
COLLECTED = ("name", "mobile", "email", "birthday", "address", "purchases")


@dataclass(frozen=True)
class ConsentState:
    channel: str
    purpose: str
    given: bool | None          # None: never recorded
    record: ConsentRecord | None


def record(s: Session, actor: Actor | None, customer_id: uuid.UUID, *, channel: str, purpose: str,
           given: bool, method: str, collected: str | list[str] = "", note: str = "",
           message_id: int | None = None) -> ConsentRecord:
    """Append one consent decision (given or withdrawn), audited. ``actor`` None: the member
    themselves (opt-out link or SMS reply). Raises InvalidInput for unknown values."""
    errors = {}
    if channel not in CHANNELS:
        errors["channel"] = "Choose a channel."
    if purpose not in PURPOSES:
        errors["purpose"] = "Choose a purpose."
    if method not in METHODS:
        errors["method"] = "Choose how consent was given or withdrawn."
    items = [c.strip() for c in (collected.split(",") if isinstance(collected, str) else collected) if c.strip()]
    if any(c not in COLLECTED for c in items):
        errors["collected"] = "Choose what was collected from the list."
    if len(note) > 500:
        errors["note"] = "At most 500 characters."
    if errors:
        raise InvalidInput(errors)
    f = s.get(CustomerFile, customer_id)
    now = clock.now()
    row = ConsentRecord(customer_id=customer_id, channel=channel, purpose=purpose, given=given,
                        method=method, collected=",".join(items), note=note.strip(),
                        recorded_by_id=actor.user_id if actor else None, message_id=message_id,
                        recorded_at=now)
    s.add(row)
    s.flush()
    audit.record(s, actor or _member(), "consent.given" if given else "consent.withdrawn",
                 object_type="customer", object_id=f.file_no if f else str(customer_id),
                 detail=f"{channel} {purpose} by {method}" + (f" message {message_id}" if message_id else ""))
    return row


def _member() -> Actor:
    return Actor.system("member")


def current(s: Session, customer_id: uuid.UUID) -> dict[tuple[str, str], ConsentState]:
    """The consent in force for each (channel, purpose)."""
    rows = s.scalars(select(ConsentRecord).where(ConsentRecord.customer_id == customer_id)
                     .order_by(ConsentRecord.id)).all()
    latest = {(r.channel, r.purpose): r for r in rows}
    return {(c, p): ConsentState(c, p, latest[(c, p)].given if (c, p) in latest else None, latest.get((c, p)))
            for c in CHANNELS for p in PURPOSES}


def history(s: Session, customer_id: uuid.UUID) -> list[ConsentRecord]:
    return list(s.scalars(select(ConsentRecord).where(ConsentRecord.customer_id == customer_id)
                          .order_by(ConsentRecord.id.desc())))


def allows(s: Session, customer_id: uuid.UUID, channel: str, purpose: str) -> bool:
    """May a message of ``purpose`` go to this member on ``channel`` now?"""
    row = s.scalars(select(ConsentRecord).where(
        ConsentRecord.customer_id == customer_id, ConsentRecord.channel == channel,
        ConsentRecord.purpose == purpose).order_by(ConsentRecord.id.desc()).limit(1)).first()
    if purpose == "marketing":
        return row is not None and row.given
    return row is None or row.given


def given_at(state: ConsentState) -> datetime | None:
    return state.record.recorded_at if state.record else None
