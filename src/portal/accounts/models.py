"""Tables for staff accounts, sign-in attempts and server-side sessions."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from ..db import UTCDateTime


class Role(StrEnum):
    SALESPERSON = "salesperson"
    LEADER = "leader"
    CUSTOMER_SERVICE = "customer_service"
    AUDITOR = "auditor"
    ADMIN = "admin"


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    display_name: str = Field(default="", max_length=100)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=32)
    unit_id: int = Field(foreign_key="org_unit.id", index=True)
    locale: str | None = Field(default=None, max_length=8)
    timezone: str | None = Field(default=None, max_length=64)
    is_active: bool = True
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    disabled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Second factor (TOTP): the secret is encrypted like a personal field; the last step used
    # is kept so that a code cannot be replayed.
    totp_secret_ct: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    totp_enabled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    totp_last_step: int | None = None
    # Set-up and approval (accounts/setup.py, accounts/approvals.py): the user must choose a new
    # password at the next sign-in; the account may not sign in until a second person approves.
    must_change_password: bool = False
    awaiting_approval: bool = False


class LoginAttempt(SQLModel, table=True):
    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_username_at", "username", "at"),
        Index("ix_login_attempt_addr_at", "client_addr", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64)
    client_addr: str = Field(max_length=64)
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    success: bool = False


class WebSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its keyed hash is stored."""

    __tablename__ = "web_session"

    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    client_addr: str = Field(default="", max_length=64)
    # "full", or a step still owed before the portal opens: "mfa" (enter a code), "enrol" (set one up).
    stage: str = Field(default="full", max_length=8)
