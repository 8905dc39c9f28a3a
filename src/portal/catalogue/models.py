"""The product catalogue table: one row per version of a product, never edited in place."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import UTCDateTime


class ProductVersion(SQLModel, table=True):
    """A product as quoted from ``active_from`` (a Shanghai date) until the next version of the
    same code starts, or until ``active_to`` (inclusive) when the product is withdrawn. A change
    of price or name is a new row; the database refuses UPDATE and DELETE (like the ledgers)."""

    __tablename__ = "product_version"
    __table_args__ = (
        UniqueConstraint("code", "active_from", name="uq_product_version_code_from"),
        CheckConstraint("bottles_per_box > 0", name="ck_product_bottles_per_box"),
        CheckConstraint("group_price_fen >= 0 AND list_price_fen >= group_price_fen",
                        name="ck_product_prices"),
        Index("ix_product_version_code", "code", "active_from"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32)
    name: str = Field(max_length=200)
    unit: str = Field(default="bottle", max_length=16)
    bottles_per_box: int = 6
    list_price_fen: int            # per bottle
    group_price_fen: int           # the member group price per bottle
    active_from: date
    active_to: date | None = None
    note: str = Field(default="", max_length=500)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
