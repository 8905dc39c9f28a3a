"""Correction requests (PIPL art. 46): recorded on a file, answered by an edit of that file, and
linked to the audit entry of the edit that answered them (or refused, with a reason)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..audit.models import AuditEvent
from ..customers import service as customers
from ..customers.models import PERSONAL_FIELDS
from ..customers.service import InvalidInput, NotFound
from ..policy import Action
from ..vault import Vault
from .models import CorrectionRequest

TABLE = "correction_request"
FIELDS = (*PERSONAL_FIELDS, "gender", "category")


@dataclass(frozen=True)
class CorrectionRow:
    id: int
    field_name: str
    details: str | None  # None once the customer was erased
    requested_by: str
    requested_at: datetime
    status: str
    answered_by: str
    answered_at: datetime | None
    answer_seq: int | None
    answer_note: str


def record_request(s: Session, vault: Vault, actor: Actor, file_id, field_name: str,
                   details: str) -> CorrectionRequest:
    """Record what the person says is wrong (sealed with their own key: it is personal data)."""
    f = customers.get_file_for(s, actor, file_id, Action.PRIVACY_REQUEST)
    errors = {}
    if f.erased_at is not None:
        errors["details"] = "This customer's personal data was erased."
    if field_name not in FIELDS:
        errors["field_name"] = "Choose the field to correct."
    details = (details or "").strip()
    if len(details) < 3:
        errors["details"] = "Say what is wrong and what it should be."
    elif len(details) > 1000:
        errors["details"] = "At most 1000 characters."
    if errors:
        raise InvalidInput(errors)
    req = CorrectionRequest(customer_id=f.id, field_name=field_name, requested_by_id=actor.user_id,
                            requested_at=clock.now())
    s.add(req)
    s.flush()
    req.details_ct = vault.encrypt(details, table=TABLE, column="details", row_id=req.id, subject=f.id)
    s.flush()
    audit.record(s, actor, "privacy.correction_request", object_type="customer", object_id=f.file_no,
                 fields=[field_name], detail=f"correction {req.id}")
    return req


def _open_request(s: Session, request_id: int) -> CorrectionRequest:
    req = s.get(CorrectionRequest, request_id)
    if req is None:
        raise NotFound("no such request")
    s.refresh(req, with_for_update=True)
    if req.status != "open":
        raise InvalidInput({"value": "This request was already answered."})
    return req


def answer(s: Session, vault: Vault, actor: Actor, request_id: int, value: str) -> CorrectionRequest:
    """Correct the field (an ordinary, authorised and audited edit of the file) and link the
    request to that edit's audit entry."""
    req = _open_request(s, request_id)
    if req.field_name not in FIELDS:
        raise InvalidInput({"value": "This field cannot be corrected here."})
    try:
        f = customers.update_field(s, vault, actor, req.customer_id, req.field_name, value)
    except InvalidInput as exc:  # the field's own message, shown next to the one input
        raise InvalidInput({"value": next(iter(exc.errors.values()))}) from None
    seq = s.scalar(select(AuditEvent.seq).where(AuditEvent.action == "customer.edit",
                                                AuditEvent.object_id == f.file_no)
                   .order_by(AuditEvent.seq.desc()).limit(1))
    req.status, req.answered_by_id, req.answered_at, req.answer_seq = "answered", actor.user_id, clock.now(), seq
    s.flush()
    audit.record(s, actor, "privacy.correction_answer", object_type="customer", object_id=f.file_no,
                 fields=[req.field_name], detail=f"correction {req.id} answered by entry {seq}")
    return req


def refuse(s: Session, actor: Actor, request_id: int, note: str) -> CorrectionRequest:
    req = _open_request(s, request_id)
    f = customers.get_file_for(s, actor, req.customer_id, Action.CUSTOMER_EDIT)
    note = (note or "").strip()
    if len(note) < 5:
        raise InvalidInput({"note": "Say why, in at least 5 characters."})
    req.status, req.answered_by_id, req.answered_at = "refused", actor.user_id, clock.now()
    req.answer_note = note[:500]
    s.flush()
    audit.record(s, actor, "privacy.correction_refuse", object_type="customer", object_id=f.file_no,
                 fields=[req.field_name], reason=req.answer_note, detail=f"correction {req.id}")
    return req


def for_file(s: Session, vault: Vault, customer_id: uuid.UUID) -> list[CorrectionRow]:
    """The file's correction requests, newest first (the caller has authorised and audited)."""
    reqs = list(s.scalars(select(CorrectionRequest).where(CorrectionRequest.customer_id == customer_id)
                          .order_by(CorrectionRequest.id.desc())))
    ids = {r.requested_by_id for r in reqs} | {r.answered_by_id for r in reqs}
    names = dict(s.execute(select(User.id, User.username).where(User.id.in_(ids - {None}))).all()) if reqs else {}
    return [CorrectionRow(r.id, r.field_name,
                          vault.decrypt(r.details_ct, table=TABLE, column="details", row_id=r.id),
                          names.get(r.requested_by_id, "?"), r.requested_at, r.status,
                          names.get(r.answered_by_id, ""), r.answered_at, r.answer_seq, r.answer_note)
            for r in reqs]


def forget_unreadable(s: Session, customer_id: uuid.UUID) -> None:
    """On erasure: open requests close (nothing is left to correct)."""
    s.execute(update(CorrectionRequest).where(CorrectionRequest.customer_id == customer_id,
                                              CorrectionRequest.status == "open")
              .values(status="refused", answer_note="customer erased", answered_at=clock.now()))

