"""Access requests and the grants they become. A grant is data: checked at decision time, never cached."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from ..db import PATH_TYPE, UTCDateTime


class AccessRequest(SQLModel, table=True):
    __tablename__ = "access_request"
    __table_args__ = (
        Index("ix_access_request_requester_file", "requester_id", "file_id", "expires_at"),
        Index("ix_access_request_file", "file_id", "status"),
        Index("ix_access_request_status_unitpath", "status", "unit_path"),
    )

    id: int | None = Field(default=None, primary_key=True)
    requester_id: int = Field(foreign_key="user_account.id")
    file_id: uuid.UUID = Field(foreign_key="customer_file.id")
    file_no: str = Field(max_length=16)
    # The file's unit path when asked, for the record only: decisions, revocations and the
    # approval queue read the file's unit as it is now (customer_file.unit_path).
    unit_path: str = Field(sa_type=PATH_TYPE)
    reason: str = Field(max_length=1000)
    scope: str = Field(max_length=16)  # "view" or "view_edit"
    hours_requested: int
    status: str = Field(default="pending", max_length=16)  # pending | approved | denied | cancelled
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    decided_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    decision_note: str = Field(default="", max_length=500)
    hours_granted: int | None = None
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    revoked_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    revoke_reason: str = Field(default="", max_length=500)
