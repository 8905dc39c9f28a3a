"""driver_sql.Prebuilt: a statement on the driver's cursor reads and writes as SQLAlchemy would,
fails as SQLAlchemy would, and stays in the caller's transaction."""
from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, text

from portal import clock
from portal.audit.models import AuditEvent
from portal.driver_sql import Prebuilt

_E = AuditEvent.__table__.c


def test_rows_and_their_types_as_sqlalchemy_reads_them(db, story):
    stmt = select(_E.seq, _E.at, _E.actor_id, _E.action, _E.hash).where(_E.seq > 0).order_by(_E.seq).limit(5)
    with db.connect_read() as conn:
        mine = Prebuilt(stmt).all(conn)
        assert mine == [tuple(r) for r in conn.execute(stmt)]
    assert mine and mine[0][1].tzinfo is not None  # the UTC datetime column's conversion


def test_a_driver_error_is_sqlalchemys_and_rolls_back_the_callers_transaction(db, story):
    at = clock.now()
    with pytest.raises(sa_exc.ProgrammingError if not db.sqlite else sa_exc.OperationalError):
        with db.connect_write() as conn:
            Prebuilt(text("UPDATE audit_head SET hash = :h WHERE id = 1")).run(conn, {"h": "x" * 64})
            Prebuilt(text("SELECT * FROM no_such_table WHERE :at IS NOT NULL")).all(conn, {"at": at})
    with db.connect_read() as conn:
        assert conn.execute(text("SELECT hash FROM audit_head WHERE id = 1")).scalar() != "x" * 64


def test_a_raw_write_commits_its_statements_or_rolls_them_back(db, story):
    """Database.raw_write: BEGIN and COMMIT on the driver itself (the audit append's transaction)."""
    head = Prebuilt(text("SELECT hash FROM audit_head WHERE id = 1"))
    with db.connect_read() as conn:
        before = head.all(conn)[0][0]
    with pytest.raises(sa_exc.ProgrammingError if not db.sqlite else sa_exc.OperationalError):
        with db.raw_write() as raw:
            Prebuilt(text("UPDATE audit_head SET hash = :h WHERE id = 1")).run_raw(raw, {"h": "x" * 64})
            assert head.all_raw(raw) == [("x" * 64,)]  # seen inside its own transaction
            Prebuilt(text("SELECT * FROM no_such_table")).all_raw(raw)
    with db.connect_read() as conn:
        assert head.all(conn)[0][0] == before
    with db.raw_write() as raw:
        Prebuilt(text("UPDATE audit_head SET hash = :h WHERE id = 1")).run_raw(raw, {"h": before})
    with db.raw_write() as raw:  # and the connection went back to the pool clean
        assert head.all_raw(raw) == [(before,)]


def test_a_raw_read_reads_what_a_core_connection_reads(db, story):
    """Database.raw_read: Prebuilt statements on the driver's connection in a read transaction."""
    stmt = Prebuilt(select(_E.seq, _E.at, _E.action, _E.hash).where(_E.seq > 0).order_by(_E.seq).limit(5))
    with db.connect_read() as conn:
        theirs = stmt.all(conn)
    with db.raw_read() as raw:
        assert stmt.all(raw) == theirs and theirs
    with pytest.raises(sa_exc.ProgrammingError if not db.sqlite else sa_exc.OperationalError):
        with db.raw_read() as raw:
            Prebuilt(text("SELECT * FROM no_such_table")).all(raw)
    with db.raw_read() as raw:  # the connection went back to the pool usable
        assert stmt.all(raw) == theirs


def test_a_raw_read_gives_its_connection_back_to_the_pool_as_it_found_it(db, story):
    """On PostgreSQL a raw read runs in autocommit (no BEGIN, no ROLLBACK): every connection the
    pool hands out afterwards, after a read that failed too, is out of autocommit again, so the
    next write transaction on it is one."""
    stmt = Prebuilt(select(_E.seq).where(_E.seq > 0).limit(1))
    with db.raw_read() as raw:
        assert stmt.all(raw)
    with pytest.raises(sa_exc.ProgrammingError if not db.sqlite else sa_exc.OperationalError):
        with db.raw_read() as raw:
            Prebuilt(text("SELECT * FROM no_such_table")).all(raw)
    if db.sqlite:
        return  # SQLite's reads begin their own transaction; nothing else to check
    held = [db.read_engine.raw_connection() for _ in range(3)]  # the pool's recent connections
    try:
        assert all(c.dbapi_connection.autocommit is False for c in held)
    finally:
        for c in held:
            c.close()
