"""Audit events (never updated or deleted; triggers enforce it) and the chain head."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from ..db import UTCDateTime


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_at_seq", "at", "seq"),  # 0022: was ix_audit_at (at)
        Index("ix_audit_actor", "actor_id", "seq"),
        Index("ix_audit_object", "object_id", "seq"),
        # The log's filters, newest first (migration 0022).
        Index("ix_audit_username", "actor_username", "seq"),
        Index("ix_audit_username_outcome", "actor_username", "outcome", "seq"),
        Index("ix_audit_action", "action", "seq"),
        Index("ix_audit_outcome", "outcome", "seq"),
    )

    # seq is assigned from audit_head under its lock: consecutive, so a deleted row shows as a gap.
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    actor_id: int | None = None
    actor_username: str = Field(default="", max_length=64)
    actor_role: str = Field(default="", max_length=32)
    action: str = Field(max_length=64)
    object_type: str = Field(default="", max_length=32)
    object_id: str = Field(default="", max_length=255)
    fields: str = Field(default="", max_length=255)
    outcome: str = Field(max_length=16)
    reason: str = Field(default="", max_length=500)
    detail: str = Field(default="", max_length=1000)
    grant_id: int | None = None
    client_addr: str = Field(default="", max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """One row: the last sequence number and hash. Locked to append, so the chain is one line."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default="0" * 64, max_length=64)


class AuditCheckpoint(SQLModel, table=True):
    """The head of the chain at some entry, signed with a key kept outside the database.

    A signed checkpoint at entry N proves the log once held N entries: cutting entries off
    the end (and resetting the head) no longer goes unnoticed.
    """

    __tablename__ = "audit_checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(index=True)
    head_hash: str = Field(max_length=64)
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    key_id: str = Field(max_length=16)
    signature: str = Field(max_length=200)
