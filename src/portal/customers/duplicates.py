"""Duplicate detection before a file is created: files anywhere that already hold a mobile or ID
number, found by their blind indexes. Only file numbers and owners are revealed, and the lookup
is audited."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..vault import Vault
from .models import CustomerFile
from .service import CustomerInput


def find_by_contact(s: Session, vault: Vault, *, mobile: str | None, id_number: str | None) -> list[CustomerFile]:
    """Files anywhere with this mobile or ID number (duplicate detection; callers reveal no personal data)."""
    conds = []
    if mobile:
        conds.append(CustomerFile.mobile_bidx == vault.blind_index("mobile", mobile))
    if id_number:
        conds.append(CustomerFile.id_number_bidx == vault.blind_index("id_number", id_number))
    if not conds:
        return []
    return list(s.scalars(select(CustomerFile).where(or_(*conds))))


@dataclass
class Duplicate:
    file_no: str
    owner: str
    mine: bool


def check_duplicates(s: Session, vault: Vault, actor: Actor, data: CustomerInput) -> list[Duplicate]:
    """Files anywhere that already hold this mobile or ID number. The lookup is audited and
    reveals only file numbers and owners."""
    found = find_by_contact(s, vault, mobile=data.mobile, id_number=data.id_number)
    if not found:
        return []
    owners = dict(s.execute(select(User.id, User.username)
                            .where(User.id.in_({f.owner_id for f in found}))).all())
    dups = [Duplicate(f.file_no, owners.get(f.owner_id, "?"), f.owner_id == actor.user_id) for f in found]
    audit.record(s, actor, "customer.duplicate_check", object_type="customer",
                 object_id=",".join(d.file_no for d in dups)[:255],
                 fields=[k for k, v in (("mobile", data.mobile), ("id_number", data.id_number)) if v],
                 detail=f"{len(dups)} existing file(s); creation stopped")
    return dups
