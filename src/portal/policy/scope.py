"""SQL filters built from the same policy as `can()`: lists never fetch rows the user may not see."""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import bindparam, false, literal, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from .. import clock
from ..access.models import AccessRequest
from ..accounts.actor import Actor
from ..customers.models import CustomerFile
from .actions import Action, Relation
from .enforcer import allowed_relations

# The names of the bound parameters of the arms (see scope_shape/arm_clause/arm_values).
SCOPE_USER, SCOPE_LO, SCOPE_HI, SCOPE_NOW = "scope_user", "scope_lo", "scope_hi", "scope_now"


def subtree_range(path: str) -> tuple[str, str]:
    """Paths are digits and '/', ending in '/': the subtree of "/1/4/" is ["/1/4/", "/1/40").

    A range, not LIKE, so that both databases use the B-tree index (the column sorts bytewise).
    """
    return path, path[:-1] + chr(ord("/") + 1)


def scope_shape(actor: Actor, action: Action) -> tuple[tuple[Relation, ...], tuple[str, ...]] | None:
    """Which arms the actor's scope has (OWN, LED, GRANTED, in that order) and which grant
    scopes count, without the actor's values; None when every file is in scope. Two actors of
    the same shape share one prebuilt statement, each with their own values (arm_values)."""
    rels = allowed_relations(actor.role, action)
    if Relation.ANY in rels:
        return None
    arms: list[Relation] = []
    if Relation.OWN in rels and actor.user_id is not None:
        arms.append(Relation.OWN)
    if Relation.LED in rels and actor.role in ("leader", "terminal") and actor.unit_path:
        arms.append(Relation.LED)
    grant_scopes = tuple(scope for rel, scope in ((Relation.GRANTED, "view"), (Relation.GRANTED_EDIT, "view_edit"))
                         if rel in rels)
    if grant_scopes and actor.user_id is not None:
        arms.append(Relation.GRANTED)
    return tuple(arms), grant_scopes


def arm_values(actor: Actor) -> dict[str, object]:
    """The values of the arms' bound parameters for this actor, read now (grants expire)."""
    lo, hi = subtree_range(actor.unit_path) if actor.unit_path else ("", "")
    return {SCOPE_USER: actor.user_id, SCOPE_LO: lo, SCOPE_HI: hi, SCOPE_NOW: clock.now()}


def _required(name: str):
    # No default value: a prebuilt statement run without the actor's values fails loudly
    # instead of silently using someone else's.
    return bindparam(name, required=True)


def arm_clause(rel: Relation, grant_scopes: tuple[str, ...], *, bind: Callable[[str], object] = _required,
               owner=None, unit_path=None, file_id=None) -> ColumnElement[bool]:
    """One arm of the scope, its values as bound parameters (``bind(name)``, by default
    required ones to be given at execution: see arm_values)."""
    owner = CustomerFile.owner_id if owner is None else owner
    unit_path = CustomerFile.unit_path if unit_path is None else unit_path
    file_id = CustomerFile.id if file_id is None else file_id
    if rel is Relation.OWN:
        return owner == bind(SCOPE_USER)
    if rel is Relation.LED:
        return (unit_path >= bind(SCOPE_LO)) & (unit_path < bind(SCOPE_HI))
    # Active grants, read at query time: an expired or revoked grant drops out at once. (The
    # grant scopes are plain parameters, not an "expanding" IN that is re-rendered per run.)
    g = AccessRequest.__table__.c
    return file_id.in_(select(g.file_id).where(
        g.requester_id == bind(SCOPE_USER), g.scope.in_([literal(x) for x in grant_scopes]),
        g.status == "approved",
        g.revoked_at.is_(None), g.expires_at > bind(SCOPE_NOW)))


def scope_arms(actor: Actor, action: Action, *, owner=None, unit_path=None,
               file_id=None) -> list[tuple[Relation, ColumnElement[bool]]] | None:
    """customer_scope() as its disjuncts, each with the relation it stands for; None when every
    file is in scope. A list walks one index per disjunct, newest first (an OR of them cannot
    be walked in order), and merges: see customers.listing.

    ``owner``, ``unit_path`` and ``file_id`` name the columns to filter when the rows are not
    customer files themselves but carry copies of a file's owner and unit (memberships)."""
    shape = scope_shape(actor, action)
    if shape is None:
        return None
    arms, grant_scopes = shape
    values = arm_values(actor)
    return [(rel, arm_clause(rel, grant_scopes, bind=values.__getitem__, owner=owner,
                             unit_path=unit_path, file_id=file_id))
            for rel in arms]


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
