"""The member a service record is about: found by card or file number (or the file's id), checked
against the policy; and the sealing of free text written about them (vault.py, per field)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..customers.models import CustomerFile
from ..customers.service import InvalidInput, NotFound
from ..membership.models import CardAccount, MemberCard, Membership
from ..policy import Action, PermissionDenied, can
from ..vault import Vault


@dataclass(frozen=True)
class MemberRef:
    customer_id: uuid.UUID
    file_no: str
    tier: str  # "" when the file is not a member
    owner_id: int
    unit_path: str


def _ref(s: Session, f: CustomerFile) -> MemberRef:
    tier = s.scalar(select(Membership.tier).where(Membership.customer_id == f.id)) or ""
    return MemberRef(f.id, f.file_no, tier, f.owner_id, f.unit_path)


def check(actor: Actor, f: CustomerFile | MemberRef, action: Action) -> None:
    if not can(actor, action, owner_id=f.owner_id, unit_path=f.unit_path):
        raise PermissionDenied(action, f.file_no)


def by_id(s: Session, actor: Actor, file_id, action: Action) -> MemberRef:
    """The file with this id, if the actor may do ``action`` on it (NotFound, PermissionDenied)."""
    try:
        fid = file_id if isinstance(file_id, uuid.UUID) else uuid.UUID(str(file_id))
    except ValueError:
        raise NotFound("no such file") from None
    f = s.get(CustomerFile, fid)
    if f is None:
        raise NotFound("no such file")
    check(actor, f, action)
    return _ref(s, f)


def by_number(s: Session, actor: Actor, number: str, action: Action, field: str = "member") -> MemberRef:
    """A member by card number or file number, as customer service or the salesperson types it."""
    number = (number or "").strip().upper()
    f = None
    if number and len(number) <= 40:
        f = s.scalar(select(CustomerFile).where(CustomerFile.file_no == number))
        if f is None:
            f = s.scalar(select(CustomerFile).join(Membership, Membership.customer_id == CustomerFile.id)
                         .join(CardAccount, CardAccount.membership_id == Membership.id)
                         .join(MemberCard, MemberCard.account_id == CardAccount.id)
                         .where(MemberCard.number == number))
    if f is None:
        raise InvalidInput({field: "No member with this card or file number."})
    check(actor, f, action)
    return _ref(s, f)


def seal(vault: Vault, table: str, column: str, row_id: int, text: str | None) -> bytes | None:
    return vault.encrypt(text or None, table=table, column=column, row_id=row_id) if text else None


def unseal(vault: Vault, table: str, column: str, row_id: int, blob: bytes | None) -> str:
    return vault.decrypt(blob, table=table, column=column, row_id=row_id) or "" if blob else ""


LIMIT_MESSAGES = {100: "At most 100 characters.", 2000: "At most 2000 characters."}


def text_field(form: dict, name: str, errors: dict, *, required: bool = True, limit: int = 2000) -> str:
    value = (form.get(name) or "").strip()
    if required and not value:
        errors[name] = "This field is required."
    elif len(value) > limit:
        errors[name] = LIMIT_MESSAGES[limit]
    return value


def choice(form: dict, name: str, options, errors: dict, message: str) -> str:
    value = (form.get(name) or "").strip()
    if value not in options:
        errors[name] = message
    return value
