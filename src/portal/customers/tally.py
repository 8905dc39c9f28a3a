"""customer_file_tally: files per (owner, unit path), kept in the transaction that creates or
moves a file (customers.service.create_file, reassign_file; the bench's bulk seed adds its
batches). Concurrent writers add up (upsert.add_up), so two processes creating files for the
same salesperson at once both count."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ..upsert import add_up
from .models import CustomerFile, CustomerFileTally

REBUILD = ("INSERT INTO customer_file_tally (owner_id, unit_path, files) "
           "SELECT owner_id, unit_path, count(*) FROM customer_file GROUP BY owner_id, unit_path")


def add(s: Session, moves: Counter[tuple[int, str]]) -> None:
    """Add each (owner_id, unit_path)'s number (negative: files moved away)."""
    add_up(s, CustomerFileTally, ("owner_id", "unit_path"), ("files",),
           [{"owner_id": owner, "unit_path": path, "files": n} for (owner, path), n in sorted(moves.items())])


def created(s: Session, owner_id: int, unit_path: str) -> None:
    add(s, Counter({(owner_id, unit_path): 1}))


def moved(s: Session, old: tuple[int, str], new: tuple[int, str]) -> None:
    if old != new:
        add(s, Counter({old: -1, new: 1}))


def rebuild(s: Session) -> None:
    """The tally from the files themselves (one INSERT ... SELECT: the rows stay in the database)."""
    s.execute(CustomerFileTally.__table__.delete())
    s.execute(text(REBUILD))


def differences(s: Session) -> list[tuple[int, str, int, int]]:
    """(owner_id, unit_path, tallied, counted) wherever the tally and the files disagree."""
    counted = {(o, p): n for o, p, n in s.execute(
        select(CustomerFile.owner_id, CustomerFile.unit_path, func.count()).group_by(
            CustomerFile.owner_id, CustomerFile.unit_path))}
    tallied = {(o, p): n for o, p, n in s.execute(
        select(CustomerFileTally.owner_id, CustomerFileTally.unit_path, CustomerFileTally.files))}
    return [(o, p, tallied.get((o, p), 0), counted.get((o, p), 0))
            for o, p in sorted(set(counted) | set(tallied)) if tallied.get((o, p), 0) != counted.get((o, p), 0)]
