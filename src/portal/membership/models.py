"""Membership tables: members, card accounts and their cards, ledgers, purchases (and the large ones' follow-ups), applications, settings.

Points and stored value live on a *card account*: the lineage of one card. A replacement card
is a new ``MemberCard`` row (new number) on the same account, so points, stored value and
history move with it and never between accounts. Ledger rows are append-only (database
triggers refuse UPDATE and DELETE); the balances cached on the account are written in the
same transaction as the entries and checked non-negative by the database as well.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (CheckConstraint, Column, Date, ForeignKey, Index, Integer, Text, UniqueConstraint, Uuid, column,
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


class Purchase(SQLModel, table=True):
    """A recorded sale. ``customer_id`` is empty for a purchase made without a card (claimable later)."""

    __tablename__ = "purchase"
    __table_args__ = (
        Index("ix_purchase_customer_on", "customer_id", "purchased_on"),
        Index("ix_purchase_membership_on", "membership_id", "purchased_on"),
        Index("ix_purchase_on", "purchased_on"),  # reports: a period's purchases
    )

    id: int | None = Field(default=None, primary_key=True)
    receipt_no: str = Field(max_length=40, unique=True)
    customer_id: uuid.UUID | None = Field(default=None, foreign_key="customer_file.id")
    membership_id: int | None = Field(default=None, foreign_key="membership.id")
    account_id: int | None = Field(default=None, foreign_key="card_account.id")
    card_number: str = Field(default="", max_length=16)
    purchased_on: date
    payment_method: str = Field(max_length=16)
    list_total_fen: int
    discount_total_fen: int
    paid_total_fen: int
    rate_per_mille: int
    discount_reason: str = Field(max_length=16)
    points_earned: int = 0
    spend_counted_fen: int = 0
    coupon_discount_fen: int = 0   # part of discount_total_fen: the coupon used (see Coupon)
    points_paid: int = 0           # points that paid part of paid_total_fen (seed 001) ...
    points_paid_fen: int = 0       # ... and what they paid
    status: str = Field(default="complete", max_length=16)  # complete | returned
    recorded_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    terminal_id: int | None = Field(default=None, foreign_key="pos_terminal.id")
    created_at: datetime = Field(sa_column=_ts())
    returned_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    claimed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class PurchaseFollowUp(SQLModel, table=True):
    """A large purchase that may make a follow-up visit due (service/due.py): one row per complete
    purchase of a file at or above the lowest large-purchase threshold in force on any day of the
    look-back window (service/follow_ups.py decides and writes them, in the purchase's transaction:
    see the listeners below). It copies its file's owner, unit and number (kept in step on
    reassignment, like a membership's) so that each arm of a scope is an index walk in purchase-day
    order; the purchase's own status and paid total are read again for each row shown."""

    __tablename__ = "purchase_follow_up"
    __table_args__ = (
        # The walks of service/due.py: the owner's, one led unit's, everyone's, in (day, file number) order.
        Index("ix_purchase_follow_up_owner", "owner_id", "purchased_on", "file_no", "purchase_id",
              "paid_total_fen", "customer_id"),
        Index("ix_purchase_follow_up_unit", "unit_path", "purchased_on", "file_no", "purchase_id",
              "paid_total_fen", "customer_id"),
        Index("ix_purchase_follow_up_on", "purchased_on", "file_no", "purchase_id", "paid_total_fen",
              "customer_id"),
        # One member's (their page, a grant's files, a reassignment).
        Index("ix_purchase_follow_up_customer", "customer_id", "purchased_on"),
    )

    purchase_id: int = Field(sa_column=Column(Integer, ForeignKey("purchase.id", ondelete="CASCADE"),
                                              primary_key=True, autoincrement=False))
    customer_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("customer_file.id", ondelete="CASCADE"),
                                                    nullable=False))
    owner_id: int = Field(foreign_key="user_account.id")
    unit_path: str = Field(sa_type=PATH_TYPE)
    file_no: str = Field(max_length=16)
    purchased_on: date
    paid_total_fen: int


# What a follow-up row depends on: a change to one of them writes the purchase's row again.
_FOLLOW_UP_FIELDS = ("customer_id", "status", "paid_total_fen", "purchased_on")


def _follow_up(conn, purchase_id: int, fresh: bool) -> None:
    from ..service import follow_ups  # the member service's rule (it reads membership: imported at call time)
    follow_ups.purchase_written(conn, purchase_id, fresh=fresh)


@event.listens_for(Purchase, "after_insert")
def _follow_up_on_insert(_mapper, conn, p: Purchase) -> None:
    if p.customer_id is not None:  # a sale without a card makes no visit due (until it is claimed)
        _follow_up(conn, p.id, fresh=True)


@event.listens_for(Purchase, "after_update")
def _follow_up_on_change(_mapper, conn, p: Purchase) -> None:
    attrs = sa_inspect(p).attrs
    if any(attrs[k].history.has_changes() for k in _FOLLOW_UP_FIELDS):  # claimed, returned, ...
        _follow_up(conn, p.id, fresh=False)


class PurchaseLineRow(SQLModel, table=True):
    __tablename__ = "purchase_line"

    id: int | None = Field(default=None, primary_key=True)
    purchase_id: int = Field(foreign_key="purchase.id", index=True)
    line_no: int
    product: str = Field(max_length=200)
    quantity: int
    unit_price_fen: int
    special_price: bool = False
    group_buy: bool = False
    list_fen: int
    paid_fen: int


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


class PosTerminal(SQLModel, table=True):
    """A point-of-sale terminal's API key: only a SHA-256 of the (random, 256-bit) key is kept."""

    __tablename__ = "pos_terminal"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    unit_id: int = Field(foreign_key="org_unit.id")
    unit_path: str = Field(sa_type=PATH_TYPE)
    key_prefix: str = Field(max_length=16, unique=True)
    key_hash: str = Field(max_length=64)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class ApiIdempotency(SQLModel, table=True):
    """The first answer to a terminal's request with a given Idempotency-Key, replayed on retries."""

    __tablename__ = "api_idempotency"

    terminal_id: int = Field(foreign_key="pos_terminal.id", primary_key=True)
    key: str = Field(max_length=100, primary_key=True)
    request_hash: str = Field(max_length=64)
    status_code: int
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_ts())


class CouponCampaign(SQLModel, table=True):
    """A batch of coupons a leader (their units' members) or an administrator (everyone) issued
    to the members of some tiers; the terms are copied onto each coupon."""

    __tablename__ = "coupon_campaign"
    __table_args__ = (Index("ix_coupon_campaign_unitpath", "unit_path", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    kind: str = Field(max_length=16)           # amount | discount
    amount_fen: int = 0
    rate_per_mille: int = 1000
    min_spend_fen: int = 0
    valid_from: date
    valid_until: date
    tiers: str = Field(max_length=64)          # "silver,gold"
    unit_path: str = Field(sa_type=PATH_TYPE)  # the issuer's reach ("/" for an administrator)
    issued_count: int = 0
    note: str = Field(default="", max_length=500)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())


class Coupon(SQLModel, table=True):
    """One member's coupon, used once. ``status`` caches the last entry of its ledger
    (``CouponEntry``) and changes only from "issued", in the transaction that appends the entry."""

    __tablename__ = "coupon"
    __table_args__ = (
        UniqueConstraint("membership_id", "benefit_key", name="uq_coupon_benefit"),
        Index("ix_coupon_membership", "membership_id", "id"),
        Index("ix_coupon_status_until", "status", "valid_until"),
        Index("ix_coupon_campaign", "campaign_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)  # random, 60 bits (coupon_rules.new_code)
    membership_id: int = Field(foreign_key="membership.id")
    campaign_id: int | None = Field(default=None, foreign_key="coupon_campaign.id")
    source: str = Field(max_length=16)         # campaign | birthday
    benefit_key: str | None = Field(default=None, max_length=32)  # "birthday:2026": once a year
    kind: str = Field(max_length=16)
    amount_fen: int = 0
    rate_per_mille: int = 1000
    min_spend_fen: int = 0
    valid_from: date
    valid_until: date
    tiers: str = Field(max_length=64)
    status: str = Field(default="issued", max_length=16)  # issued | used | expired | voided
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class CouponEntry(SQLModel, table=True):
    """The coupon ledger (append-only): issued, then at most one of used, expired, voided. The
    unique (coupon, kind) is the database's own guarantee that a coupon is used once."""

    __tablename__ = "coupon_entry"
    __table_args__ = (UniqueConstraint("coupon_id", "kind", name="uq_coupon_entry_kind"),
                      Index("ix_coupon_entry_kind_on", "kind", "on"))

    id: int | None = Field(default=None, primary_key=True)
    coupon_id: int = Field(foreign_key="coupon.id")
    kind: str = Field(max_length=16)
    on: date
    purchase_id: int | None = Field(default=None, foreign_key="purchase.id")
    note: str = Field(default="", max_length=500)
    actor_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())
