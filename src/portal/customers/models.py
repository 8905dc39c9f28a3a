"""Customer files ("customer information cards"): personal fields are ciphertext, searchable by blind index."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, text
from sqlmodel import Field, SQLModel

from ..db import PATH_TYPE, UTCDateTime

# Columns holding AES-GCM blobs, in the order the detail page shows them.
PERSONAL_FIELDS = ("name", "mobile", "id_number", "birthday", "address", "employer", "position", "notes")


# The files whose birthday has its month-day index (most), and those which have none yet (customers/search.py birthday_unindexed()).
BIRTHDAY_INDEXED = "birthday_md_bidx IS NOT NULL"
BIRTHDAY_UNINDEXED = "birthday_md_bidx IS NULL AND birthday_ct IS NOT NULL AND erased_at IS NULL"


def _blob() -> Column:
    return Column(LargeBinary, nullable=True)


class CustomerFile(SQLModel, table=True):
    __tablename__ = "customer_file"
    __table_args__ = (
        # Keyset pagination: newest first per owner, and per unit subtree for leaders.
        Index("ix_customer_owner_created", "owner_id", "created_at", "id"),
        Index("ix_customer_unitpath_created", "unit_path", "created_at", "id"),
        Index("ix_customer_created", "created_at", "id"),
        Index("ix_customer_mobile_bidx", "mobile_bidx"),
        Index("ix_customer_id_number_bidx", "id_number_bidx"),
        # Search by name, surname and the mobile's last four digits (customers/search.py): the
        # selective full name alone; the others with the scope's columns, walked newest first.
        Index("ix_customer_name_bidx", "name_bidx"),
        Index("ix_customer_surname_owner", "surname_bidx", "owner_id", "created_at", "id"),
        Index("ix_customer_surname_unitpath", "surname_bidx", "unit_path", "created_at", "id"),
        Index("ix_customer_tail_owner", "mobile_tail_bidx", "owner_id", "created_at", "id"),
        Index("ix_customer_tail_unitpath", "mobile_tail_bidx", "unit_path", "created_at", "id"),
        # "Birthdays today" (home/sales.py): the candidates of today's month-day index values,
        # joined to their memberships; and the few files whose birthday is not indexed yet.
        Index("ix_customer_birthday_md", "birthday_md_bidx", "id", sqlite_where=text(BIRTHDAY_INDEXED),
              postgresql_where=text(BIRTHDAY_INDEXED)),
        Index("ix_customer_birthday_unindexed", "id", sqlite_where=text(BIRTHDAY_UNINDEXED),
              postgresql_where=text(BIRTHDAY_UNINDEXED)),
        # Personal fields are sealed with the customer's own key (subject_keys.py), the row's id.
        {"info": {"subject_key": "id"}},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    file_no: str = Field(max_length=16, unique=True)
    category: str = Field(max_length=32)
    gender: str = Field(max_length=1)
    owner_id: int = Field(foreign_key="user_account.id")
    unit_id: int = Field(foreign_key="org_unit.id")
    # Copy of the owner's unit path at assignment: the leader scope is a prefix scan on it.
    unit_path: str = Field(sa_type=PATH_TYPE)
    name_ct: bytes | None = Field(default=None, sa_column=_blob())
    mobile_ct: bytes | None = Field(default=None, sa_column=_blob())
    id_number_ct: bytes | None = Field(default=None, sa_column=_blob())
    birthday_ct: bytes | None = Field(default=None, sa_column=_blob())
    address_ct: bytes | None = Field(default=None, sa_column=_blob())
    employer_ct: bytes | None = Field(default=None, sa_column=_blob())
    position_ct: bytes | None = Field(default=None, sa_column=_blob())
    notes_ct: bytes | None = Field(default=None, sa_column=_blob())
    mobile_bidx: str | None = Field(default=None, max_length=64)
    id_number_bidx: str | None = Field(default=None, max_length=64)
    # Keyed blind indexes for search by name (see customers/search.py and the README's note).
    name_bidx: str | None = Field(default=None, max_length=64)
    surname_bidx: str | None = Field(default=None, max_length=64)
    mobile_tail_bidx: str | None = Field(default=None, max_length=8)  # truncated: many-to-one
    birthday_md_bidx: str | None = Field(default=None, max_length=8)  # month-day, truncated
    # The ring key that sealed the row; 0 once sealed with the customer's own key (subject_keys.py).
    key_id: int = Field(default=1, index=True)
    # Set when the customer's data was erased (privacy/erasure.py): the fields no longer open.
    erased_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class FileNumberSequence(SQLModel, table=True):
    """Next file number per region; numbers are never reused."""

    __tablename__ = "file_number_sequence"

    region_code: str = Field(primary_key=True, max_length=16)
    next_seq: int = 1


class CustomerFileTally(SQLModel, table=True):
    """How many customer files each (owner, unit path) holds: the home page's files figure is
    read from here arm by arm (policy.scoped.count_in_scope) instead of counting the files (7 ms
    for a leader's 200,000 at 1M files). Written only by customers.tally, in the transaction
    that creates or moves a file; `portal integrity tally` compares it with the files."""
    __tablename__ = "customer_file_tally"
    __table_args__ = (Index("ix_customer_file_tally_unit", "unit_path"),)

    owner_id: int = Field(primary_key=True)
    unit_path: str = Field(sa_type=PATH_TYPE, primary_key=True)
    files: int = 0
