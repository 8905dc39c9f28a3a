"""A record of every customer export: who, why, how many rows, and the SHA-256 of the bytes delivered."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, Text, Uuid
from sqlmodel import Field, SQLModel

from ..db import PATH_TYPE, UTCDateTime


class ExportRecord(SQLModel, table=True):
    __tablename__ = "export_record"
    __table_args__ = (
        Index("ix_export_sha256", "sha256"),
        Index("ix_export_status_unitpath", "status", "unit_path"),
        Index("ix_export_actor", "actor_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    actor_id: int = Field(foreign_key="user_account.id")
    actor_username: str = Field(max_length=64)
    # The exporter's unit: leaders above it approve large exports.
    unit_path: str = Field(sa_type=PATH_TYPE)
    purpose: str = Field(max_length=500)
    # Files frozen at request time (export_item): what was asked for and what a leader approved.
    rows: int = 0
    # Files actually delivered: fewer than `rows` when some left the exporter's scope meanwhile.
    rows_delivered: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    # delivered (small, at once) | pending | approved | denied | downloaded | expired
    status: str = Field(max_length=16)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    decided_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    decision_note: str = Field(default="", max_length=500)
    download_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    sha256: str = Field(default="", max_length=64)
    # File numbers delivered (not personal data): an edited leak is matched by its rows.
    file_nos: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))


class ExportItem(SQLModel, table=True):
    """One customer file frozen into an export when it is requested: the download delivers exactly
    these files (those still in the exporter's scope), never what the query would find later."""
    __tablename__ = "export_item"

    export_id: int = Field(sa_column=Column(Integer, ForeignKey("export_record.id", ondelete="CASCADE"),
                                            primary_key=True))
    customer_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("customer_file.id", ondelete="CASCADE"),
                                                    primary_key=True))
