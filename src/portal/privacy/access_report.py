"""The subject access report (PIPL arts. 44-45): for one customer, what the portal holds about
them and who accessed their file, when, why and under which role or grant.

A leader above the file or an auditor (the privacy officer's duty, see policy.csv) asks for it;
the audit entry is written before anything is decrypted. Other areas add their own records
(complaints, messages, ...) by appending a function to SECTIONS.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..audit import service as audit
from ..audit.models import AuditEvent
from ..customers import service as customers
from ..customers.models import CustomerFile
from ..membership.models import (
    CardAccount, MemberCard, Membership, PointsEntryRow, Purchase, StoredValueEntryRow,
)
from ..policy import Action
from ..vault import Vault
from . import corrections, erasure


@dataclass(frozen=True)
class Section:
    """A block of the report: a title and (label, value) rows, both plain text."""

    title: str
    rows: list[tuple[str, str]]


@dataclass
class AccessLine:
    at: datetime
    who: str
    role: str
    action: str
    outcome: str
    fields: str
    why: str
    grant_id: int | None


@dataclass
class AccessReport:
    card: customers.FileCard
    erased_at: datetime | None
    membership: list[tuple[str, str]] = field(default_factory=list)
    ledgers: list[tuple[str, str]] = field(default_factory=list)
    corrections: list = field(default_factory=list)
    erasures: list = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    accesses: list[AccessLine] = field(default_factory=list)
    accesses_total: int = 0


# Hooks for other areas' records about the person (e.g. complaints): each gets the session, the
# vault and the file, and returns a Section or None. Called after the report's audit entry.
SECTIONS: list[Callable[[Session, Vault, CustomerFile], Section | None]] = []

ACCESS_LIMIT = 500


def _membership(s: Session, f: CustomerFile) -> tuple[list, list, list[str]]:
    m = s.scalar(select(Membership).where(Membership.customer_id == f.id))
    if m is None:
        return [], [], []
    info = [("tier", m.tier), ("status", m.status), ("joined_on", m.joined_on.isoformat()),
            ("join_cause", m.join_cause),
            ("last_purchase_on", m.last_purchase_on.isoformat() if m.last_purchase_on else "")]
    accounts = list(s.scalars(select(CardAccount).where(CardAccount.membership_id == m.id)))
    ids = [a.id for a in accounts]
    cards = list(s.scalars(select(MemberCard.number).where(MemberCard.account_id.in_(ids)))) if ids else []
    info.append(("cards", ", ".join(cards)))
    ledgers = []
    if ids:
        pts = s.execute(select(func.count(), func.coalesce(func.sum(PointsEntryRow.points), 0))
                        .where(PointsEntryRow.account_id.in_(ids))).one()
        sv = s.execute(select(func.count(), func.coalesce(func.sum(StoredValueEntryRow.amount_fen), 0))
                       .where(StoredValueEntryRow.account_id.in_(ids))).one()
        ledgers += [("points_entries", str(pts[0])), ("points_balance", str(pts[1])),
                    ("stored_value_entries", str(sv[0])), ("stored_value_fen", str(sv[1]))]
    pu = s.execute(select(func.count(), func.coalesce(func.sum(Purchase.paid_total_fen), 0))
                   .where(Purchase.customer_id == f.id)).one()
    ledgers += [("purchases", str(pu[0])), ("purchases_paid_fen", str(pu[1]))]
    return info, ledgers, cards


def build(s: Session, vault: Vault, actor: Actor, file_id, purpose: str = "") -> AccessReport:
    """Authorise (leader above the file, or auditor), audit, then gather and decrypt."""
    purpose = (purpose or "").strip()[:500]
    card = customers.view_file(s, vault, actor, file_id, action=Action.PRIVACY_REPORT,
                               purpose=purpose or "subject access report")
    f = s.get(CustomerFile, card.id)
    info, ledgers, cards = _membership(s, f)
    report = AccessReport(card=card, erased_at=f.erased_at, membership=info, ledgers=ledgers,
                          corrections=corrections.for_file(s, vault, f.id),
                          erasures=erasure.for_file(s, f.id))
    for hook in SECTIONS:
        section = hook(s, vault, f)
        if section is not None:
            report.sections.append(section)
    objects = [f.file_no, *cards]
    where = AuditEvent.object_id.in_(objects)
    report.accesses_total = s.scalar(select(func.count()).select_from(AuditEvent).where(where)) or 0
    for ev in s.scalars(select(AuditEvent).where(where).order_by(AuditEvent.seq.desc()).limit(ACCESS_LIMIT)):
        report.accesses.append(AccessLine(ev.at, ev.actor_username, ev.actor_role, ev.action, ev.outcome,
                                          ev.fields, ev.reason or ev.detail, ev.grant_id))
    return report

