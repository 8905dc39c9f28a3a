"""Consent records: one append-only row per decision (given or withdrawn) per member, channel and purpose."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from ..db import UTCDateTime


class ConsentRecord(SQLModel, table=True):
    """A member's consent to be contacted on ``channel`` for ``purpose``, given or withdrawn.

    Never updated or deleted (database triggers refuse it): the newest row per (customer,
    channel, purpose) is the consent in force, and the rows before it are its history. What
    the row holds is not personal data: which data items were collected (``collected``: names
    of fields, never their values), the purpose, how and when, and who recorded it.
    """

    __tablename__ = "consent_record"
    __table_args__ = (Index("ix_consent_customer", "customer_id", "channel", "purpose", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer_file.id")
    channel: str = Field(max_length=16)   # email | sms
    purpose: str = Field(max_length=16)   # service | marketing
    given: bool
    method: str = Field(max_length=16)    # paper_form | verbal | phone | online | sms_reply | email_link
    collected: str = Field(default="", max_length=200)  # e.g. "mobile,email,birthday"
    note: str = Field(default="", max_length=500)
    recorded_by_id: int | None = Field(default=None, foreign_key="user_account.id")  # None: the member
    message_id: int | None = Field(default=None)  # the message whose opt-out recorded it
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
