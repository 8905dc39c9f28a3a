"""What the consent page shows for one file: authorised and audited before anything is decrypted."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..consent import service as consent
from ..customers.models import CustomerFile
from ..customers.rules import mask_name
from ..customers.service import open_for
from ..policy import Action
from ..vault import Vault
from .contact import ContactView, view_contact
from .listing import mask_address
from .models import OutboxMessage


@dataclass
class ConsentPage:
    file: CustomerFile
    name: str                  # masked
    contact: ContactView
    states: dict
    history: list
    recorders: dict[int, str]
    recent: list[dict]          # this member's latest messages (kind, channel, status, masked address)


def consent_page(s: Session, vault: Vault, actor: Actor, file_id) -> ConsentPage:
    f, grant_id = open_for(s, actor, file_id, Action.MESSAGES_CONSENT)
    audit.record(s, actor, Action.MESSAGES_CONSENT.value, object_type="customer", object_id=f.file_no,
                 fields=["email"], grant_id=grant_id)
    history = consent.history(s, f.id)
    ids = {r.recorded_by_id for r in history if r.recorded_by_id}
    recorders = {u.id: u.username for u in s.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    recent = []
    for m in s.scalars(select(OutboxMessage).where(OutboxMessage.customer_id == f.id)
                       .order_by(OutboxMessage.id.desc()).limit(20)):
        address = vault.decrypt(m.address_ct, table="outbox_message", column="address", row_id=m.id)
        recent.append({"id": m.id, "kind": m.kind, "channel": m.channel, "status": m.status,
                       "address": mask_address(m.channel, address), "created_at": m.created_at,
                       "sent_at": m.sent_at})
    name = vault.decrypt(f.name_ct, table="customer_file", column="name", row_id=f.id) or ""
    return ConsentPage(f, mask_name(name), view_contact(s, vault, f.id), consent.current(s, f.id), history,
                       recorders, recent)
