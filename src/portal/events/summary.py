"""The post-event summary (seed 001, 活動總結): attendance, satisfaction, cost against budget and
the attendees' sales in the 30 days after. Figures only, counted in SQL; no personal data, and
sales of fewer than ``rules.MIN_GROUP`` buyers are not shown (they would single a member out).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..audit import service as audit
from ..membership.models import Purchase
from ..policy import Action, PermissionDenied, can
from . import rules
from .models import Event, EventInvitation, EventRegistration
from .planning import get_event


@dataclass(frozen=True)
class EventSummary:
    event_id: int
    invited: int
    registered: int        # holding a place now (registered or attended)
    attended: int
    no_shows: int          # registered, never checked in
    waitlisted: int
    cancelled: int
    attendance_pct: int | None     # attended per place held, percent
    responses: int
    satisfaction_avg: float | None
    satisfaction_counts: dict[int, int]
    budget_fen: int
    actual_cost_fen: int | None
    cost_diff_fen: int | None      # actual - budget (negative: under budget)
    points_credited: int
    sales_from: object
    sales_to: object
    buyers: int | None             # None: fewer than MIN_GROUP buyers, not shown
    purchases: int | None
    sales_fen: int | None


def event_summary(s: Session, actor: Actor, event_id: int) -> EventSummary:
    ev = get_event(s, actor, event_id)
    if not can(actor, Action.EVENT_SUMMARY, owner_id=0, unit_path=ev.unit_path):
        raise PermissionDenied(Action.EVENT_SUMMARY, f"event {event_id}")
    summary = compute(s, ev)
    audit.record(s, actor, Action.EVENT_SUMMARY.value, object_type="event", object_id=str(ev.id),
                 detail=f"attended {summary.attended} of {summary.registered}")
    return summary


def compute(s: Session, ev: Event) -> EventSummary:
    by_status = dict(s.execute(select(EventRegistration.status, func.count()).where(
        EventRegistration.event_id == ev.id).group_by(EventRegistration.status)).all())
    attended = int(by_status.get("attended", 0))
    registered = int(by_status.get("registered", 0))
    invited = int(s.scalar(select(func.count()).select_from(EventInvitation)
                           .where(EventInvitation.event_id == ev.id)) or 0)
    scores = dict(s.execute(select(EventRegistration.satisfaction, func.count()).where(
        EventRegistration.event_id == ev.id, EventRegistration.satisfaction.is_not(None))
        .group_by(EventRegistration.satisfaction)).all())
    responses = sum(scores.values())
    avg = round(sum(k * v for k, v in scores.items()) / responses, 1) if responses else None
    points = int(s.scalar(select(func.coalesce(func.sum(EventRegistration.points_credited), 0))
                          .where(EventRegistration.event_id == ev.id)) or 0)
    first, last = rules.sales_window(ev.starts_at)
    attendees = select(EventRegistration.membership_id).where(EventRegistration.event_id == ev.id,
                                                              EventRegistration.status == "attended")
    buyers, n, fen = s.execute(select(func.count(func.distinct(Purchase.membership_id)), func.count(Purchase.id),
                                      func.coalesce(func.sum(Purchase.paid_total_fen), 0))
                               .where(Purchase.membership_id.in_(attendees), Purchase.status == "complete",
                                      Purchase.purchased_on >= first, Purchase.purchased_on <= last)).one()
    shown = int(buyers) >= rules.MIN_GROUP
    held = attended + registered
    return EventSummary(
        event_id=ev.id, invited=invited, registered=held, attended=attended,
        no_shows=registered if rules.local_day(ev.ends_at) < rules.local_day(clock.now()) else 0,
        waitlisted=int(by_status.get("waitlisted", 0)), cancelled=int(by_status.get("cancelled", 0)),
        attendance_pct=round(100 * attended / held) if held else None, responses=responses,
        satisfaction_avg=avg, satisfaction_counts={k: int(scores.get(k, 0)) for k in range(1, 6)},
        budget_fen=ev.budget_fen, actual_cost_fen=ev.actual_cost_fen,
        cost_diff_fen=None if ev.actual_cost_fen is None else ev.actual_cost_fen - ev.budget_fen,
        points_credited=points, sales_from=first, sales_to=last,
        buyers=int(buyers) if shown else None, purchases=int(n) if shown else None,
        sales_fen=int(fen) if shown else None)

