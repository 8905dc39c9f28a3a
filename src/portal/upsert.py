"""The summaries' one write: add figures to a key's row, inserting it when it is not there yet
(``INSERT ... ON CONFLICT DO UPDATE SET f = f + excluded.f``), so that concurrent writers in
several processes add up instead of overwriting each other. Both databases have the statement;
only the dialect's ``insert`` differs."""
from __future__ import annotations

from sqlalchemy.orm import Session


def insert_for(s: Session):
    """The ``insert`` construct of the session's dialect (one with ``on_conflict_do_*``)."""
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def add_up(s: Session, table, keys, figures, rows: list[dict]) -> None:
    """Add each row's ``figures`` to the row of ``table`` (a Table or a mapped class) with the same
    ``keys``; rows whose figures are all zero are skipped."""
    rows = [r for r in rows if any(r[f] for f in figures)]
    if not rows:
        return
    t = getattr(table, "__table__", table)
    stmt = insert_for(s)(t)
    stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={f: t.c[f] + stmt.excluded[f] for f in figures})
    s.execute(stmt, rows)
