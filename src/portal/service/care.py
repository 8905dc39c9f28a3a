"""Care records: benefits and gifts given to a member (seed 002's dental clinic: free care
packages, silver 1, gold 2, platinum 4 a year; seed 001: a birthday gift), recorded against the
member and the programme year so that nobody gets more than the tier allows. The check and the
record run under the member's lock (PostgreSQL advisory lock; SQLite's single writer), so two
people giving at the same moment cannot both pass it. Leaders see what was given in their units.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import clock, locks
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..customers.service import InvalidInput
from ..membership.rules import programme_today
from ..policy import Action, customer_scope
from ..vault import Vault
from . import members
from .models import CareRecord
from .settings import BENEFITS, current

TABLE = "care_record"


class AllowanceUsed(InvalidInput):
    """The tier's allowance of this benefit for the year is used up."""


def given_count(s: Session, customer_id: uuid.UUID, benefit: str, year: int) -> int:
    return s.scalar(select(func.count()).select_from(CareRecord).where(
        CareRecord.customer_id == customer_id, CareRecord.benefit == benefit, CareRecord.year == year)) or 0


def give(s: Session, vault: Vault, actor: Actor, file_id, benefit: str, note: str = "", *,
         today: date | None = None) -> CareRecord:
    """Give one ``benefit`` to the member now; refused beyond the tier's yearly allowance."""
    today = today or programme_today()
    ref = members.by_id(s, actor, file_id, Action.CARE_RECORD)
    errors: dict[str, str] = {}
    if benefit not in BENEFITS:
        errors["benefit"] = "Choose a benefit."
    note = members.text_field({"note": note}, "note", errors, required=False, limit=100)
    if not ref.tier:
        errors["benefit"] = "Only members receive tier benefits."
    if errors:
        raise InvalidInput(errors)
    locks.hold(s, "care", str(ref.customer_id))
    allowance = current(s).allowance(benefit, ref.tier)
    if given_count(s, ref.customer_id, benefit, today.year) >= allowance:
        raise AllowanceUsed({"benefit": "The tier's allowance of this benefit for this year is used up."})
    r = CareRecord(customer_id=ref.customer_id, year=today.year, benefit=benefit, tier=ref.tier, given_on=today,
                   given_by_id=actor.user_id, created_at=clock.now())
    s.add(r)
    s.flush()
    r.note_ct = members.seal(vault, TABLE, "note", r.id, note)
    s.flush()
    audit.record(s, actor, Action.CARE_RECORD.value, object_type="customer", object_id=ref.file_no,
                 detail=f"{benefit} {today.year} ({ref.tier})")
    return r


def record_refusal(s: Session, actor: Actor, file_id, benefit: str) -> None:
    """Audit a benefit refused for a used-up allowance (in its own transaction: the refused one
    rolled back)."""
    ref = members.by_id(s, actor, file_id, Action.CARE_RECORD)
    audit.record(s, actor, Action.CARE_RECORD.value, audit.DENIED, object_type="customer", object_id=ref.file_no,
                 reason="allowance used", detail=f"{benefit[:32]} ({ref.tier})")


@dataclass
class Allowance:
    benefit: str
    allowed: int
    given: int

    @property
    def left(self) -> int:
        return max(self.allowed - self.given, 0)


def allowances(s: Session, customer_id: uuid.UUID, tier: str, year: int) -> list[Allowance]:
    st = current(s)
    given = dict(s.execute(select(CareRecord.benefit, func.count()).where(
        CareRecord.customer_id == customer_id, CareRecord.year == year).group_by(CareRecord.benefit)).all())
    return [Allowance(b, st.allowance(b, tier) if tier else 0, given.get(b, 0)) for b in BENEFITS]


@dataclass
class CareRow:
    id: int
    file_no: str
    customer_id: uuid.UUID
    benefit: str
    tier: str
    given_on: date
    by: str
    note: str = ""


def records_of(s: Session, vault: Vault, customer_id: uuid.UUID, limit: int = 50) -> list[CareRow]:
    rows = list(s.execute(select(CareRecord, CustomerFile.file_no).join(CustomerFile, CustomerFile.id == CareRecord.customer_id)
                          .where(CareRecord.customer_id == customer_id).order_by(CareRecord.id.desc()).limit(limit)))
    names = dict(s.execute(select(User.id, User.username).where(User.id.in_({r.given_by_id for r, _ in rows}))).all())
    return [CareRow(r.id, no, r.customer_id, r.benefit, r.tier, r.given_on, names.get(r.given_by_id, "?"),
                    members.unseal(vault, TABLE, "note", r.id, r.note_ct)) for r, no in rows]


@dataclass
class CareSummary:
    year: int
    by_benefit_tier: dict[tuple[str, str], int]
    recent: list[CareRow]


def given_in_scope(s: Session, actor: Actor, year: int, limit: int = 100) -> CareSummary:
    """What was given this year in the actor's scope: counts per benefit and tier, and the latest
    records (file numbers, no personal data). Audited."""
    scope = customer_scope(actor, Action.CARE_VIEW)
    counts = {(b, t): n for b, t, n in s.execute(
        select(CareRecord.benefit, CareRecord.tier, func.count()).join(CustomerFile, CustomerFile.id == CareRecord.customer_id)
        .where(scope, CareRecord.year == year).group_by(CareRecord.benefit, CareRecord.tier))}
    rows = list(s.execute(select(CareRecord, CustomerFile.file_no).join(CustomerFile, CustomerFile.id == CareRecord.customer_id)
                          .where(scope, CareRecord.year == year).order_by(CareRecord.id.desc()).limit(limit)))
    names = dict(s.execute(select(User.id, User.username).where(User.id.in_({r.given_by_id for r, _ in rows}))).all())
    audit.record(s, actor, Action.CARE_VIEW.value, object_type="list", object_id="care_records",
                 detail=f"{year}: {len(rows)} rows")
    return CareSummary(year, counts, [CareRow(r.id, no, r.customer_id, r.benefit, r.tier, r.given_on,
                                              names.get(r.given_by_id, "?")) for r, no in rows])
