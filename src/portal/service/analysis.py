"""The member-service analysis (seed 001 六.2 投訴記錄與分析): complaints by type, cause, channel, unit
and month, time to resolve, satisfaction and reopen rates, visits' satisfaction and the survey's
answers. Every figure is a GROUP BY in SQL within the policy's scope; no personal data; a group
of fewer than MIN_GROUP complaints (or answers) is shown as "fewer than 3", never as its count,
so that no figure singles out a member.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..org.models import OrgUnit
from ..policy import Action, customer_scope
from .models import Complaint, ComplaintStep, MemberVisit, SurveyAnswer

MIN_GROUP = 3


def shown(n: int | None) -> int | None:
    """A count as the page may show it: None (fewer than MIN_GROUP) for a small group."""
    return None if n is None or n < MIN_GROUP else n


@dataclass
class Group:
    key: str
    count: int | None  # None: fewer than MIN_GROUP


@dataclass
class Analysis:
    total: int | None
    closed: int | None
    by_kind: list[Group] = field(default_factory=list)
    by_cause: list[Group] = field(default_factory=list)
    by_channel: list[Group] = field(default_factory=list)
    by_unit: list[Group] = field(default_factory=list)
    by_month: list[Group] = field(default_factory=list)
    avg_days_to_close: float | None = None
    satisfaction_rate: float | None = None  # satisfied answers / satisfaction answers
    reopen_rate: float | None = None  # complaints reopened at least once / complaints
    visits: int | None = None
    visit_satisfaction: float | None = None
    survey: list[tuple[str, int | None, float | None]] = field(default_factory=list)  # question, n, mean


def _groups(s: Session, scope, column) -> list[Group]:
    q = (select(column, func.count()).select_from(Complaint).join(CustomerFile, CustomerFile.id == Complaint.customer_id)
         .where(*scope).group_by(column).order_by(column))
    return [Group(str(k) if k is not None else "", shown(n)) for k, n in s.execute(q)]


def complaint_analysis(s: Session, actor: Actor, *, action: Action = Action.COMPLAINT_ANALYSIS,
                       complaints_where: tuple = (), visits_where: tuple = (), audit_it: bool = True) -> Analysis:
    """The analysis within ``action``'s scope. The reports area passes its own action and filters
    (conditions over Complaint / MemberVisit and CustomerFile: period, unit, tier, category) and
    audits the report view itself."""
    scope = (customer_scope(actor, action), *complaints_where)
    base = select(Complaint).join(CustomerFile, CustomerFile.id == Complaint.customer_id).where(*scope).subquery()
    total, closed, reopened, avg_days = s.execute(select(
        func.count(), func.sum(case((base.c.status == "closed", 1), else_=0)),
        func.sum(case((base.c.reopen_count > 0, 1), else_=0)), func.avg(base.c.days_to_close))).one()
    verdicts = dict(s.execute(select(ComplaintStep.detail, func.count()).select_from(ComplaintStep)
                              .join(Complaint, Complaint.id == ComplaintStep.complaint_id)
                              .join(CustomerFile, CustomerFile.id == Complaint.customer_id)
                              .where(*scope, ComplaintStep.step == "satisfaction").group_by(ComplaintStep.detail)).all())
    answered = sum(verdicts.values())
    unit = (select(OrgUnit.name, func.count()).select_from(Complaint)
            .join(CustomerFile, CustomerFile.id == Complaint.customer_id).join(OrgUnit, OrgUnit.id == CustomerFile.unit_id)
            .where(*scope).group_by(OrgUnit.name).order_by(OrgUnit.name))
    a = Analysis(total=shown(total), closed=shown(closed or 0),
                 by_kind=_groups(s, scope, Complaint.kind), by_cause=_groups(s, scope, Complaint.cause),
                 by_channel=_groups(s, scope, Complaint.channel),
                 by_unit=[Group(k, shown(n)) for k, n in s.execute(unit)],
                 by_month=_groups(s, scope, Complaint.recorded_month))
    if (closed or 0) >= MIN_GROUP and avg_days is not None:
        a.avg_days_to_close = round(float(avg_days), 1)
    if answered >= MIN_GROUP:
        a.satisfaction_rate = round(100 * verdicts.get("satisfied", 0) / answered, 1)
    if total >= MIN_GROUP:
        a.reopen_rate = round(100 * (reopened or 0) / total, 1)
    vscope = (customer_scope(actor, action), *visits_where)
    n, mean = s.execute(select(func.count(), func.avg(MemberVisit.satisfaction))
                        .join(CustomerFile, CustomerFile.id == MemberVisit.customer_id).where(*vscope)).one()
    a.visits = shown(n)
    if n >= MIN_GROUP and mean is not None:
        a.visit_satisfaction = round(float(mean), 2)
    for question, count, avg in s.execute(
            select(SurveyAnswer.question, func.count(), func.avg(SurveyAnswer.score))
            .join(MemberVisit, MemberVisit.id == SurveyAnswer.visit_id)
            .join(CustomerFile, CustomerFile.id == MemberVisit.customer_id)
            .where(*vscope).group_by(SurveyAnswer.question).order_by(SurveyAnswer.question)):
        a.survey.append((question, shown(count), round(float(avg), 2) if count >= MIN_GROUP else None))
    if audit_it:
        audit.record(s, actor, Action.COMPLAINT_ANALYSIS.value, object_type="report", object_id="member_service",
                     detail=f"{total} complaints, {n} visits in scope")
    return a
