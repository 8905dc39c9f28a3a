"""Read, then audit, then show: a page's reads in one read transaction, its audit entries appended
and committed after it.

A page that reads personal data or an audited list used to do it all in one write transaction
(`Database.write()`): its reads, its decryption and its audit entry. On SQLite that held the one
writer lock for the whole page, so every other process's writes (each audited page's own entry
among them) waited on the slowest page's reads. `read_then_audit()` gives the page a read
transaction instead (a snapshot): `audit.record()` calls made in it are kept, and when the reads
end they are appended and committed in one short write transaction (`audit.append_all_committed`: on
SQLite the writer lock is held for the appends alone). If an entry
cannot be written the exception propagates and the caller shows nothing: audit before reveal still
holds. If the reads raise, no entry is appended (as the write transaction would have rolled them
back). The body may write nothing but audit entries: a flush of any other change raises.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import Session

from .service import DEFERRED, append_all_committed


class WroteInARead(RuntimeError):
    """Something other than an audit entry was written in a read_then_audit() transaction."""


@event.listens_for(Session, "before_flush")
def _refuse_writes(session: Session, _flush_context, _instances) -> None:
    # One listener on every session (a dict lookup on a flush), not one added and removed per page.
    if DEFERRED in session.info and (session.new or session.deleted
                                     or any(session.is_modified(o) for o in session.dirty)):
        raise WroteInARead("a read_then_audit() page tried to write; use Database.write()")


@contextmanager
def read_then_audit(db) -> Iterator[Session]:
    """A read transaction (``db``: a portal.db.Database) whose audit entries are appended and
    committed when it ends, in the order recorded; see the module's docstring."""
    entries: list = []
    with db.read() as s:
        s.info[DEFERRED] = entries
        try:
            yield s
        finally:
            s.info.pop(DEFERRED, None)
    if entries:
        append_all_committed(db, entries)
