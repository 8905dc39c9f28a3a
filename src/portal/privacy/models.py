"""Privacy records: erasure requests, correction requests (linked to the edit that answered them),
and the versioned retention setting for lapsed members' data."""
from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from ..db import UTCDateTime


def _ts(nullable: bool = False) -> Column:
    return Column(UTCDateTime, nullable=nullable)


class ErasureRequest(SQLModel, table=True):
    """A request to erase a customer's personal data; a leader above the file (never the
    requester) approves it. `origin` says who asked: a member of staff, or the retention job."""

    __tablename__ = "erasure_request"
    __table_args__ = (Index("ix_erasure_status", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer_file.id", index=True)
    file_no: str = Field(max_length=16)
    origin: str = Field(default="request", max_length=16)  # request | retention
    reason: str = Field(max_length=500)
    requested_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    requested_at: datetime = Field(sa_column=_ts())
    status: str = Field(default="pending", max_length=16)  # pending | approved | refused
    decided_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    decided_at: datetime | None = Field(default=None, sa_column=_ts(True))
    decision_note: str = Field(default="", max_length=500)


class CorrectionRequest(SQLModel, table=True):
    """A person's request to correct a field of their file; answered by an edit, whose audit
    entry (`answer_seq`) it links to. The wording is personal data: sealed with the customer's
    own key, so erasure takes it too."""

    __tablename__ = "correction_request"
    __table_args__ = {"info": {"subject_key": "customer_id"}}

    id: int | None = Field(default=None, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer_file.id", index=True)
    field_name: str = Field(max_length=32)
    details_ct: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    requested_by_id: int = Field(foreign_key="user_account.id")
    requested_at: datetime = Field(sa_column=_ts())
    status: str = Field(default="open", max_length=16)  # open | answered | refused
    answered_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    answered_at: datetime | None = Field(default=None, sa_column=_ts(True))
    answer_seq: int | None = None  # the audit entry of the edit that answered it
    answer_note: str = Field(default="", max_length=500)


class RetentionVersion(SQLModel, table=True):
    """How long a lapsed member's data is kept, in force from a date (versioned, audited)."""

    __tablename__ = "retention_version"

    id: int | None = Field(default=None, primary_key=True)
    effective_from: date = Field(unique=True)
    lapsed_member_days: int
    note: str = Field(default="", max_length=500)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())
