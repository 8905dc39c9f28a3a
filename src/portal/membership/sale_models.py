"""Sales tables: purchases and their lines, the large ones' follow-ups, and the point-of-sale
terminals' keys and idempotent answers. Imported by (and re-exported from) membership/models.py."""
from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, Text, Uuid, event
from sqlalchemy import inspect as sa_inspect
from sqlmodel import Field, SQLModel

from ..db import PATH_TYPE, UTCDateTime


def _ts(nullable: bool = False) -> Column:
    return Column(UTCDateTime, nullable=nullable)


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
