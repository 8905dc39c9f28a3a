"""Member-service tables: complaints and their step history, visits and survey answers, care
records, and the versioned member-service settings.

Free text written about a member (a complaint's content, a finding, a reply, a visit's outcome,
a care note) is personal data: ciphertext (``*_ct``, sealed with table, column and row id).
A complaint's steps are a history: the database refuses to delete them or to change anything
but their ciphertext (which key rotation re-seals).
"""
from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel

from ..db import UTCDateTime


def _ts(nullable: bool = False) -> Column:
    return Column(UTCDateTime, nullable=nullable)


def _blob() -> Column:
    return Column(LargeBinary, nullable=True)


class ServiceSettingsVersion(SQLModel, table=True):
    """One version of the member-service settings (visit schedule per tier, large-purchase
    threshold, survey questions, care allowances), in force from ``effective_from``."""

    __tablename__ = "service_settings_version"

    id: int | None = Field(default=None, primary_key=True)
    effective_from: date = Field(unique=True)
    body: str = Field(sa_column=Column(Text, nullable=False))  # ServiceSettings as JSON
    note: str = Field(default="", max_length=500)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())


class Complaint(SQLModel, table=True):
    """A member's complaint (投诉) and where it stands: recorded -> investigated -> proposed ->
    told -> closed (satisfied), or reopened (not satisfied) and investigated again."""

    __tablename__ = "complaint"
    __table_args__ = (Index("ix_complaint_status_promised", "status", "promised_on"),
                      Index("ix_complaint_customer", "customer_id", "id"),
                      Index("ix_complaint_month", "recorded_month"),
                      Index("ix_complaint_recorded_at", "recorded_at"))  # reports: a period's complaints

    id: int | None = Field(default=None, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer_file.id")
    channel: str = Field(max_length=16)
    kind: str = Field(max_length=16)
    content_ct: bytes | None = Field(default=None, sa_column=_blob())
    promised_on: date
    status: str = Field(default="recorded", max_length=16)
    cause: str | None = Field(default=None, max_length=16)  # the latest investigation's
    responsible: str = Field(default="", max_length=100)
    passed_to: str = Field(default="", max_length=100)
    reopen_count: int = 0
    recorded_month: str = Field(max_length=7)  # YYYY-MM (Asia/Shanghai), for the analysis
    recorded_by_id: int = Field(foreign_key="user_account.id")
    recorded_at: datetime = Field(sa_column=_ts())
    closed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    days_to_close: int | None = None
    updated_at: datetime = Field(sa_column=_ts())


class ComplaintStep(SQLModel, table=True):
    """One step of a complaint, who took it and when (append-only)."""

    __tablename__ = "complaint_step"
    __table_args__ = (Index("ix_complaint_step_complaint", "complaint_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    complaint_id: int = Field(foreign_key="complaint.id")
    step: str = Field(max_length=16)  # recorded investigated proposed told satisfaction closed reopened
    detail: str = Field(default="", max_length=200)  # plain: cause, verdict, passed to, how told
    note_ct: bytes | None = Field(default=None, sa_column=_blob())  # finding, resolution, reply, note
    by_id: int = Field(foreign_key="user_account.id")
    at: datetime = Field(sa_column=_ts())


class MemberVisit(SQLModel, table=True):
    """A follow-up visit (回访) done: why (schedule, complaint, purchase), how, what came of it."""

    __tablename__ = "member_visit"
    __table_args__ = (Index("ix_member_visit_customer", "customer_id", "visited_on"),
                      Index("ix_member_visit_on", "visited_on"),  # reports: a period's visits
                      CheckConstraint("satisfaction BETWEEN 1 AND 5", name="ck_member_visit_satisfaction"))

    id: int | None = Field(default=None, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer_file.id")
    kind: str = Field(max_length=16)    # phone | survey | interview
    reason: str = Field(max_length=16)  # schedule | complaint | purchase
    complaint_id: int | None = Field(default=None, foreign_key="complaint.id", index=True)
    purchase_id: int | None = Field(default=None, foreign_key="purchase.id", index=True)
    visited_on: date
    satisfaction: int
    outcome_ct: bytes | None = Field(default=None, sa_column=_blob())
    issues_ct: bytes | None = Field(default=None, sa_column=_blob())
    passed_to: str = Field(default="", max_length=100)
    answer_ct: bytes | None = Field(default=None, sa_column=_blob())  # the answer to the issues
    answered_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    answered_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    recorded_by_id: int = Field(foreign_key="user_account.id")
    recorded_at: datetime = Field(sa_column=_ts())


class SurveyAnswer(SQLModel, table=True):
    """One answer (score 1-5) to a survey question asked on a visit; the question as asked."""

    __tablename__ = "survey_answer"
    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="ck_survey_answer_score"),)

    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(foreign_key="member_visit.id", index=True)
    question_no: int
    question: str = Field(max_length=200)
    score: int


class CareRecord(SQLModel, table=True):
    """A benefit or gift given to a member (care package, birthday gift) in a programme year."""

    __tablename__ = "care_record"
    __table_args__ = (Index("ix_care_record_customer_year", "customer_id", "year", "benefit"),
                      Index("ix_care_record_year", "year", "benefit"))

    id: int | None = Field(default=None, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer_file.id")
    year: int
    benefit: str = Field(max_length=32)
    tier: str = Field(max_length=16)  # the member's tier when it was given
    given_on: date
    note_ct: bytes | None = Field(default=None, sa_column=_blob())
    given_by_id: int = Field(foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())
