"""SQL filters built from the same policy as `can()`: lists never fetch rows the user may not see."""
from __future__ import annotations

from sqlalchemy import false, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from .. import clock
from ..access.models import AccessRequest
from ..accounts.actor import Actor
from ..customers.models import CustomerFile
from .actions import Action, Relation
from .enforcer import allowed_relations


def subtree_range(path: str) -> tuple[str, str]:
    """Paths are digits and '/', ending in '/': the subtree of "/1/4/" is ["/1/4/", "/1/40").

    A range, not LIKE, so that both databases use the B-tree index (the column sorts bytewise).
    """
    return path, path[:-1] + chr(ord("/") + 1)


def scope_arms(actor: Actor, action: Action, *, owner=None, unit_path=None,
               file_id=None) -> list[tuple[Relation, ColumnElement[bool]]] | None:
    """customer_scope() as its disjuncts, each with the relation it stands for; None when every
    file is in scope. A list walks one index per disjunct, newest first (an OR of them cannot
    be walked in order), and merges: see customers.listing.list_files.

    ``owner``, ``unit_path`` and ``file_id`` name the columns to filter when the rows are not
    customer files themselves but carry copies of a file's owner and unit (memberships)."""
    owner = CustomerFile.owner_id if owner is None else owner
    unit_path = CustomerFile.unit_path if unit_path is None else unit_path
    file_id = CustomerFile.id if file_id is None else file_id
    rels = allowed_relations(actor.role, action)
    if Relation.ANY in rels:
        return None
    clauses: list[tuple[Relation, ColumnElement[bool]]] = []
    if Relation.OWN in rels and actor.user_id is not None:
        clauses.append((Relation.OWN, owner == actor.user_id))
    if Relation.LED in rels and actor.role in ("leader", "terminal") and actor.unit_path:
        lo, hi = subtree_range(actor.unit_path)
        clauses.append((Relation.LED, (unit_path >= lo) & (unit_path < hi)))
    grant_scopes = [scope for rel, scope in ((Relation.GRANTED, "view"), (Relation.GRANTED_EDIT, "view_edit"))
                    if rel in rels]
    if grant_scopes and actor.user_id is not None:
        # Active grants, read at query time: an expired or revoked grant drops out at once.
        now = clock.now()
        clauses.append((Relation.GRANTED, file_id.in_(select(AccessRequest.file_id).where(
            AccessRequest.requester_id == actor.user_id, AccessRequest.scope.in_(grant_scopes),
            AccessRequest.status == "approved", AccessRequest.revoked_at.is_(None),
            AccessRequest.expires_at > now))))
    return clauses


def customer_scope(actor: Actor, action: Action, **columns) -> ColumnElement[bool]:
    arms = scope_arms(actor, action, **columns)
    if arms is None:
        return true()
    if not arms:
        return false()
    return or_(*(clause for _, clause in arms))


def member_scope(actor: Actor, action: Action) -> ColumnElement[bool]:
    """customer_scope() over memberships (which copy their file's owner and unit path)."""
    from ..membership.models import Membership  # the policy package is imported by membership
    return customer_scope(actor, action, owner=Membership.owner_id, unit_path=Membership.unit_path,
                          file_id=Membership.customer_id)
