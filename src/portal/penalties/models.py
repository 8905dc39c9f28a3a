"""A penalty recorded against a member of staff, with the audit evidence it rests on."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from ..db import PATH_TYPE, UTCDateTime


class Penalty(SQLModel, table=True):
    """Seed 000: a leak costs the person ¥5,000 each time; reselling customer resources withholds
    all wages, bonuses and benefits and pursues legal responsibility. Never edited: a correction
    is a new record that says so."""

    __tablename__ = "penalty"
    __table_args__ = (Index("ix_penalty_person_unit", "person_unit_path", "id"),
                      Index("ix_penalty_person", "person_id", "id"))

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="user_account.id")
    # The person's unit when the penalty was recorded: leaders above it see the record.
    person_unit_path: str = Field(sa_type=PATH_TYPE)
    kind: str = Field(max_length=16)            # leak | resale
    amount_fen: int = 0                         # the fine (leak); 0 for resale
    measures: str = Field(default="", max_length=200)
    evidence_type: str = Field(max_length=16)   # export | audit
    evidence_id: str = Field(max_length=64)     # an export's id or an audit entry's sequence number
    reason: str = Field(max_length=500)
    recorded_by_id: int = Field(foreign_key="user_account.id")
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
