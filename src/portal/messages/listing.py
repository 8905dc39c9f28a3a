"""The outbox as staff see it: within the policy's scope, addresses masked, no bodies."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..audit import service as audit
from ..accounts.actor import Actor
from ..customers.models import CustomerFile
from ..customers.rules import mask_mobile
from ..policy import Action, customer_scope
from ..vault import Vault
from .models import OutboxMessage

STATUSES = ("pending", "sending", "sent", "failed", "suppressed")


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return (local[:1] + "***@" + domain) if domain else "***"


def mask_address(channel: str, address: str | None) -> str:
    if not address:
        return ""
    return mask_mobile(address) if channel == "sms" else mask_email(address)


@dataclass
class OutboxRow:
    id: int
    file_no: str
    kind: str
    purpose: str
    channel: str
    language: str
    address: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str


def _scope(actor: Actor):
    # The file's current owner and unit decide (a reassigned file's messages move with it).
    return customer_scope(actor, Action.MESSAGES_OUTBOX)


def counts(s: Session, actor: Actor) -> dict[str, int]:
    return dict(s.execute(select(OutboxMessage.status, func.count())
                          .join(CustomerFile, CustomerFile.id == OutboxMessage.customer_id)
                          .where(_scope(actor)).group_by(OutboxMessage.status)).all())


def list_outbox(s: Session, vault: Vault, actor: Actor, *, status: str = "", before_id: int | None = None,
                limit: int = 50) -> list[OutboxRow]:
    """Newest first; audited (the masked addresses are decrypted after the entry is written)."""
    q = (select(OutboxMessage, CustomerFile.file_no).join(CustomerFile, CustomerFile.id == OutboxMessage.customer_id)
         .where(_scope(actor)).order_by(OutboxMessage.id.desc()).limit(limit))
    if status in STATUSES:
        q = q.where(OutboxMessage.status == status)
    if before_id:
        q = q.where(OutboxMessage.id < before_id)
    rows = s.execute(q).all()
    audit.record(s, actor, Action.MESSAGES_OUTBOX.value, object_type="list", object_id="outbox",
                 fields=["address"], detail=f"status {status or 'all'}, {len(rows)} messages")
    out = []
    for m, file_no in rows:
        address = vault.decrypt(m.address_ct, table="outbox_message", column="address", row_id=m.id)
        out.append(OutboxRow(m.id, file_no, m.kind, m.purpose, m.channel, m.language,
                             mask_address(m.channel, address), m.status, m.attempts, m.created_at,
                             m.next_attempt_at, m.sent_at, m.last_error))
    return out
