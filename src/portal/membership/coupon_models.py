"""Coupon tables: campaigns, members' coupons and the coupon ledger. Imported by (and
re-exported from) membership/models.py."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import PATH_TYPE, UTCDateTime


def _ts(nullable: bool = False) -> Column:
    return Column(UTCDateTime, nullable=nullable)


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
