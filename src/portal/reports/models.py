"""Sent monthly unit reports: the figures frozen when a leader sent them upward, with the sender
and a SHA-256 of the frozen body (also written to the hash-chained audit log)."""
from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from ..db import PATH_TYPE, UTCDateTime


class SentMonthlyReport(SQLModel, table=True):
    __tablename__ = "sent_monthly_report"
    __table_args__ = (
        UniqueConstraint("unit_id", "month", name="uq_sent_monthly_report_unit_month"),
        Index("ix_sent_monthly_report_unitpath", "unit_path", "month"),
    )

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="org_unit.id")
    unit_path: str = Field(sa_type=PATH_TYPE)      # leaders above read it: a prefix of their path
    month: str = Field(max_length=7)               # YYYY-MM
    body: str = Field(sa_column=Column(Text, nullable=False))  # the frozen figures as canonical JSON
    sha256: str = Field(max_length=64)
    sent_by_id: int = Field(foreign_key="user_account.id")
    sent_by_username: str = Field(max_length=64)
    sent_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class ReportMonth(SQLModel, table=True):
    """The purchase and points figures of a month, per (owner, unit path, tier) of the members as
    they stand now: the same keys the live reports group and scope by. Written only by
    ``reports.rollup``, in the transaction of each fact; a member's rows move with them when the
    file is reassigned or the tier changes. Buyers: members with a purchase in the month
    (``buyers``), and those whose first purchase of the quarter or year falls in it
    (``first_of_quarter``, ``first_of_year``), so that a quarter or year adds its months up."""
    __tablename__ = "report_month"
    __table_args__ = (Index("ix_report_month_unit", "unit_path", "month"),
                      Index("ix_report_month_owner", "owner_id", "month"))

    month: str = Field(max_length=7, primary_key=True)   # YYYY-MM
    owner_id: int = Field(primary_key=True)
    unit_path: str = Field(sa_type=PATH_TYPE, primary_key=True)
    tier: str = Field(max_length=16, primary_key=True)
    purchases: int = 0
    spend_fen: int = Field(default=0, sa_type=BigInteger)
    buyers: int = 0
    first_of_quarter: int = 0
    first_of_year: int = 0
    points_earned: int = Field(default=0, sa_type=BigInteger)   # earn, referral, event
    points_redeemed: int = Field(default=0, sa_type=BigInteger)  # redeem (positive)
    points_expired: int = Field(default=0, sa_type=BigInteger)   # expire (positive)


class ReportMember(SQLModel, table=True):
    """The members as they stand now per (owner, unit path, tier, status), with what they hold:
    how many have a card account, and their points and stored-value balances. Written only by
    ``reports.summaries`` in the transaction that changes a membership or a balance."""
    __tablename__ = "report_member"
    __table_args__ = (Index("ix_report_member_unit", "unit_path"),)

    owner_id: int = Field(primary_key=True)
    unit_path: str = Field(sa_type=PATH_TYPE, primary_key=True)
    tier: str = Field(max_length=16, primary_key=True)
    status: str = Field(max_length=16, primary_key=True)
    members: int = 0
    holders: int = 0                                              # members with a card account
    points_balance: int = Field(default=0, sa_type=BigInteger)
    stored_value_fen: int = Field(default=0, sa_type=BigInteger)


class ReportFlow(SQLModel, table=True):
    """Counts of a month's member events per (owner, unit path, tier) of the members as they stand
    now: ``join`` (a = the cause; the month of ``joined_on``), ``ref`` (a referred member's
    joining), ``move`` (a tier event: a = up | down, b = its cause; the Shanghai month of ``at``)
    ``tc`` (a tier_change row: a = from, b = to; the month of ``changed_on``) and ``card`` (a card
    issued: a = new | replacement; the month of ``issued_on``). Written only by
    ``reports.summaries``; a member's rows move with them like ``report_month``'s."""
    __tablename__ = "report_flow"
    __table_args__ = (Index("ix_report_flow_unit", "kind", "unit_path", "month"),
                      Index("ix_report_flow_owner", "kind", "owner_id", "month"))

    month: str = Field(max_length=7, primary_key=True)
    owner_id: int = Field(primary_key=True)
    unit_path: str = Field(sa_type=PATH_TYPE, primary_key=True)
    tier: str = Field(max_length=16, primary_key=True)
    kind: str = Field(max_length=8, primary_key=True)
    a: str = Field(max_length=32, primary_key=True)
    b: str = Field(max_length=32, primary_key=True)
    n: int = 0


class ReportProduct(SQLModel, table=True):
    """Each product's complete purchase lines of a month per (owner, unit path, tier) of the
    members as they stand now: distinct buying members (per month, and first of the quarter /
    year, as in ``report_month``), quantity and money paid. Written only by ``reports.rollup``."""
    __tablename__ = "report_product"
    __table_args__ = (Index("ix_report_product_unit", "unit_path", "month"),
                      Index("ix_report_product_owner", "owner_id", "month"))

    month: str = Field(max_length=7, primary_key=True)
    owner_id: int = Field(primary_key=True)
    unit_path: str = Field(sa_type=PATH_TYPE, primary_key=True)
    tier: str = Field(max_length=16, primary_key=True)
    product: str = Field(max_length=200, primary_key=True)
    buyers: int = 0
    first_of_quarter: int = 0
    first_of_year: int = 0
    quantity: int = Field(default=0, sa_type=BigInteger)
    paid_fen: int = Field(default=0, sa_type=BigInteger)


# The audit analytics' summary (reports.audit_days): per Shanghai day and actor, the counts of the
# audited entries up to a sequence number; views per hour of the day, so that "outside working
# hours" follows the configured hours. A Core table: 24 hour columns.
VIEW_HOURS = tuple(f"vh{h:02d}" for h in range(24))
AUDIT_DAY_FIGURES = ("entries", "views", "exports", "denials", "grants", *VIEW_HOURS)

audit_day = Table(
    "audit_day", SQLModel.metadata,
    Column("day", String(10), primary_key=True),            # YYYY-MM-DD, Asia/Shanghai
    Column("actor_id", Integer, primary_key=True),          # 0: no actor
    Column("actor_username", String(64), primary_key=True),
    Column("actor_role", String(32), primary_key=True),
    *(Column(name, Integer, nullable=False, default=0) for name in AUDIT_DAY_FIGURES),
)

# One row (id 1): audit_day holds exactly the entries with seq <= this one.
audit_day_head = Table(
    "audit_day_head", SQLModel.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False, default=0),
)

# Who viewed which file on which Shanghai day (allowed customer.view entries up to audit_day_head's
# seq, once per day): what tells whether a view in the log's tail is a new file of its day.
audit_view_day = Table(
    "audit_view_day", SQLModel.metadata,
    Column("actor_username", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("object_id", String(255), primary_key=True),
)

# The number of audit_view_day's rows per (user, day): the distinct files each user viewed each day,
# added up over a window by the "many more files than usual" check (a few rows per user and day,
# however many views the day had).
audit_file_day = Table(
    "audit_file_day", SQLModel.metadata,
    Column("actor_username", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("files", Integer, nullable=False, default=0),
)




class CardMonth(SQLModel, table=True):
    """Card steps per (month, owner, unit path, tier, kind) of the members as they stand now (see
    ``reports.card_rollup``): member_event card kinds by the Shanghai month of the step, ``expired``
    by the card account's expiry month, ``card`` by the month a card number was issued (the issue
    list's total). Written in the transaction of each step; a member's counts move with them."""
    __tablename__ = "card_month"
    __table_args__ = (Index("ix_card_month_unit", "unit_path", "month"),
                      Index("ix_card_month_owner", "owner_id", "month"))

    month: str = Field(max_length=7, primary_key=True)
    owner_id: int = Field(primary_key=True)
    unit_path: str = Field(sa_type=PATH_TYPE, primary_key=True)
    tier: str = Field(max_length=16, primary_key=True)
    kind: str = Field(max_length=16, primary_key=True)
    n: int = 0


class ClassState(SQLModel, table=True):
    """The day the class window summary is as of, and the thresholds it was classified with (see
    ``reports.class_window``); one row (id 1), rewritten by the daily refresh."""
    __tablename__ = "class_state"

    id: int = Field(default=1, primary_key=True)
    as_of: date
    window_months: int
    a_spend_fen: int = Field(sa_type=BigInteger)
    b_spend_fen: int = Field(sa_type=BigInteger)
    c_spend_fen: int = Field(sa_type=BigInteger)
    a_purchases: int
    gen: int = 1  # the generation of class_member and class_count rows the reports read


class ClassBuild(SQLModel, table=True):
    """The generation of the class window summary being built in chunks (``reports.class_build``):
    its day and thresholds, and the membership ids done so far; one row (id 1), always there,
    ``as_of`` empty while no build runs."""
    __tablename__ = "class_build"

    id: int = Field(default=1, primary_key=True)
    gen: int
    as_of: date | None = None
    window_months: int
    a_spend_fen: int = Field(sa_type=BigInteger)
    b_spend_fen: int = Field(sa_type=BigInteger)
    c_spend_fen: int = Field(sa_type=BigInteger)
    a_purchases: int
    done_through: int = 0


class ClassMember(SQLModel, table=True):
    """One active member's window as of its generation's day (``class_state`` or ``class_build``):
    spend, purchases and last purchase in the class window, class and RFM scores, and the keys the
    reports scope by (as they stand now)."""
    __tablename__ = "class_member"
    __table_args__ = (Index("ix_class_member_rank", "gen", "cls", text("spend_fen DESC"), "file_no"),
                      Index("ix_class_member_owner", "gen", "owner_id", "cls", text("spend_fen DESC"), "file_no"))

    gen: int = Field(primary_key=True)  # class_state.gen, or class_build.gen while it is built
    membership_id: int = Field(primary_key=True)
    customer_id: uuid.UUID
    file_no: str = Field(max_length=16)
    owner_id: int
    unit_path: str = Field(sa_type=PATH_TYPE)
    tier: str = Field(max_length=16)
    spend_fen: int = Field(default=0, sa_type=BigInteger)
    purchases: int = 0
    last_on: date | None = None
    cls: str = Field(max_length=1)
    r: int
    f: int


class ClassCount(SQLModel, table=True):
    """Members, spend and purchases per (owner, unit path, tier, class, recency, frequency) of
    ``class_member``: what the classes and RFM tables add up."""
    __tablename__ = "class_count"
    __table_args__ = (Index("ix_class_count_unit", "gen", "unit_path"),)

    gen: int = Field(primary_key=True)
    owner_id: int = Field(primary_key=True)
    unit_path: str = Field(sa_type=PATH_TYPE, primary_key=True)
    tier: str = Field(max_length=16, primary_key=True)
    cls: str = Field(max_length=1, primary_key=True)
    r: int = Field(primary_key=True)
    f: int = Field(primary_key=True)
    members: int = 0
    spend_fen: int = Field(default=0, sa_type=BigInteger)
    purchases: int = 0


class CardIssue(SQLModel, table=True):
    """Each card number issued, with its member's owner, unit path and tier as they stand now (see
    ``reports.card_rollup``): the card issue list walks the covering index by (day, number) and
    tests the scope on the index alone, then reads the details of the cards it lists."""
    __tablename__ = "card_issue"
    __table_args__ = (Index("ix_card_issue_walk", "issued_on", "number", "owner_id", "unit_path", "tier"),
                      Index("ix_card_issue_member", "membership_id"))

    card_id: int = Field(primary_key=True)
    membership_id: int
    issued_on: date
    number: str = Field(max_length=16)
    owner_id: int
    unit_path: str = Field(sa_type=PATH_TYPE)
    tier: str = Field(max_length=16)
