"""Sent monthly unit reports: the figures frozen when a leader sent them upward, with the sender
and a SHA-256 of the frozen body (also written to the hash-chained audit log)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import PATH_TYPE, UTCDateTime


class SentMonthlyReport(SQLModel, table=True):
    __tablename__ = "sent_monthly_report"
    __table_args__ = (
        UniqueConstraint("unit_id", "month", name="uq_sent_monthly_report_unit_month"),
        Index("ix_sent_monthly_report_unitpath", "unit_path", "month"),
    )

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="org_unit.id")
    unit_path: str = Field(sa_type=PATH_TYPE)      # leaders above read it: a prefix of their path
    month: str = Field(max_length=7)               # YYYY-MM
    body: str = Field(sa_column=Column(Text, nullable=False))  # the frozen figures as canonical JSON
    sha256: str = Field(max_length=64)
    sent_by_id: int = Field(foreign_key="user_account.id")
    sent_by_username: str = Field(max_length=64)
    sent_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
