"""The member-service figures on the home pages: complaints overdue (and open, for customer
service) and visits due, each counted in SQL within the policy's scope (visits due up to
service.due.COUNT_CAP: the page shows "99+")."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..policy import Action, may_perform
from ..service import complaints, visits


@dataclass
class ServiceTiles:
    complaints_open: int | None = None
    complaints_overdue: int | None = None
    visits_due: int | None = None


def service_tiles(s: Session, actor: Actor, today: date) -> ServiceTiles:
    t = ServiceTiles()
    if may_perform(actor, Action.COMPLAINT_VIEW):
        t.complaints_open = complaints.open_count(s, actor)
        t.complaints_overdue = complaints.overdue_count(s, actor, today)
    if may_perform(actor, Action.VISIT_VIEW):
        t.visits_due = visits.due_count(s, actor, today)
    return t
