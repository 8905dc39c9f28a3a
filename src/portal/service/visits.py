"""Follow-up visits (回访, seed 001 六.1) and the short satisfaction survey.

What is due is read in SQL (service/due.py, re-exported here): a member is due a scheduled visit
when their tier's interval (a leader's setting) has passed since their last visit (or since
joining), the day kept on the membership (``visit_base_on``); a closed complaint with no visit
yet, and a purchase at or above the large-purchase threshold (within the last LOOKBACK_DAYS) with
no visit yet, are due ``follow_up_days`` after. Recording a visit (outcome, satisfaction 1-5,
issues raised and to whom they were passed, the survey's answers) clears what it answers and
moves the member's ``visit_base_on``; an answer to the issues goes back onto the member's record.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers.service import InvalidInput, NotFound
from ..membership.models import Membership, Purchase
from ..membership.rules import programme_today
from ..policy import Action
from ..vault import Vault
from . import members
from .due import LOOKBACK_DAYS, DueVisit, due_count, due_visits  # noqa: F401 (the due list lives there)
from .models import Complaint, MemberVisit, SurveyAnswer
from .settings import current

TABLE = "member_visit"
KINDS = ("phone", "survey", "interview")
REASONS = ("schedule", "complaint", "purchase")


def _move_visit_base(s: Session, customer_id: uuid.UUID) -> None:
    """The member's next scheduled visit counts from their latest visit (a visit may be recorded
    up to 30 days late, after a later one): in this transaction."""
    last = select(func.max(MemberVisit.visited_on)).where(MemberVisit.customer_id == customer_id).scalar_subquery()
    s.execute(update(Membership).where(Membership.customer_id == customer_id).values(visit_base_on=last)
              .execution_options(synchronize_session=False))
    for obj in list(s.identity_map.values()):  # a membership already loaded reads the new day
        if isinstance(obj, Membership) and obj.customer_id == customer_id:
            s.expire(obj, ["visit_base_on"])


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
    _move_visit_base(s, ref.customer_id)
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
