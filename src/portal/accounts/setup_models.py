"""Tables for one-time set-up codes, reach changes awaiting a second approver, and password-help requests."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from ..db import UTCDateTime


class AccountSetup(SQLModel, table=True):
    """A one-time code with which a user chooses their own password (only its hash is kept)."""

    __tablename__ = "account_setup"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    code_hash: str = Field(max_length=64, unique=True)
    purpose: str = Field(max_length=16)  # "new" (a new account) | "reset" (an admin's reset)
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class AccountChange(SQLModel, table=True):
    """A change that gives a user reach over customer files, waiting for a second person.

    kind "create": a new account of a role that sees files; "change": a role or unit that
    raises the user's reach; "reset": an administrator's password reset of such an account.
    """

    __tablename__ = "account_change"
    __table_args__ = (Index("ix_account_change_status", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    kind: str = Field(max_length=16)
    old_role: str = Field(default="", max_length=32)
    old_unit_id: int | None = Field(default=None, foreign_key="org_unit.id")
    new_role: str = Field(max_length=32)
    new_unit_id: int = Field(foreign_key="org_unit.id")
    reason: str = Field(default="", max_length=500)
    requested_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    requested_by: str = Field(default="", max_length=64)
    requested_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # pending | approved | denied | superseded
    status: str = Field(default="pending", max_length=16)
    decided_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    note: str = Field(default="", max_length=500)


class PasswordHelp(SQLModel, table=True):
    """Someone at the sign-in page said they forgot their password (shown to administrators)."""

    __tablename__ = "password_help"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    client_addr: str = Field(default="", max_length=64, index=True)
    requested_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    resolved_by: str = Field(default="", max_length=64)
