"""The policy's owner and unit arms, the unit and the tier filters, over a summary table's key
columns (the same clauses ``rollup.summary_where`` builds over report_month)."""
from __future__ import annotations

from sqlalchemy import false, true
from sqlalchemy.sql import ColumnElement

from ..accounts.actor import Actor
from ..policy import Action
from ..policy.actions import Relation
from ..policy.scope import arm_clause, arm_values, scope_shape, subtree_range


def scope_arms(actor: Actor, owner, unit_path, *, action: Action = Action.REPORT_VIEW
               ) -> list[ColumnElement] | None:
    """One clause per arm of the scope ([] = nothing in scope; [true] = everything), or None when
    the scope has grants to single files (the live query answers those)."""
    shape = scope_shape(actor, action)
    if shape is None:
        return [true()]  # every member
    arms, grant_scopes = shape
    if Relation.GRANTED in arms:
        return None
    if not arms:
        return [false()]
    values = arm_values(actor)
    return [arm_clause(rel, grant_scopes, bind=values.__getitem__, owner=owner, unit_path=unit_path) for rel in arms]


def filters(f, unit_path, tier) -> list[ColumnElement]:
    """The report filter's unit (a subtree) and tier over the summary's columns."""
    conds: list[ColumnElement] = []
    if f.unit is not None:
        lo, hi = subtree_range(f.unit.path)
        conds += [unit_path >= lo, unit_path < hi]
    if f.tier:
        conds.append(tier == f.tier)
    return conds
