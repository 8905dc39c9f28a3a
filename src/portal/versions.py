"""Versioned settings: rows that take effect from a day (or a moment) and are never edited.

The programme's settings, the credit terms, the member-service settings, the message rules and
the retention of lapsed members' files are each a table of versions with a unique
``effective_from``. This module is the one place that knows how the version in force is found,
how a new version's start is checked, and how it is added when two administrators save the same
day at once (the unique index decides; the loser is told at the field, nothing is written).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .customers.service import InvalidInput

V = TypeVar("V")

IN_THE_PAST = "A new version starts today or later: the past is never rewritten."
DAY_TAKEN = "A version already starts on that day: choose another day."


# The statement of each model, built once (the file page reads the programme's on every view).
_IN_FORCE: dict[type, object] = {}


def in_force(s: Session, model: type[V], at: date | datetime) -> V | None:
    """The newest version with ``effective_from <= at``, or None (the defaults apply)."""
    stmt = _IN_FORCE.get(model)
    if stmt is None:
        stmt = _IN_FORCE[model] = (select(model).where(model.effective_from <= bindparam("at"))
                                   .order_by(model.effective_from.desc()).limit(1))
    return s.scalar(stmt, {"at": at})


def newest_first(s: Session, model: type[V]) -> list[V]:
    """Every version, the latest start first (coming ones included)."""
    return list(s.scalars(select(model).order_by(model.effective_from.desc())))


def check_start(s: Session, model: type, start: date | datetime, today: date | datetime,
                errors: dict[str, str], field: str = "effective_from") -> None:
    """Name what is wrong with a new version starting at ``start`` in ``errors[field]``: a day
    in the past, or a day that already has a version."""
    if start < today:
        errors[field] = IN_THE_PAST
    elif s.scalar(select(model.id).where(model.effective_from == start)) is not None:
        errors[field] = DAY_TAKEN


def add(s: Session, row: V, field: str = "effective_from") -> V:
    """Insert a new version in the caller's transaction. Another one saved for the same start a
    moment ago (the unique index) is refused as InvalidInput at ``field``; the caller's
    transaction stays usable (a savepoint)."""
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError:
        raise InvalidInput({field: DAY_TAKEN}) from None
    return row
