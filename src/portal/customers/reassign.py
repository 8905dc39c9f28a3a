"""Reassigning customer files to another salesperson: the file, and with it its membership's and
large purchases' copies of its owner and unit, its report figures, the files tally, and its grants
(they end; pending requests go to the new leaders), all in the caller's transaction, audited."""
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import clock
from ..access.service import follow_reassignment
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..membership.models import Membership, PurchaseFollowUp
from ..org.models import OrgUnit
from ..policy import Action, PermissionDenied, can, customer_scope
from . import tally
from .models import CustomerFile
from .service import InvalidInput, get_file_for


def reassign_file(s: Session, actor: Actor, file_id, new_owner_username: str, reason: str) -> CustomerFile:
    f = get_file_for(s, actor, file_id, Action.CUSTOMER_REASSIGN)
    # Lock the file (before its grants, as deciding on a request does) and decide again on what
    # is locked: a leader deciding on a request for it at this moment finishes first or is
    # judged on its new place, and two reassignments run one after the other.
    s.refresh(f, with_for_update=True)
    if not can(actor, Action.CUSTOMER_REASSIGN, owner_id=f.owner_id, unit_path=f.unit_path):
        raise PermissionDenied(Action.CUSTOMER_REASSIGN, f.file_no)
    reason = reason.strip()
    if len(reason) < 5:
        raise InvalidInput({"reason": "Give a reason of at least 5 characters."})
    new_owner = s.scalar(select(User).where(User.username == new_owner_username.strip()))
    if new_owner is None or not new_owner.is_active or new_owner.role not in ("salesperson", "leader"):
        raise InvalidInput({"owner": "Choose an active salesperson or leader."})
    unit = s.get(OrgUnit, new_owner.unit_id)
    if not can(actor, Action.CUSTOMER_REASSIGN, owner_id=-1, unit_path=unit.path):
        raise InvalidInput({"owner": "The new owner must be in a unit you lead."})
    old = s.get(User, f.owner_id)
    old_path = f.unit_path
    tally.moved(s, (f.owner_id, f.unit_path), (new_owner.id, unit.path))
    f.owner_id, f.unit_id, f.unit_path = new_owner.id, unit.id, unit.path
    f.updated_at = clock.now()
    s.flush()
    # A membership copies its file's owner and unit so member lists scope like file lists.
    from ..reports import rollup  # reports read customers: imported at call time
    m = s.scalar(select(Membership).where(Membership.customer_id == f.id))
    old_key = rollup.key_of(m) if m is not None else None
    s.execute(update(Membership).where(Membership.customer_id == f.id)
              .values(owner_id=new_owner.id, unit_path=unit.path))
    s.execute(update(PurchaseFollowUp).where(PurchaseFollowUp.customer_id == f.id)  # so do its large purchases
              .values(owner_id=new_owner.id, unit_path=unit.path))
    if m is not None:  # its report figures move with it, in this transaction
        rollup.member_moved(s, m.id, old_key, (new_owner.id, unit.path, old_key[2]))
        from ..reports import card_rollup, class_window
        card_rollup.member_moved(s, m.id, old_key, (new_owner.id, unit.path, old_key[2]))
        class_window.refresh(s, m.id)
    audit.record(s, actor, "customer.reassign", object_type="customer", object_id=f.file_no,
                 fields=["owner"], reason=reason,
                 detail=f"from {old.username if old else '?'} to {new_owner.username}")
    # Its access now answers to the new place: grants end, pending requests go to the new leaders.
    follow_reassignment(s, actor, f, old_path)
    return f


def reassign_all(s: Session, actor: Actor, from_username: str, to_username: str, reason: str) -> int:
    """When a salesperson leaves: move every file of theirs that the leader may reassign.

    Each file is authorised and audited on its own, like a single reassignment.
    """
    if from_username.strip() == to_username.strip():
        raise InvalidInput({"owner": "Choose a different new owner."})
    old = s.scalar(select(User).where(User.username == from_username.strip()))
    if old is None:
        raise InvalidInput({"from": "No such user."})
    ids = list(s.scalars(select(CustomerFile.id).where(
        CustomerFile.owner_id == old.id, customer_scope(actor, Action.CUSTOMER_REASSIGN))))
    if not ids:
        raise InvalidInput({"from": "This user has no files you may reassign."})
    for fid in ids:
        reassign_file(s, actor, fid, to_username, reason)
    return len(ids)

