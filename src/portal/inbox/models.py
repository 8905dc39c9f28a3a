"""A notice in a user's inbox."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from ..db import UTCDateTime


class Notice(SQLModel, table=True):
    __tablename__ = "notice"
    __table_args__ = (Index("ix_notice_user_read", "user_id", "read_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    kind: str = Field(max_length=32)
    # Message id (English source text, translated when shown) and its parameters as JSON.
    message: str = Field(max_length=255)
    params: str = Field(default="{}", max_length=1000)
    link: str = Field(default="", max_length=255)
    read_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
