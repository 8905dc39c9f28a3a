"""Erasure by crypto-shredding: a request on a file, a leader above it approves (never the
requester), and the customer's own data key is destroyed.

What goes: every personal field of the file (sealed with the customer's key; the blobs stay as
unreadable ciphertext), the blind indexes that would find it by name, mobile or ID number, the
wording of its correction requests, the membership's PIN hash. What stays: the file number, its
category and gender, owner and unit, memberships, cards and both ledgers (amounts, dates), the
audit chain (which never held personal fields). The file then shows as erased wherever it appears.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import clock, subject_keys
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers.models import PERSONAL_FIELDS, CustomerFile
from ..customers.service import InvalidInput, NotFound, get_file_for
from ..membership.models import Membership
from ..policy import Action, PermissionDenied, can, customer_scope
from .models import ErasureRequest

BLIND_INDEXES = ("mobile_bidx", "id_number_bidx", "name_bidx", "surname_bidx", "mobile_tail_bidx",
                 "birthday_md_bidx")


@dataclass(frozen=True)
class ErasureRow:
    id: int
    customer_id: uuid.UUID
    file_no: str
    origin: str
    reason: str
    requested_by: str
    requested_at: datetime
    status: str
    decided_by: str
    decided_at: datetime | None


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise InvalidInput({"reason": "Give a reason of at least 5 characters."})
    if len(reason) > 500:
        raise InvalidInput({"reason": "At most 500 characters."})
    return reason


def _pending(s: Session, customer_id: uuid.UUID) -> ErasureRequest | None:
    return s.scalar(select(ErasureRequest).where(ErasureRequest.customer_id == customer_id,
                                                 ErasureRequest.status == "pending"))


def request_erasure(s: Session, actor: Actor, file_id, reason: str) -> ErasureRequest:
    """Record the person's request to erase their data; a leader above the file decides."""
    f = get_file_for(s, actor, file_id, Action.PRIVACY_REQUEST)
    reason = _reason(reason)
    if f.erased_at is not None:
        raise InvalidInput({"reason": "This customer's personal data was already erased."})
    if _pending(s, f.id) is not None:
        raise InvalidInput({"reason": "An erasure request for this file is already waiting."})
    req = ErasureRequest(customer_id=f.id, file_no=f.file_no,
                         origin="request", reason=reason, requested_by_id=actor.user_id,
                         requested_at=clock.now())
    s.add(req)
    s.flush()
    audit.record(s, actor, "privacy.erasure_request", object_type="customer", object_id=f.file_no,
                 reason=reason, detail=f"request {req.id}")
    return req


def propose_erasure(s: Session, f: CustomerFile, reason: str) -> ErasureRequest | None:
    """The retention job's proposal (no requester); None when one is already waiting."""
    if f.erased_at is not None or _pending(s, f.id) is not None:
        return None
    req = ErasureRequest(customer_id=f.id, file_no=f.file_no,
                         origin="retention", reason=reason[:500], requested_by_id=None,
                         requested_at=clock.now())
    s.add(req)
    s.flush()
    audit.record(s, Actor.system("retention"), "privacy.erasure_request", object_type="customer",
                 object_id=f.file_no, reason=reason[:500], detail=f"request {req.id} origin=retention")
    return req


def _decidable(s: Session, actor: Actor, request_id: int) -> tuple[ErasureRequest, CustomerFile]:
    req = s.get(ErasureRequest, request_id)
    if req is None:
        raise NotFound("no such request")
    f = s.get(CustomerFile, req.customer_id)
    # Lock the file, then decide on where it is now (a reassignment may have moved it).
    s.refresh(f, with_for_update=True)
    s.refresh(req, with_for_update=True)
    if not can(actor, Action.PRIVACY_ERASE, owner_id=f.owner_id, unit_path=f.unit_path):
        raise PermissionDenied(Action.PRIVACY_ERASE, f.file_no)
    if req.requested_by_id is not None and req.requested_by_id == actor.user_id:
        raise InvalidInput({"decision": "A request is decided by a leader other than the one who made it."})
    if req.status != "pending":
        raise InvalidInput({"decision": "This request was already decided."})
    return req, f


def erase_customer(s: Session, actor: Actor, f: CustomerFile, request_id: int | None = None) -> None:
    """Destroy the customer's key and everything that would still name them; audited."""
    had_key = subject_keys.destroy(s, f.id)
    shred_remains(s, f, clock.now())
    audit.record(s, actor, "privacy.erase", object_type="customer", object_id=f.file_no,
                 fields=PERSONAL_FIELDS,
                 detail=(f"request {request_id} " if request_id else "")
                 + ("customer key destroyed" if had_key else "fields deleted (no own key yet)"))


def shred_remains(s: Session, f: CustomerFile, erased_at: datetime) -> None:
    """What an erasure does besides destroying the key: the blind indexes, values still under a
    ring key, the PIN hash, open correction requests; the file is marked erased. Also used when
    a backup made before an erasure is restored (backup/customer_keys.py)."""
    values: dict[str, object] = {c: None for c in BLIND_INDEXES}
    # A field still under a ring key (a file not yet moved to its own key) has no key of its
    # own to destroy: the value itself is deleted.
    for c in PERSONAL_FIELDS:
        blob = getattr(f, f"{c}_ct")
        if blob is not None and bytes(blob)[:1] != b"\x02":
            values[f"{c}_ct"] = None
    values.update(erased_at=erased_at, updated_at=clock.now())
    s.execute(update(CustomerFile).where(CustomerFile.id == f.id).values(**values))
    s.execute(update(Membership).where(Membership.customer_id == f.id).values(pin_hash=None))
    s.expire(f)
    from .corrections import forget_unreadable  # wording under the destroyed key
    forget_unreadable(s, f.id)


def approve(s: Session, actor: Actor, request_id: int, note: str = "") -> ErasureRequest:
    req, f = _decidable(s, actor, request_id)
    if len((note or "").strip()) > 500:
        raise InvalidInput({"note": "At most 500 characters."})
    req.status, req.decided_by_id, req.decided_at = "approved", actor.user_id, clock.now()
    req.decision_note = (note or "").strip()
    s.flush()
    erase_customer(s, actor, f, req.id)
    return req


def refuse(s: Session, actor: Actor, request_id: int, note: str) -> ErasureRequest:
    req, f = _decidable(s, actor, request_id)
    note = (note or "").strip()
    if len(note) < 5:
        raise InvalidInput({"note": "Say why, in at least 5 characters."})
    req.status, req.decided_by_id, req.decided_at = "refused", actor.user_id, clock.now()
    req.decision_note = note[:500]
    s.flush()
    audit.record(s, actor, "privacy.erasure_refuse", object_type="customer", object_id=f.file_no,
                 reason=req.decision_note, detail=f"request {req.id}")
    return req


def _rows(s: Session, reqs: list[ErasureRequest]) -> list[ErasureRow]:
    ids = {r.requested_by_id for r in reqs} | {r.decided_by_id for r in reqs}
    names = dict(s.execute(select(User.id, User.username).where(User.id.in_(ids - {None}))).all()) if reqs else {}
    return [ErasureRow(r.id, r.customer_id, r.file_no, r.origin, r.reason,
                       names.get(r.requested_by_id, "retention" if r.origin == "retention" else "?"),
                       r.requested_at, r.status, names.get(r.decided_by_id, ""), r.decided_at) for r in reqs]


def queue(s: Session, actor: Actor, limit: int = 200) -> list[ErasureRow]:
    """Requests the leader may decide (scoped in SQL), pending first, then the latest decided."""
    reqs = list(s.scalars(select(ErasureRequest)
                          .join(CustomerFile, CustomerFile.id == ErasureRequest.customer_id)
                          .where(customer_scope(actor, Action.PRIVACY_ERASE))
                          .order_by((ErasureRequest.status == "pending").desc(), ErasureRequest.id.desc())
                          .limit(limit)))
    audit.record(s, actor, Action.PRIVACY_ERASE.value, object_type="list", object_id="erasure_requests",
                 detail=f"{len(reqs)} rows")
    return _rows(s, reqs)


def for_file(s: Session, customer_id: uuid.UUID) -> list[ErasureRow]:
    return _rows(s, list(s.scalars(select(ErasureRequest).where(ErasureRequest.customer_id == customer_id)
                                   .order_by(ErasureRequest.id.desc()))))
