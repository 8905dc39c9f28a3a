"""A statement within the actor's scope, built once per scope shape and run on the driver.

Building a Core statement with the scope's subqueries, generating its cache key and running it
through the ORM session costs a few hundred microseconds of Python each time, about ten times
what an indexed count costs the database; a home page runs a dozen of them. `Scoped` builds
its statement once per scope shape (policy.scope.scope_shape: which arms, which grant scopes),
with the arms' values as bound parameters, and runs it as a driver_sql.Prebuilt with each
actor's values (arm_values, read at each run: a grant that expired a moment ago drops out).
Two salespeople share one statement; a leader's differs by its arms, not by its units.
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Hashable
from functools import reduce
from typing import Any

from sqlalchemy import false, func, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..accounts.actor import Actor
from ..customers.models import CustomerFile, CustomerFileTally
from ..driver_sql import Prebuilt
from .actions import Action, Relation
from .scope import arm_clause, arm_values, scope_shape


class ScopeArms:
    """The scope of one shape, for a statement's builder: `clauses()` its arms (None: every row
    is in scope), `any()` the OR of them. Their values are required bound parameters."""

    __slots__ = ("rels", "grant_scopes")

    def __init__(self, rels: tuple[Relation, ...] | None, grant_scopes: tuple[str, ...]):
        self.rels = rels
        self.grant_scopes = grant_scopes

    def clauses(self, **columns) -> list[tuple[Relation, ColumnElement[bool]]] | None:
        """Each arm with the relation it stands for. ``columns``: owner, unit_path and file_id
        when the rows are not customer files but carry copies of their file's (memberships)."""
        if self.rels is None:
            return None
        return [(rel, arm_clause(rel, self.grant_scopes, **columns)) for rel in self.rels]

    def any(self, **columns) -> ColumnElement[bool]:
        arms = self.clauses(**columns)
        if arms is None:
            return true()
        return or_(*(clause for _, clause in arms)) if arms else false()


class Scoped:
    """``Scoped(action, build)``: ``build(scope, *variant)`` returns the statement (its WHERE
    holds ``scope.any()`` or the arms one by one); ``.all(conn, actor, params)`` runs it for the
    actor as plain tuples, ``.scalar(...)`` its first value. ``variant``: what else changes the
    statement's text (the length of a list of values, say), part of the cache key.
    ``conn``: a Core Connection (``session.connection()``) or a driver_sql.RawTransaction."""

    __slots__ = ("action", "build", "_stmts")

    def __init__(self, action: Action, build: Callable[..., Any]):
        self.action = action
        self.build = build
        self._stmts: dict[tuple, Prebuilt] = {}

    def _prebuilt(self, shape, variant: tuple[Hashable, ...]) -> Prebuilt:
        key = (shape, variant)
        stmt = self._stmts.get(key)
        if stmt is None:
            scope = ScopeArms(*shape) if shape is not None else ScopeArms(None, ())
            if len(self._stmts) > 256:  # shapes are few; a variant must not grow it for ever
                self._stmts.clear()
            stmt = self._stmts[key] = Prebuilt(self.build(scope, *variant))
        return stmt

    def all(self, conn, actor: Actor, params: dict[str, Any] | None = None,
            variant: tuple[Hashable, ...] = ()) -> list[tuple]:
        shape = scope_shape(actor, self.action)
        values = arm_values(actor) if shape is not None else {}
        if params:
            values.update(params)
        return self._prebuilt(shape, variant).all(conn, values)

    def scalar(self, conn, actor: Actor, params: dict[str, Any] | None = None,
               variant: tuple[Hashable, ...] = ()) -> Any:
        rows = self.all(conn, actor, params, variant)
        return rows[0][0] if rows else None


def _arm_counts(scope: ScopeArms):
    """One count per arm, each without the files of the arms counted before it, summed in one
    statement (each a scalar subquery the planner gives its own index range). A leader's units
    and a salesperson's own files are read from customer_file_tally (files per owner and unit
    path, a few hundred rows), not counted; the grants, few, are counted from the files.

    customer_scope() is an OR of the arms, and PostgreSQL cannot walk an index for an OR whose
    GRANTED arm is ``id IN (subquery)``: it reads the whole table (60 ms for a salesperson at
    100k files, seconds at 1M). One arm at a time, the widest first (LED, OWN, GRANTED), each
    excluding the ones before it, counts every file once however the arms overlap."""
    tallied = select(func.coalesce(func.sum(CustomerFileTally.files), 0))
    arms = scope.clauses()
    if arms is None:
        return tallied
    if not arms:
        return select(CustomerFile.id).where(false()).limit(1)  # no row: the count is 0
    on_tally = dict(scope.clauses(owner=CustomerFileTally.owner_id, unit_path=CustomerFileTally.unit_path))
    order = {Relation.LED: 0, Relation.OWN: 1, Relation.GRANTED: 2}
    parts, before, before_tally = [], [], []
    for rel, clause in sorted(arms, key=lambda arm: order[arm[0]]):
        if rel is Relation.GRANTED:
            part = select(func.count()).select_from(CustomerFile).where(clause, *(~e for e in before))
        else:  # LED and OWN come before GRANTED: they exclude tallied arms alone
            part = tallied.where(on_tally[rel], *(~e for e in before_tally))
            before_tally.append(on_tally[rel])
        parts.append(part.scalar_subquery())
        before.append(clause)
    return select(reduce(operator.add, parts))


_COUNTS = {action: Scoped(action, _arm_counts) for action in (Action.CUSTOMER_LIST, Action.CUSTOMER_EXPORT)}


def count_in_scope(s: Session, actor: Actor, action: Action) -> int:
    """How many customer files are in the actor's scope (see _arm_counts)."""
    counter = _COUNTS.get(action) or _COUNTS.setdefault(action, Scoped(action, _arm_counts))
    return int(counter.scalar(s.connection(), actor) or 0)
