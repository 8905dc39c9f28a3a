"""Recording and listing penalties: a leader above the person decides, never on themselves.

The evidence must exist: an export record (e.g. found by tracing a leaked CSV at /audit/trace) or
an audit entry. Auditors and the leaders above the person see the records; every record and
every list is audited. The amounts are the programme settings' (seed 000: ¥5,000 for each leak).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..audit.models import AuditEvent
from ..customers.service import InvalidInput
from ..exports.models import ExportRecord
from ..org.models import OrgUnit
from ..policy import Action, PermissionDenied, can, customer_scope
from .models import Penalty

KINDS = ("leak", "resale")
EVIDENCE_TYPES = ("export", "audit")
RESALE_MEASURES = "wages, bonuses and benefits withheld; legal responsibility pursued"


@dataclass(frozen=True)
class PenaltyRow:
    id: int
    person: str
    kind: str
    amount_fen: int
    measures: str
    evidence_type: str
    evidence_id: str
    reason: str
    recorded_by: str
    recorded_at: datetime


def _evidence_exists(s: Session, evidence_type: str, evidence_id: str) -> bool:
    if not evidence_id.isascii() or not evidence_id.isdigit() or len(evidence_id) > 18:
        return False
    if evidence_type == "export":
        return s.get(ExportRecord, int(evidence_id)) is not None
    return s.get(AuditEvent, int(evidence_id)) is not None


def record_penalty(s: Session, actor: Actor, *, username: str, kind: str, evidence_type: str,
                   evidence_id: str, reason: str, leak_fine_fen: int) -> Penalty:
    """A leader records a penalty against ``username``; InvalidInput names every bad field."""
    errors: dict[str, str] = {}
    person = s.scalar(select(User).where(User.username == (username or "").strip()))
    unit = s.get(OrgUnit, person.unit_id) if person is not None else None
    if person is None or unit is None:
        errors["username"] = "No such member of staff."
    elif person.id == actor.user_id:
        errors["username"] = "A penalty on yourself is recorded by a leader above you."
    elif not can(actor, Action.PENALTY_RECORD, owner_id=person.id, unit_path=unit.path):
        # Outside the leader's units: refused like any other object out of reach.
        raise PermissionDenied(Action.PENALTY_RECORD, person.username)
    if kind not in KINDS:
        errors["kind"] = "Choose leak or resale."
    evidence_id = (evidence_id or "").strip()
    if evidence_type not in EVIDENCE_TYPES:
        errors["evidence_type"] = "Choose an export or an audit entry as evidence."
    elif not _evidence_exists(s, evidence_type, evidence_id):
        errors["evidence_id"] = "No such export or audit entry."
    reason = (reason or "").strip()
    if len(reason) < 10:
        errors["reason"] = "Describe what happened in at least 10 characters."
    elif len(reason) > 500:
        errors["reason"] = "At most 500 characters."
    if errors:
        raise InvalidInput(errors)
    penalty = Penalty(person_id=person.id, person_unit_path=unit.path, kind=kind,
                      amount_fen=leak_fine_fen if kind == "leak" else 0,
                      measures="" if kind == "leak" else RESALE_MEASURES,
                      evidence_type=evidence_type, evidence_id=evidence_id, reason=reason,
                      recorded_by_id=actor.user_id, recorded_at=clock.now())
    s.add(penalty)
    s.flush()
    audit.record(s, actor, Action.PENALTY_RECORD.value, object_type="user", object_id=person.username,
                 reason=reason, detail=f"penalty {penalty.id} {kind} {penalty.amount_fen} fen, "
                                       f"evidence {evidence_type} {evidence_id}")
    return penalty


def list_penalties(s: Session, actor: Actor, limit: int = 200) -> list[PenaltyRow]:
    """The penalties the actor may see (scoped in SQL by the policy), newest first; audited."""
    q = (select(Penalty).where(customer_scope(actor, Action.PENALTY_VIEW, owner=Penalty.person_id,
                                              unit_path=Penalty.person_unit_path, file_id=Penalty.id))
         .order_by(Penalty.id.desc()).limit(limit))
    rows = list(s.scalars(q))
    names = {u.id: u.username for u in s.scalars(select(User).where(
        User.id.in_({r.person_id for r in rows} | {r.recorded_by_id for r in rows})))} if rows else {}
    audit.record(s, actor, Action.PENALTY_VIEW.value, object_type="list", object_id="penalties",
                 detail=f"{len(rows)} rows")
    return [PenaltyRow(r.id, names.get(r.person_id, "?"), r.kind, r.amount_fen, r.measures, r.evidence_type,
                       r.evidence_id, r.reason, names.get(r.recorded_by_id, "?"), r.recorded_at) for r in rows]
