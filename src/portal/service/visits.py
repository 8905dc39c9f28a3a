"""Follow-up visits (回访, seed 001 六.1) and the short satisfaction survey.

What is due is computed in SQL, never stored ahead: a member is due a scheduled visit when their
tier's interval (a leader's setting) has passed since their last visit (or since joining); a
closed complaint with no visit yet, and a purchase at or above the large-purchase threshold
(within the last LOOKBACK_DAYS) with no visit yet, are due ``follow_up_days`` after. Recording a
visit (outcome, satisfaction 1-5, issues raised and to whom they were passed, the survey's
answers) clears what it answers; an answer to the issues goes back onto the member's record.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import and_, exists, false, func, or_, select
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..customers.service import InvalidInput, NotFound
from ..membership.models import Membership, Purchase
from ..membership.rules import PROGRAMME_TZ, programme_today
from ..policy import Action, customer_scope
from ..policy.scope import member_scope
from ..vault import Vault
from . import members
from .models import Complaint, MemberVisit, SurveyAnswer
from .settings import ServiceSettings, current

TABLE = "member_visit"
KINDS = ("phone", "survey", "interview")
REASONS = ("schedule", "complaint", "purchase")
LOOKBACK_DAYS = 90  # large purchases older than this no longer make a visit due


@dataclass(frozen=True)
class DueVisit:
    customer_id: uuid.UUID
    file_no: str
    tier: str
    reason: str
    ref: int | None  # the complaint's or the purchase's id
    due_on: date


def _midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time(), PROGRAMME_TZ).astimezone(timezone.utc)


def _last_visit():
    return (select(func.max(MemberVisit.visited_on)).where(MemberVisit.customer_id == Membership.customer_id)
            .correlate(Membership).scalar_subquery())


def _scheduled(actor: Actor, st: ServiceSettings, until: date):
    base = func.coalesce(_last_visit(), Membership.joined_on)
    arms = [and_(Membership.tier == t, base <= until - timedelta(days=d))
            for t, d in st.visit_every_days.items() if d > 0]
    return (select(Membership.customer_id, CustomerFile.file_no, Membership.tier, base.label("base"))
            .join(CustomerFile, CustomerFile.id == Membership.customer_id)
            .where(member_scope(actor, Action.VISIT_VIEW), Membership.status == "active", or_(*arms) if arms else false()))


def _after_complaints(actor: Actor, st: ServiceSettings, until: date):
    return (select(Complaint.customer_id, CustomerFile.file_no, Membership.tier, Complaint.id, Complaint.closed_at)
            .join(CustomerFile, CustomerFile.id == Complaint.customer_id)
            .outerjoin(Membership, Membership.customer_id == Complaint.customer_id)
            .where(customer_scope(actor, Action.VISIT_VIEW), Complaint.status == "closed",
                   Complaint.closed_at < _midnight_utc(until - timedelta(days=st.follow_up_days - 1)),
                   ~exists().where(MemberVisit.complaint_id == Complaint.id)))


def _after_purchases(actor: Actor, st: ServiceSettings, today: date, until: date):
    return (select(Purchase.customer_id, CustomerFile.file_no, Membership.tier, Purchase.id, Purchase.purchased_on)
            .join(CustomerFile, CustomerFile.id == Purchase.customer_id)
            .outerjoin(Membership, Membership.customer_id == Purchase.customer_id)
            .where(customer_scope(actor, Action.VISIT_VIEW), Purchase.status == "complete",
                   Purchase.paid_total_fen >= st.large_purchase_fen,
                   Purchase.purchased_on >= today - timedelta(days=LOOKBACK_DAYS),
                   Purchase.purchased_on <= until - timedelta(days=st.follow_up_days),
                   ~exists().where(MemberVisit.purchase_id == Purchase.id)))


def due_visits(s: Session, actor: Actor, *, today: date | None = None, ahead_days: int = 14,
               customer_id: uuid.UUID | None = None, limit: int = 300) -> list[DueVisit]:
    """Visits due by ``today + ahead_days`` in the actor's scope, earliest first. Audited."""
    today = today or programme_today()
    st = current(s)
    until = today + timedelta(days=ahead_days)
    qs = [_scheduled(actor, st, until), _after_complaints(actor, st, until), _after_purchases(actor, st, today, until)]
    if customer_id is not None:
        qs = [qs[0].where(Membership.customer_id == customer_id), qs[1].where(Complaint.customer_id == customer_id),
              qs[2].where(Purchase.customer_id == customer_id)]
    out: list[DueVisit] = []
    for cid, file_no, tier, base in s.execute(qs[0].limit(limit)):
        out.append(DueVisit(cid, file_no, tier, "schedule", None, base + timedelta(days=st.visit_every_days[tier])))
    for cid, file_no, tier, ref, closed_at in s.execute(qs[1].limit(limit)):
        closed_on = closed_at.astimezone(PROGRAMME_TZ).date()
        out.append(DueVisit(cid, file_no, tier or "", "complaint", ref, closed_on + timedelta(days=st.follow_up_days)))
    for cid, file_no, tier, ref, on in s.execute(qs[2].limit(limit)):
        out.append(DueVisit(cid, file_no, tier or "", "purchase", ref, on + timedelta(days=st.follow_up_days)))
    out.sort(key=lambda v: (v.due_on, v.file_no))
    if customer_id is None:
        audit.record(s, actor, Action.VISIT_VIEW.value, object_type="list", object_id="due_visits",
                     detail=f"{len(out)} rows")
    return out[:limit]


def due_count(s: Session, actor: Actor, today: date) -> int:
    """How many visits are due today or earlier (the home page's figure), in SQL."""
    st = current(s)
    qs = (_scheduled(actor, st, today), _after_complaints(actor, st, today), _after_purchases(actor, st, today, today))
    return sum(s.scalar(select(func.count()).select_from(q.subquery())) or 0 for q in qs)


def _score(raw: str) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw in ("1", "2", "3", "4", "5") else None


def record_visit(s: Session, vault: Vault, actor: Actor, file_id, form: dict, *,
                 today: date | None = None) -> MemberVisit:
    """Record a visit done today (or on ``visited_on``, within the last 30 days)."""
    today = today or programme_today()
    ref = members.by_id(s, actor, file_id, Action.VISIT_RECORD)
    st = current(s)
    errors: dict[str, str] = {}
    kind = members.choice(form, "kind", KINDS, errors, "Choose phone, survey or interview.")
    reason = members.choice(form, "reason", REASONS, errors, "Choose why the visit was made.")
    raw_on = (form.get("visited_on") or "").strip()
    try:
        visited_on = date.fromisoformat(raw_on) if raw_on else today
        if not today - timedelta(days=30) <= visited_on <= today:
            raise ValueError
    except ValueError:
        errors["visited_on"] = "The visit's date is today or within the last 30 days (YYYY-MM-DD)."
        visited_on = today
    satisfaction = _score(form.get("satisfaction", ""))
    if satisfaction is None:
        errors["satisfaction"] = "Choose a satisfaction from 1 to 5."
    outcome = members.text_field(form, "outcome", errors)
    issues = members.text_field(form, "issues", errors, required=False)
    passed_to = members.text_field(form, "passed_to", errors, required=bool(issues), limit=100)
    complaint_id = purchase_id = None
    ref_raw = (form.get("ref") or "").strip()
    if reason in ("complaint", "purchase"):
        model = Complaint if reason == "complaint" else Purchase
        row = s.get(model, int(ref_raw)) if ref_raw.isascii() and ref_raw.isdigit() and len(ref_raw) < 12 else None
        if row is None or row.customer_id != ref.customer_id:
            errors["reason"] = "This complaint or purchase is not this member's."
        elif reason == "complaint":
            complaint_id = row.id
        else:
            purchase_id = row.id
    answers = []
    for n, question in enumerate(st.survey_questions, start=1):
        raw = (form.get(f"q{n}") or "").strip()
        if raw:
            score = _score(raw)
            if score is None:
                errors[f"q{n}"] = "Choose a score from 1 to 5."
            answers.append((n, question, score))
    if kind == "survey" and not answers and "kind" not in errors:
        errors["kind"] = "A survey visit records the survey's answers."
    if errors:
        raise InvalidInput(errors)
    v = MemberVisit(customer_id=ref.customer_id, kind=kind, reason=reason, complaint_id=complaint_id,
                    purchase_id=purchase_id, visited_on=visited_on, satisfaction=satisfaction,
                    passed_to=passed_to, recorded_by_id=actor.user_id, recorded_at=clock.now())
    s.add(v)
    s.flush()
    v.outcome_ct = members.seal(vault, TABLE, "outcome", v.id, outcome)
    v.issues_ct = members.seal(vault, TABLE, "issues", v.id, issues)
    for n, question, score in answers:
        s.add(SurveyAnswer(visit_id=v.id, question_no=n, question=question[:200], score=score))
    s.flush()
    audit.record(s, actor, Action.VISIT_RECORD.value, object_type="customer", object_id=ref.file_no,
                 fields=["outcome"] + (["issues"] if issues else []), detail=f"visit {v.id} {kind} {reason}")
    return v


def answer_issues(s: Session, vault: Vault, actor: Actor, visit_id: int, answer: str) -> MemberVisit:
    """The answer to the issues a visit raised, put back on the member's record."""
    v = s.get(MemberVisit, visit_id)
    if v is None:
        raise NotFound("no such visit")
    ref = members.by_id(s, actor, v.customer_id, Action.VISIT_RECORD)
    errors: dict[str, str] = {}
    answer = members.text_field({"answer": answer}, "answer", errors)
    if v.issues_ct is None:
        errors["answer"] = "This visit raised no issues."
    if errors:
        raise InvalidInput(errors)
    v.answer_ct = members.seal(vault, TABLE, "answer", v.id, answer)
    v.answered_at, v.answered_by_id = clock.now(), actor.user_id
    s.flush()
    audit.record(s, actor, Action.VISIT_RECORD.value, object_type="customer", object_id=ref.file_no,
                 fields=["answer"], detail=f"visit {v.id} issues answered")
    return v


@dataclass
class VisitView:
    id: int
    kind: str
    reason: str
    visited_on: date
    satisfaction: int
    outcome: str
    issues: str
    passed_to: str
    answer: str
    answered_at: datetime | None
    by: str


def visits_of(s: Session, vault: Vault, customer_id: uuid.UUID, limit: int = 50) -> list[VisitView]:
    """A member's visits, newest first (the caller has authorised and audited the read)."""
    rows = list(s.scalars(select(MemberVisit).where(MemberVisit.customer_id == customer_id)
                          .order_by(MemberVisit.visited_on.desc(), MemberVisit.id.desc()).limit(limit)))
    names = dict(s.execute(select(User.id, User.username).where(User.id.in_({r.recorded_by_id for r in rows}))).all())
    return [VisitView(v.id, v.kind, v.reason, v.visited_on, v.satisfaction,
                      members.unseal(vault, TABLE, "outcome", v.id, v.outcome_ct),
                      members.unseal(vault, TABLE, "issues", v.id, v.issues_ct), v.passed_to,
                      members.unseal(vault, TABLE, "answer", v.id, v.answer_ct), v.answered_at,
                      names.get(v.recorded_by_id, "?")) for v in rows]
