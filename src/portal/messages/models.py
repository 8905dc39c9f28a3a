"""Messages to members: contact preferences, the outbox, and the versioned sending rules."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import UTCDateTime


def _ts(nullable: bool = False) -> Column:
    return Column(UTCDateTime, nullable=nullable)


def _blob() -> Column:
    return Column(LargeBinary, nullable=True)


class MemberContact(SQLModel, table=True):
    """How a member wants to hear from us: e-mail address (encrypted), language, preferred channel."""

    __tablename__ = "member_contact"

    customer_id: uuid.UUID = Field(foreign_key="customer_file.id", primary_key=True)
    email_ct: bytes | None = Field(default=None, sa_column=_blob())
    language: str = Field(default="zh_CN", max_length=8)  # zh_CN | en
    channel: str = Field(default="sms", max_length=16)     # sms | email
    updated_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    updated_at: datetime = Field(sa_column=_ts())


class OutboxMessage(SQLModel, table=True):
    """One message to one member on one channel, written in the transaction that caused it.

    ``context`` holds no personal data (card numbers, tiers, dates, points, ids); ``text_ct``
    any personal free text a caller passed. The address, subject and body are rendered when the
    message is claimed for sending and kept encrypted as what was sent.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (
        UniqueConstraint("customer_id", "kind", "reference", name="uq_outbox_occasion"),
        Index("ix_outbox_due", "status", "channel", "next_attempt_at", "id"),
        Index("ix_outbox_claimed", "channel", "claimed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer_file.id", index=True)
    kind: str = Field(max_length=32)
    purpose: str = Field(max_length=16)     # service | marketing
    channel: str = Field(max_length=16)     # sms | email
    language: str = Field(default="zh_CN", max_length=8)
    reference: str = Field(max_length=64)   # makes (customer, kind, reference) one occasion
    context: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    text_ct: bytes | None = Field(default=None, sa_column=_blob())
    address_ct: bytes | None = Field(default=None, sa_column=_blob())
    subject_ct: bytes | None = Field(default=None, sa_column=_blob())
    body_ct: bytes | None = Field(default=None, sa_column=_blob())
    batch_id: str | None = Field(default=None, max_length=40, index=True)
    # pending -> sending -> sent | pending (retry) | failed | suppressed (no consent, no address)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=_ts())
    claimed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    claim_token: str | None = Field(default=None, max_length=40)
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    provider_id: str = Field(default="", max_length=100)
    last_error: str = Field(default="", max_length=200)  # never personal data
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())


class MessageSettingsVersion(SQLModel, table=True):
    """One version of the sending rules (quiet hours, rate limits, retries), in force from a time."""

    __tablename__ = "message_settings_version"

    id: int | None = Field(default=None, primary_key=True)
    effective_from: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, unique=True))
    body: str = Field(sa_column=Column(Text, nullable=False))
    note: str = Field(default="", max_length=500)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())
