"""The one decision point: may this actor do this action to that object?"""
from __future__ import annotations

import logging
import threading
from functools import lru_cache
from pathlib import Path

import casbin

from ..accounts.actor import Actor
from .actions import Action, Relation

_HERE = Path(__file__).parent
log = logging.getLogger("portal.policy")


class PermissionDenied(Exception):
    """The actor may not do this. Carries what the audit entry needs."""

    def __init__(self, action: Action, object_id: str = "", message: str = "Not allowed."):
        super().__init__(message)
        self.action = action
        self.object_id = object_id


@lru_cache(maxsize=1)
def _enforcer() -> casbin.Enforcer:
    # The policy is a file shipped with the code: every process reads the same rules.
    # pycasbin logs the whole model and policy at INFO while loading them: keep that out of the
    # server's log (it maps every role's powers) and log how many rules were loaded instead.
    # (pycasbin disables that logger itself, but only after loading.)
    logging.getLogger("casbin.policy").disabled = True
    enforcer = casbin.Enforcer(str(_HERE / "model.conf"), str(_HERE / "policy.csv"))
    model = enforcer.get_model().model
    rules = sum(len(ast.policy) for sec in ("p", "g") if sec in model for ast in model[sec].values())
    log.info("authorisation policy loaded: %d rules", rules)
    return enforcer


# pycasbin's Enforcer is not safe to call from several threads at once: requests served in worker
# threads that all missed the memo below at a process's start have raised SystemError from inside
# its matcher's expression parser. Calls into it are one at a time (only misses reach it).
_ENFORCE_LOCK = threading.Lock()


@lru_cache(maxsize=512)
def _allowed(role: str, obj: str, act: str, rel: str) -> bool:
    # Pure function of the (static) policy, so memoising it is safe; grants and ownership
    # are never part of the key — they are read from the database at decision time.
    with _ENFORCE_LOCK:
        return bool(_enforcer().enforce(role, obj, act, rel))


@lru_cache(maxsize=4096)
def _allowed_any(role: str, action: Action, rels: frozenset[Relation]) -> bool:
    # The same pure function of the policy, one lookup per decision (a page decides ~20 times).
    return any(_allowed(role, action.obj, action.act, rel.value) for rel in rels)


_NO_OBJECT = frozenset({Relation.ANY})


def allowed_relations(role: str, action: Action) -> set[Relation]:
    """Which relations make `action` allowed for `role` (the basis of list scopes)."""
    return {rel for rel in Relation if _allowed(role, action.obj, action.act, rel.value)}


@lru_cache(maxsize=1024)
def _may(role: str, action: Action) -> bool:
    return bool(allowed_relations(role, action))  # a pure function of the policy, as _allowed


def may_perform(actor: Actor, action: Action) -> bool:
    """Whether the role may do the action on at least some object (route-level gate)."""
    return _may(actor.role, action)


def relations_to_file(actor: Actor, owner_id: int, unit_path: str,
                      grant: Relation | None = None) -> set[Relation]:
    """How the actor stands to a file. `grant` is the relation of an active grant the caller
    read from the database at this moment (never cached)."""
    rels = {Relation.ANY}
    if grant in (Relation.GRANTED, Relation.GRANTED_EDIT):
        rels.add(grant)
    if actor.user_id is not None and owner_id == actor.user_id:
        rels.add(Relation.OWN)
    # A leader answers for the units below them; a POS terminal serves the members of its unit.
    if actor.role in ("leader", "terminal") and actor.unit_path and unit_path.startswith(actor.unit_path):
        rels.add(Relation.LED)
    return rels


def can(actor: Actor, action: Action, *, owner_id: int | None = None, unit_path: str = "",
        grant: Relation | None = None) -> bool:
    """Decision for one object (a customer file given by its owner, unit path and any active
    grant the actor holds on it) or, without an owner, for no object in particular."""
    if owner_id is None:
        return _allowed_any(actor.role, action, _NO_OBJECT)
    return _allowed_any(actor.role, action, frozenset(relations_to_file(actor, owner_id, unit_path, grant)))
