"""Membership tables: members, card accounts and their cards, ledgers, applications, settings (the
sales and coupon tables are in sale_models.py and coupon_models.py, re-exported here).

Points and stored value live on a *card account*: the lineage of one card. A replacement card
is a new ``MemberCard`` row (new number) on the same account, so points, stored value and
history move with it and never between accounts. Ledger rows are append-only (database
triggers refuse UPDATE and DELETE); the balances cached on the account are written in the
same transaction as the entries and checked non-negative by the database as well.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (CheckConstraint, Column, Date, Index, Text, UniqueConstraint, column,
                        event, func, select, table)
from sqlalchemy import inspect as sa_inspect
from sqlmodel import Field, SQLModel

from ..db import PATH_TYPE, UTCDateTime


def _ts(nullable: bool = False) -> Column:
    return Column(UTCDateTime, nullable=nullable)


class ProgrammeVersion(SQLModel, table=True):
    """One version of the programme's figures, in force from ``effective_from`` (a Shanghai date)."""

    __tablename__ = "programme_version"

    id: int | None = Field(default=None, primary_key=True)
    effective_from: date = Field(unique=True)
    body: str = Field(sa_column=Column(Text, nullable=False))  # ProgrammeSettings as JSON
    note: str = Field(default="", max_length=500)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())


def _joined_on(context):
    """A membership inserted without its visit base (bulk loads) counts from its joining day."""
    return context.get_current_parameters().get("joined_on")


class Membership(SQLModel, table=True):
    """A customer file's membership: tier (with a leader's floor/ceiling) and standing."""

    __tablename__ = "membership"
    __table_args__ = (Index("ix_membership_unitpath", "unit_path", "id"),
                      # The scheduled visits due, walked in due order per tier within the scope
                      # (service/due.py): the owner's members, or one led unit's.
                      Index("ix_membership_visit_owner", "owner_id", "status", "tier", "visit_base_on", "customer_id"),
                      Index("ix_membership_visit_unit", "unit_path", "status", "tier", "visit_base_on", "customer_id"))

    id: int | None = Field(default=None, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer_file.id", unique=True)
    # Copies of the file's owner and unit path (kept in step on reassignment) so member lists
    # are scoped in SQL exactly like file lists.
    owner_id: int = Field(foreign_key="user_account.id", index=True)
    unit_path: str = Field(sa_type=PATH_TYPE)
    tier: str = Field(max_length=16)
    tier_floor: str | None = Field(default=None, max_length=16)
    tier_ceiling: str | None = Field(default=None, max_length=16)
    status: str = Field(default="active", max_length=16)  # active | ended
    joined_on: date
    join_cause: str = Field(max_length=32)  # single_purchase | cumulative | application | import
    last_purchase_on: date | None = None
    # Spend before this day no longer counts toward tiers (cleared when a cancelled card was restored).
    spend_counted_from: date | None = None
    referrer_id: int | None = Field(default=None, foreign_key="membership.id")
    referral_credited_tier: str | None = Field(default=None, max_length=16)
    pin_hash: str | None = Field(default=None, max_length=200)
    # The day from which the next scheduled follow-up visit counts: the last visit's day, or the
    # joining day while there is none (the tier's interval, a leader's setting, is added when the
    # due list is read). Kept by the listeners below and service.visits.record_visit.
    visit_base_on: date | None = Field(default=None, sa_column=Column(Date, nullable=True, default=_joined_on))
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


# member_visit (service.models), named here so that membership does not import the service package.
_VISIT = table("member_visit", column("customer_id", Membership.__table__.c.customer_id.type),
               column("visited_on", Date))


def visit_base_sql(customer_id, joined_on):
    """The last visit's day, else the joining day: what ``visit_base_on`` holds (the migration's
    backfill is the same SQL)."""
    last = select(func.max(_VISIT.c.visited_on)).where(_VISIT.c.customer_id == customer_id).scalar_subquery()
    return func.coalesce(last, joined_on)


@event.listens_for(Membership, "before_insert")
def _visit_base_on_join(_mapper, _conn, m: Membership) -> None:
    # A file may have been visited before it joined (after a complaint).
    m.visit_base_on = visit_base_sql(m.customer_id, m.joined_on)


@event.listens_for(Membership, "before_update")
def _visit_base_on_rejoin(_mapper, _conn, m: Membership) -> None:
    if sa_inspect(m).attrs.joined_on.history.has_changes():  # a restarted membership
        m.visit_base_on = visit_base_sql(m.customer_id, m.joined_on)


class CardAccount(SQLModel, table=True):
    """The lineage of one card: its type, standing, validity and the two ledgers' balances."""

    __tablename__ = "card_account"
    __table_args__ = (
        CheckConstraint("points_balance >= 0", name="ck_card_account_points"),
        CheckConstraint("stored_value_fen >= 0", name="ck_card_account_stored_value"),
    )

    id: int | None = Field(default=None, primary_key=True)
    membership_id: int = Field(foreign_key="membership.id", index=True)
    card_type: str = Field(max_length=32)
    named: bool = True
    status: str = Field(default="active", max_length=16)  # active | frozen | cancelled
    issued_on: date
    expires_on: date
    points_balance: int = 0
    stored_value_fen: int = 0
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class MemberCard(SQLModel, table=True):
    """A card number. ``status``: current (works), lost (reported; stopped at once), void (replaced)."""

    __tablename__ = "member_card"
    __table_args__ = (UniqueConstraint("region_code", "seq", name="uq_member_card_region_seq"),
                      Index("ix_member_card_issued", "issued_on"))  # reports: the card issue list

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=16, unique=True)
    region_code: str = Field(max_length=8)
    seq: int
    account_id: int = Field(foreign_key="card_account.id", index=True)
    status: str = Field(default="current", max_length=16)
    issued_on: date
    replaces_id: int | None = Field(default=None, foreign_key="member_card.id")
    created_at: datetime = Field(sa_column=_ts())


class CardNumberSequence(SQLModel, table=True):
    """Next card sequence per region; numbers are never reused."""

    __tablename__ = "card_number_sequence"

    region_code: str = Field(primary_key=True, max_length=8)
    next_seq: int = 1


class PointsEntryRow(SQLModel, table=True):
    """One points ledger entry (append-only). Debits name the credit row they draw on (``lot_id``)."""

    __tablename__ = "points_entry"
    __table_args__ = (
        Index("ix_points_entry_account", "account_id", "id"),
        Index("ix_points_entry_expiry", "kind", "expires_on"),
        CheckConstraint("points <> 0", name="ck_points_entry_nonzero"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="card_account.id")
    kind: str = Field(max_length=16)
    points: int
    on: date
    expires_on: date | None = None  # credits: first day the lot is no longer usable
    lot_id: int | None = Field(default=None, foreign_key="points_entry.id")
    ref: str | None = Field(default=None, max_length=64)
    note: str = Field(default="", max_length=500)
    actor_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())


class StoredValueEntryRow(SQLModel, table=True):
    """One stored-value ledger entry in fen (append-only)."""

    __tablename__ = "stored_value_entry"
    __table_args__ = (
        Index("ix_stored_value_entry_account", "account_id", "id"),
        CheckConstraint("amount_fen <> 0", name="ck_stored_value_entry_nonzero"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="card_account.id")
    kind: str = Field(max_length=16)
    amount_fen: int
    on: date
    ref: str | None = Field(default=None, max_length=64)
    note: str = Field(default="", max_length=500)
    actor_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())


class MemberEvent(SQLModel, table=True):
    """The member's history: joining, tier changes, card lifecycle, each with its cause and reason."""

    __tablename__ = "member_event"
    __table_args__ = (Index("ix_member_event_membership", "membership_id", "id"),
                      Index("ix_member_event_kind_at", "kind", "at"))  # reports: a period's card steps

    id: int | None = Field(default=None, primary_key=True)
    membership_id: int = Field(foreign_key="membership.id")
    account_id: int | None = Field(default=None, foreign_key="card_account.id")
    kind: str = Field(max_length=32)
    from_value: str = Field(default="", max_length=64)
    to_value: str = Field(default="", max_length=64)
    cause: str = Field(default="", max_length=32)
    reason: str = Field(default="", max_length=500)
    actor_id: int | None = Field(default=None, foreign_key="user_account.id")
    at: datetime = Field(sa_column=_ts())


ENDED = "ended"  # TierChange's state of a membership that has ended (and Membership.status's)


class TierChange(SQLModel, table=True):
    """The member's tier over time (append-only): one row each time the membership changes state,
    on the Shanghai day it did, written in the same transaction as the change. ``from_tier`` is ""
    on first joining and "ended" on a restart; ``to_tier`` is "ended" when the membership ends.
    The tier a member held on a day is the ``to_tier`` of their last row on or before it, so the
    reports count members by tier at any date without today's tier (reports/tiers.py)."""

    __tablename__ = "tier_change"
    __table_args__ = (
        # One member's history, and the reports' join from a scoped membership (index-only).
        Index("ix_tier_change_membership", "membership_id", "changed_on", "from_tier", "to_tier"),
    )

    id: int | None = Field(default=None, primary_key=True)
    membership_id: int = Field(foreign_key="membership.id")
    changed_on: date
    from_tier: str = Field(default="", max_length=16)
    to_tier: str = Field(max_length=16)
    cause: str = Field(default="", max_length=32)
    at: datetime = Field(sa_column=_ts())


class MembershipApplication(SQLModel, table=True):
    """A salesperson's application for a client; customer service approves or rejects it."""

    __tablename__ = "membership_application"
    __table_args__ = (Index("ix_membership_application_status", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer_file.id", index=True)
    submitted_by_id: int = Field(foreign_key="user_account.id")
    card_type: str = Field(max_length=32)
    note: str = Field(default="", max_length=500)
    joining_fee_fen: int = 0
    status: str = Field(default="pending", max_length=16)  # pending | approved | rejected
    submitted_at: datetime = Field(sa_column=_ts())
    reviewed_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    reviewed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    decision_reason: str = Field(default="", max_length=500)
    membership_id: int | None = Field(default=None, foreign_key="membership.id")
    # Who referred the applicant (seed 001's referral points, paid at approval).
    referrer_id: int | None = Field(default=None, foreign_key="membership.id")
    # A leader above the file may waive the joining condition, with a reason (seed 002: approval).
    exception_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    exception_reason: str = Field(default="", max_length=500)
    exception_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # The joining fee, where set, is paid before the card is issued (seed 004: 交纳会员工本费).
    fee_paid_method: str = Field(default="", max_length=16)
    fee_paid_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    fee_paid_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Redemption(SQLModel, table=True):
    """A catalogue item taken for points. ``form_key`` (one per rendered form) makes a resent or
    double-clicked form return the first redemption instead of taking the points twice."""

    __tablename__ = "redemption"
    __table_args__ = (UniqueConstraint("account_id", "form_key", name="uq_redemption_form_key"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="card_account.id", index=True)
    item_code: str = Field(max_length=32)
    item_name: str = Field(max_length=200)
    points: int
    value_fen: int
    on: date
    actor_id: int | None = Field(default=None, foreign_key="user_account.id")
    terminal_id: int | None = Field(default=None, foreign_key="pos_terminal.id")
    form_key: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=_ts())


class FormSubmission(SQLModel, table=True):
    """A page form that was acted on, by its one-time key: the same form sent again (a double
    click, a reload) is recognised and not acted on twice."""

    __tablename__ = "form_submission"

    key: str = Field(primary_key=True, max_length=100)
    used_at: datetime = Field(sa_column=_ts())


# The sales and coupon tables live beside this module (each under ~400 lines); every table of the
# programme is still importable from here.
from .coupon_models import Coupon, CouponCampaign, CouponEntry  # noqa: E402,F401
from .sale_models import (ApiIdempotency, PosTerminal, Purchase, PurchaseFollowUp,  # noqa: E402,F401
                          PurchaseLineRow)
