"""Finding a member at the service desk by mobile, ID number or full name (card numbers go
straight to cards.lookup_card): masked rows, scoped by the policy, audited before anything is
decrypted. Full names only: a surname or four digits would list half the company's members."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers import names, rules
from ..customers import search as file_search
from ..customers.models import CustomerFile
from ..policy import Action
from ..policy.scope import member_scope
from ..vault import Vault
from .models import CardAccount, MemberCard, Membership

LIMIT = 20


@dataclass
class MemberRow:
    card_number: str  # the current card of the member's first account ("" if none is current)
    masked_name: str
    masked_mobile: str
    tier: str
    status: str
    file_no: str


def condition(vault: Vault, q: str):
    """(kind, SQL condition) for a mobile, an ID number or a full name; (None, None) otherwise."""
    q = (q or "").strip()
    if rules.looks_like_mobile(q):
        return "mobile", CustomerFile.mobile_bidx == vault.blind_index("mobile", rules.normalise_mobile(q))
    if rules.looks_like_id_number(q):
        return "id_number", CustomerFile.id_number_bidx == vault.blind_index("id_number", rules.normalise_id_number(q))
    if names.looks_like_name(q) and not any(ch.isdigit() for ch in q):
        return "name", CustomerFile.name_bidx == file_search.name_index(vault, names.normalise(q))
    return None, None


def find_members(s: Session, vault: Vault, actor: Actor, q: str) -> tuple[str | None, list[MemberRow]]:
    kind, cond = condition(vault, q)
    if cond is None:
        return None, []
    found = s.execute(select(Membership, CustomerFile)
                      .join(CustomerFile, CustomerFile.id == Membership.customer_id)
                      .where(cond, member_scope(actor, Action.SERVICE_LOOKUP))
                      .order_by(Membership.id).limit(LIMIT)).all()
    cards = {}
    if found:
        ids = [m.id for m, _ in found]
        for mid, number in s.execute(select(CardAccount.membership_id, MemberCard.number)
                                     .join(MemberCard, MemberCard.account_id == CardAccount.id)
                                     .where(CardAccount.membership_id.in_(ids), MemberCard.status == "current")
                                     .order_by(CardAccount.id)):
            cards.setdefault(mid, number)
    audit.record(s, actor, Action.SERVICE_LOOKUP.value, object_type="card",
                 object_id=",".join(cards.get(m.id, "") or f.file_no for m, f in found)[:255],
                 fields=[kind], detail=f"desk search: {len(found)} member(s)")
    rows = []
    for m, f in found:
        name = vault.decrypt(f.name_ct, table="customer_file", column="name", row_id=f.id) or ""
        mobile = vault.decrypt(f.mobile_ct, table="customer_file", column="mobile", row_id=f.id) or ""
        rows.append(MemberRow(card_number=cards.get(m.id, ""), masked_name=rules.mask_name(name),
                              masked_mobile=rules.mask_mobile(mobile), tier=m.tier, status=m.status,
                              file_no=f.file_no))
    return kind, rows

