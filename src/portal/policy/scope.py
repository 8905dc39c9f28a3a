"""SQL filters built from the same policy as `can()`: lists never fetch rows the user may not see."""
from __future__ import annotations

from sqlalchemy import false, or_, true
from sqlalchemy.sql.elements import ColumnElement

from ..accounts.actor import Actor
from ..customers.models import CustomerFile
from .actions import Action, Relation
from .enforcer import allowed_relations


def subtree_range(path: str) -> tuple[str, str]:
    """Paths are digits and '/', ending in '/': the subtree of "/1/4/" is ["/1/4/", "/1/40").

    A range, not LIKE, so that both databases use the B-tree index (the column sorts bytewise).
    """
    return path, path[:-1] + chr(ord("/") + 1)


def customer_scope(actor: Actor, action: Action) -> ColumnElement[bool]:
    rels = allowed_relations(actor.role, action)
    if Relation.ANY in rels:
        return true()
    clauses = []
    if Relation.OWN in rels and actor.user_id is not None:
        clauses.append(CustomerFile.owner_id == actor.user_id)
    if Relation.LED in rels and actor.role == "leader" and actor.unit_path:
        lo, hi = subtree_range(actor.unit_path)
        clauses.append((CustomerFile.unit_path >= lo) & (CustomerFile.unit_path < hi))
    if not clauses:
        return false()
    return or_(*clauses)
