"""Planner hints shared by the hand-tuned statements (customers.listing, service.due)."""
from __future__ import annotations

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal


class no_index(ColumnElement):
    """A column that no index may serve: SQLite's unary ``+column``; elsewhere the column itself.
    For a condition that must filter the rows an index walk found, not choose the walk."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]  # the cache key names the column

    def __init__(self, column):
        self.column = column
        self.type = column.type


@compiles(no_index)
def _no_index_default(element, compiler, **kw):
    return compiler.process(element.column, **kw)


@compiles(no_index, "sqlite")
def _no_index_sqlite(element, compiler, **kw):
    return "+" + compiler.process(element.column, **kw)
