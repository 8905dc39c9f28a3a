"""Credit tables: terms (versioned), grants, applications, orders, the receivables ledger, liabilities
and their settlements, and the daily reminders' run claims.

``receivable_entry`` and ``liability_settlement`` are append-only (database triggers refuse UPDATE
and DELETE); an order's balance (a liability's settled sum) is cached on the order (the
liability) in the same transaction as its entries, under its row lock, with a CHECK that keeps it
within bounds.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, Index, Text
from sqlmodel import Field, SQLModel

from ..db import PATH_TYPE, UTCDateTime


def _ts(nullable: bool = False) -> Column:
    return Column(UTCDateTime, nullable=nullable)


class CreditTermsVersion(SQLModel, table=True):
    """One version of the credit terms (limits, periods, overdue block) from ``effective_from``."""

    __tablename__ = "credit_terms_version"

    id: int | None = Field(default=None, primary_key=True)
    effective_from: date = Field(unique=True)
    body: str = Field(sa_column=Column(Text, nullable=False))  # CreditTerms as JSON
    note: str = Field(default="", max_length=500)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())


class CreditGrant(SQLModel, table=True):
    """A leader's grant of credit to a customer. One live grant per customer (revoked ones stay).
    The live grant's row is the lock every credit sale to the customer takes."""

    __tablename__ = "credit_grant"
    __table_args__ = (Index("ix_credit_grant_customer", "customer_id", "revoked_at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer_file.id")
    credit_class: str = Field(max_length=16)   # institutional | individual
    reason: str = Field(max_length=500)
    granted_by_id: int = Field(foreign_key="user_account.id")
    granted_at: datetime = Field(sa_column=_ts())
    revoked_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(True))


class CreditApplication(SQLModel, table=True):
    """A written application for one order: extra boxes or days over the limits (kind "credit"),
    or a price below the group price (kind "discount", valid 7 days). A leader above the file
    decides, never the requester; an approved one is used by exactly one order."""

    __tablename__ = "credit_application"
    __table_args__ = (Index("ix_credit_application_customer", "customer_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)            # credit | discount
    customer_id: uuid.UUID = Field(foreign_key="customer_file.id")
    requested_by_id: int = Field(foreign_key="user_account.id")
    reason: str = Field(max_length=500)
    extra_boxes: int = 0
    extra_days: int = 0
    product_code: str = Field(default="", max_length=32)
    price_fen: int = 0                          # discount: the asked price per bottle
    status: str = Field(default="pending", max_length=16)  # pending | approved | refused | used
    decided_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    decided_at: datetime | None = Field(default=None, sa_column=_ts(True))
    decision_note: str = Field(default="", max_length=500)
    expires_at: datetime | None = Field(default=None, sa_column=_ts(True))
    used_by_order_id: int | None = None
    created_at: datetime = Field(sa_column=_ts())


class CreditOrder(SQLModel, table=True):
    """A sale on credit or cash on delivery, beside its purchase: who operated it, the line leader
    at the time, the boxes, delivery, the due date and the cached receivable balance."""

    __tablename__ = "credit_order"
    __table_args__ = (
        CheckConstraint("balance_fen >= 0", name="ck_credit_order_balance"),
        Index("ix_credit_order_customer", "customer_id", "settled_at"),
        Index("ix_credit_order_open", "settled_at", "due_on"),
        Index("ix_credit_order_ordered_on", "ordered_on"),  # 0030: reports, a period's sales on terms
    )

    id: int | None = Field(default=None, primary_key=True)
    purchase_id: int = Field(foreign_key="purchase.id", unique=True)
    receipt_no: str = Field(max_length=40)
    customer_id: uuid.UUID = Field(foreign_key="customer_file.id")
    terms: str = Field(max_length=16)           # credit | cod
    operator_id: int | None = Field(default=None, foreign_key="user_account.id")
    operator_unit_path: str = Field(default="", sa_type=PATH_TYPE)
    line_leader_id: int | None = Field(default=None, foreign_key="user_account.id")
    boxes: int = 0
    amount_fen: int
    period_days: int = 0                        # days after delivery (credit)
    period_months: int = 0                      # calendar months after delivery (credit)
    application_id: int | None = Field(default=None, foreign_key="credit_application.id")
    discount_application_id: int | None = Field(default=None, foreign_key="credit_application.id")
    no_invoice: bool = False
    ordered_on: date
    delivered_on: date | None = None
    delivered_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    due_on: date | None = None
    balance_fen: int = 0
    settled_at: datetime | None = Field(default=None, sa_column=_ts(True))
    created_at: datetime = Field(sa_column=_ts())


class ReceivableEntry(SQLModel, table=True):
    """One movement of an order's receivable: charge (+), payment (-), write-off (-). Append-only."""

    __tablename__ = "receivable_entry"
    __table_args__ = (Index("ix_receivable_entry_order", "order_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="credit_order.id")
    kind: str = Field(max_length=16)            # charge | payment | write_off
    amount_fen: int
    method: str = Field(default="", max_length=16)
    received_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    reference: str = Field(default="", max_length=100)
    on: date
    note: str = Field(default="", max_length=500)
    recorded_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    recorded_at: datetime = Field(sa_column=_ts())


class Liability(SQLModel, table=True):
    """Seed 000: the operator owes a written-off amount in full; the line leader is fined 10 %.

    What has been paid back is the sum of its ``liability_settlement`` rows (append-only); it is
    cached in ``settled_fen`` in the same transaction, under the liability's row lock, with a
    CHECK that it never passes the amount. ``settled_at`` is set when nothing is left."""

    __tablename__ = "liability"
    __table_args__ = (Index("ix_liability_person_unit", "person_unit_path", "id"),
                      Index("ix_liability_person", "person_id", "id"),
                      CheckConstraint("settled_fen >= 0 AND settled_fen <= amount_fen", name="ck_liability_settled"))

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="credit_order.id")
    entry_id: int = Field(foreign_key="receivable_entry.id")
    person_id: int = Field(foreign_key="user_account.id")
    person_unit_path: str = Field(sa_type=PATH_TYPE)
    role: str = Field(max_length=16)            # operator | line_leader
    amount_fen: int
    reason: str = Field(max_length=500)
    decided_by_id: int = Field(foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=_ts())
    settled_fen: int = 0                        # cache of the settlements' sum
    settled_at: datetime | None = Field(default=None, sa_column=_ts(True))
    settled_by_id: int | None = Field(default=None, foreign_key="user_account.id")


class LiabilitySettlement(SQLModel, table=True):
    """A payment against a liability (partial allowed), recorded by a leader above the person.
    Append-only: the database refuses UPDATE and DELETE."""

    __tablename__ = "liability_settlement"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="ck_liability_settlement_amount"),
                      Index("ix_liability_settlement_liability", "liability_id", "id"))

    id: int | None = Field(default=None, primary_key=True)
    liability_id: int = Field(foreign_key="liability.id")
    amount_fen: int
    paid_on: date
    method: str = Field(max_length=16)          # payroll | cash | transfer | other
    note: str = Field(default="", max_length=500)
    recorded_by_id: int = Field(foreign_key="user_account.id")
    recorded_at: datetime = Field(sa_column=_ts())


class ReminderRun(SQLModel, table=True):
    """One row per daily reminder job and day: the claim that makes a day's run happen once, however
    many processes start it (the row is written in the same transaction as the notices)."""

    __tablename__ = "reminder_run"

    job: str = Field(max_length=40, primary_key=True)
    day: date = Field(primary_key=True)
    claimed_at: datetime = Field(sa_column=_ts())
    notices: int = 0
