"""Tables of member events: a unit's yearly plan, its events, invitations and registrations.

An event belongs to a plan and copies the plan's unit (id and path) so lists are scoped by a
range on the path. Registrations name the member (``membership``); who may register or check a
member in is decided by the member's file (owner, unit), like every other membership step.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import PATH_TYPE, UTCDateTime


def _ts(nullable: bool = False) -> Column:
    return Column(UTCDateTime, nullable=nullable)


class EventPlan(SQLModel, table=True):
    """A leader's calendar of member events for one unit and one year, with its total budget."""

    __tablename__ = "event_plan"
    __table_args__ = (UniqueConstraint("unit_id", "year", name="uq_event_plan_unit_year"),
                      Index("ix_event_plan_unit_path", "unit_path", "year"),
                      CheckConstraint("budget_fen >= 0", name="ck_event_plan_budget"))

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="org_unit.id")
    unit_path: str = Field(sa_type=PATH_TYPE)
    year: int
    budget_fen: int = 0
    note: str = Field(default="", max_length=500)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())


class Event(SQLModel, table=True):
    """One member event of a plan. ``status``: planned | cancelled."""

    __tablename__ = "member_activity"
    __table_args__ = (Index("ix_member_activity_unit_path", "unit_path", "starts_at"),
                      Index("ix_member_activity_plan", "plan_id", "starts_at"),
                      CheckConstraint("capacity > 0", name="ck_member_activity_capacity"),
                      CheckConstraint("budget_fen >= 0", name="ck_member_activity_budget"),
                      CheckConstraint("points >= 0", name="ck_member_activity_points"),
                      CheckConstraint("ends_at > starts_at", name="ck_member_activity_times"))

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="event_plan.id")
    unit_id: int = Field(foreign_key="org_unit.id")
    unit_path: str = Field(sa_type=PATH_TYPE)
    kind: str = Field(max_length=32)
    theme: str = Field(max_length=200)
    place: str = Field(max_length=200)
    content: str = Field(default="", sa_column=Column(Text, nullable=False))
    starts_at: datetime = Field(sa_column=_ts())
    ends_at: datetime = Field(sa_column=_ts())
    capacity: int
    budget_fen: int = 0
    tiers: str = Field(max_length=64)  # comma-separated tiers invited, e.g. "silver,gold,platinum"
    points: int = 0                    # credited to each attendee at check-in
    # Registration opens here for every invited tier; silver and above from priority_opens_at.
    registration_opens_at: datetime = Field(sa_column=_ts())
    priority_opens_at: datetime = Field(sa_column=_ts())
    status: str = Field(default="planned", max_length=16)
    actual_cost_fen: int | None = None
    invited_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class EventInvitation(SQLModel, table=True):
    """One invited member of an event (at most one row per member and event)."""

    __tablename__ = "event_invitation"
    __table_args__ = (UniqueConstraint("event_id", "membership_id", name="uq_event_invitation_member"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="member_activity.id")
    membership_id: int = Field(foreign_key="membership.id", index=True)
    invited_at: datetime = Field(sa_column=_ts())
    invited_by_id: int | None = Field(default=None, foreign_key="user_account.id")


class EventRegistration(SQLModel, table=True):
    """A member's place at an event: registered | waitlisted | cancelled | attended.

    ``queued_at`` orders the waiting list (first come, first promoted). Check-in moves a
    registration to attended with a conditional UPDATE, so the event points are credited once.
    """

    __tablename__ = "event_registration"
    __table_args__ = (UniqueConstraint("event_id", "membership_id", name="uq_event_registration_member"),
                      Index("ix_event_registration_queue", "event_id", "status", "queued_at"),
                      CheckConstraint("satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5",
                                      name="ck_event_registration_satisfaction"))

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="member_activity.id")
    membership_id: int = Field(foreign_key="membership.id", index=True)
    status: str = Field(max_length=16)
    queued_at: datetime = Field(sa_column=_ts())
    registered_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    cancelled_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    cancelled_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    checked_in_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    checked_in_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    points_credited: int = 0
    points_entry_id: int | None = Field(default=None, foreign_key="points_entry.id")
    satisfaction: int | None = None
