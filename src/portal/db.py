"""Database engines and transactions; SQLite pragmas; a UTC datetime column type."""
from __future__ import annotations

import os
import stat
import time
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from sqlalchemy import DateTime, String, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from .driver_sql import RawTransaction, driver_error
from .writer_gate import LoopCall, WriterGate, begin_at_once, busy, not_on_loop, trying


class UTCDateTime(TypeDecorator):
    """Stores naive UTC (SQLite has no time zones), returns aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use portal.clock.now()")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


# Materialised unit paths compare bytewise ("C" collation on PostgreSQL; SQLite's default is binary),
# so a subtree is a contiguous index range.
PATH_TYPE = String(255).with_variant(String(255, collation="C"), "postgresql")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


# The database and the files SQLite keeps beside it (write-ahead log, shared memory, rollback
# journal) and our writer lock: they hold password and PIN hashes, so the owner's alone.
SQLITE_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal", ".writelock")


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other databases and in-memory ones)."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:" \
            or u.database.startswith("file:"):
        return None
    return Path(u.database)


def secure_sqlite_files(url: str) -> list[Path]:
    """Make the SQLite data directory 0700 (when creating it) and the database files 0600.

    The database file is created here, empty and 0600, before SQLite opens it: SQLite gives
    the -wal and -shm files it creates later the database file's mode, whatever the umask.
    Files from an older install that others can read are narrowed to 0600; returns those.
    A directory that already exists is left as it is (it may be shared, e.g. /tmp).
    """
    path = sqlite_path(url)
    if path is None:
        return []
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(parent, 0o700)  # mkdir's mode passes through the umask
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    narrowed = []
    for suffix in SQLITE_FILE_SUFFIXES:
        p = Path(str(path) + suffix)
        try:
            mode = stat.S_IMODE(p.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            try:
                os.chmod(p, 0o600)
                narrowed.append(p)
            except PermissionError:  # another user's file: nothing we may do about it here
                pass
    return narrowed


BUSY_TIMEOUT_MS = 30000  # a writer waits this long for SQLite's lock (the gate queues most of them)


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    secure_sqlite_files(url)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           pool_size=8, max_overflow=8)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # Deleted content is overwritten with zeros, so a destroyed customer key (subject_keys.py)
        # does not linger in a page's free space or on the freelist.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # Writers take the lock up front: a deferred transaction that read first and
        # then writes fails with SQLITE_BUSY_SNAPSHOT when another writer got in between.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


# A pooled PostgreSQL connection idle this long is pinged before use (a restarted server or a
# dropped connection is then replaced, not handed to a request); a busy server reuses its
# connections within milliseconds and pays no extra round trip per checkout (pool_pre_ping did).
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_after_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy):
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool discards this connection and checks out another
            raise sa_exc.DisconnectionError() from exc


def _no_jit(engine: Engine) -> None:
    """PostgreSQL's JIT compiles a query whose estimated cost is high before running it: the
    report queries over a scope of many members cost ~1 s of compiling to save a few ms of
    running (measured: the visit coverage at 10k files, 1.1 s of 1.2 s). The portal's queries are
    short and indexed, so each connection turns it off (a SET, so a pooler in session mode keeps it)."""
    @event.listens_for(engine, "connect")
    def _set(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        try:
            cur.execute("SET jit = off")
        finally:
            cur.close()
        dbapi_conn.commit()


# The transaction the current code runs in: a customer's own data key (subject_keys.py) is read
# in it, so a value can be opened wherever it is read (the key's row may not be committed yet).
_CURRENT: ContextVar[Session | None] = ContextVar("portal_session", default=None)


def current_session() -> Session | None:
    """The innermost open `Database.write()` or `read()` session of this thread or task."""
    return _CURRENT.get()


@contextmanager
def _current(session: Session) -> Iterator[None]:
    token = _CURRENT.set(session)
    try:
        yield
    finally:
        try:
            _CURRENT.reset(token)
        except ValueError:  # left in another context than it was entered in
            _CURRENT.set(None)


class Database:
    """Engines for one database URL: `write()` and `read()` transactions."""

    def __init__(self, url: str, *, audit_signer=None):
        self.url = url
        # Signs audit checkpoints (portal.audit.checkpoints.Signer); handed to every write session.
        self.audit_signer = audit_signer
        self.sqlite = is_sqlite(url)
        self._gate = None
        self._loop_reader = None  # (pid, sqlite3 connection): loop_reader()
        if self.sqlite:
            self.engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
            db_file = make_url(url).database
            self._gate = WriterGate(db_file + ".writelock" if db_file and db_file != ":memory:" else None)
        else:
            self.engine = create_engine(url, pool_size=10, max_overflow=10)
            _ping_after_idle(self.engine)
            _no_jit(self.engine)
            self.read_engine = self.engine
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One use case, one transaction: committed on success, rolled back on any error."""
        not_on_loop("a write session")
        if self._gate is None:
            with self._write() as session, session.begin(), _current(session):
                session.info["audit_signer"] = self.audit_signer
                yield session
            return
        with self._gate.held(), self._write() as session, session.begin(), _current(session):
            session.info["audit_signer"] = self.audit_signer
            yield session

    def refresh_statistics(self) -> bool:
        """SQLite: gather the planner's statistics (sqlite_stat1: ANALYZE, sampling at most 1,000
        rows per index, about two seconds at 1M files). Without them SQLite guesses each table's
        size and may walk every file in scope to find a handful of complaints; with them it starts
        from the smaller table. PostgreSQL's autovacuum keeps its own statistics (bulk loads
        ANALYZE what they wrote), so nothing is done there. True when statistics were gathered."""
        if not self.sqlite:
            return False
        with self.connect_write() as conn:
            conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            conn.exec_driver_sql("ANALYZE")
        return True

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session, session.begin(), _current(session):
            yield session

    @contextmanager
    def connect_read(self) -> Iterator[Connection]:
        """A Core connection for the hot paths' prebuilt statements (no ORM session, no identity
        map): one read transaction (a snapshot on PostgreSQL per statement, on SQLite from the
        first read), rolled back on exit."""
        with self.read_engine.connect() as conn:
            yield conn

    @contextmanager
    def connect_write(self) -> Iterator[Connection]:
        """A Core connection in a short write transaction, committed on success and rolled back on
        any error (on SQLite behind the writer gate, BEGIN IMMEDIATE). Never open it inside a
        `write()` of the same thread: on SQLite the second connection would wait on the first."""
        not_on_loop("a write connection")
        if self._gate is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._gate.held(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def raw_read(self) -> Iterator[RawTransaction]:
        """`connect_read()` for the hot paths' prebuilt statements (`Prebuilt.all` takes it where
        it takes a Connection): the read engine's pooled driver connection, in a read transaction
        begun on the driver (SQLite: `BEGIN`, one snapshot from the first read, rolled back on
        exit). PostgreSQL gives each statement its own snapshot in a transaction or out of one
        (READ COMMITTED), so its reads run in autocommit: no BEGIN before them and no ROLLBACK
        after, two round trips fewer; the connection goes back to the pool out of autocommit (or
        is discarded if it cannot be set back)."""
        fairy = self.read_engine.raw_connection()
        dbapi = fairy.dbapi_connection
        dialect = self.read_engine.dialect
        try:
            if self.sqlite:
                try:
                    dbapi.execute("BEGIN")
                except dialect.loaded_dbapi.Error as exc:
                    raise driver_error(dialect, fairy, exc, "BEGIN") from exc
                yield RawTransaction(fairy, dialect)
            else:
                with autocommit(fairy):
                    yield RawTransaction(fairy, dialect)
        finally:
            _rollback(dbapi)
            fairy.close()

    @contextmanager
    def raw_write(self) -> Iterator[RawTransaction]:
        """`connect_write()` for a hot path's few prebuilt statements (`Prebuilt.run_raw` /
        `all_raw`): the pooled driver connection in a short write transaction begun and ended on
        the driver itself, without SQLAlchemy's Connection, events and transaction objects. On
        SQLite: behind the writer gate, `BEGIN IMMEDIATE` ... `COMMIT`; on PostgreSQL the driver's
        own BEGIN (psycopg opens a transaction at the first statement) and COMMIT. Committed when
        the block ends, rolled back on any error (a failed COMMIT raises, as SQLAlchemy's error).

        On the event loop (writer_gate.on_loop(), SQLite only), until a write is committed, the gate
        and SQLite's own lock are only tried: either taken, it raises WriterBusy before writing."""
        call = trying()
        if call is not None and not self.sqlite:
            raise busy(call, "PostgreSQL is written from a worker thread")
        if self._gate is None:
            yield from self._raw_write(call)
            return
        with self._gate.held():
            yield from self._raw_write(call)

    def _raw_write(self, call: LoopCall | None = None) -> Iterator[RawTransaction]:
        dialect = self.engine.dialect
        fairy = self.engine.raw_connection()  # the pool's checkout (and its idle ping) as usual
        dbapi = fairy.dbapi_connection
        sql = "BEGIN IMMEDIATE"
        try:
            try:
                if call is not None:
                    begin_at_once(dbapi, call, dialect.loaded_dbapi.OperationalError, BUSY_TIMEOUT_MS)
                elif self.sqlite:
                    dbapi.execute(sql)
                yield RawTransaction(fairy, dialect)
                sql = "COMMIT"
                if self.sqlite:
                    dbapi.execute(sql)
                    if call is not None:
                        call.written += 1
                else:
                    dbapi.commit()
            except dialect.loaded_dbapi.Error as exc:
                _rollback(dbapi)
                raise driver_error(dialect, fairy, exc, sql) from exc
            except BaseException:
                _rollback(dbapi)
                raise
        finally:
            fairy.close()  # back to the pool (its reset rolls back nothing: committed or rolled back)

    def loop_ready(self) -> bool:
        """Whether a page's reads and its one audit append may run on the event loop now
        (writer_gate.py): a SQLite file, and a read connection free in the pool, so that the loop
        never waits for one the worker threads hold. PostgreSQL's reads go over a socket: never."""
        if self._gate is None or self._gate.path is None:  # PostgreSQL, or SQLite in memory
            return False
        pool = self.read_engine.pool
        return pool.checkedout() < pool.size()

    def loop_reader(self):
        """A SQLite file's own driver connection for the event loop's one read per request (the
        session lookup), or None (PostgreSQL, or an in-memory database): outside the pool, so the
        loop never waits for a pooled connection the worker threads hold. Autocommit and read
        only: each statement is its own snapshot, and in WAL mode a read never waits for a writer.
        Opened once per process (and again after a fork)."""
        held = self._loop_reader
        if held is None or held[0] != os.getpid():
            path = sqlite_path(self.url) if self.sqlite else None
            if path is None:
                return None
            import sqlite3
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA query_only=ON")
            held = self._loop_reader = (os.getpid(), conn)
        return held[1]

    def drop_loop_reader(self) -> None:
        held, self._loop_reader = self._loop_reader, None
        if held is not None and held[0] == os.getpid():
            held[1].close()

    def dispose(self) -> None:
        self.drop_loop_reader()
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


@contextmanager
def autocommit(fairy) -> Iterator[None]:
    """A pooled PostgreSQL driver connection (psycopg) in autocommit for the block: its
    statements need no BEGIN before them and no ROLLBACK after (two round trips). Set back when
    the block ends, or the connection invalidated if it cannot be: a connection must never go back
    to the pool in autocommit, where the next transaction on it would commit statement by
    statement."""
    dbapi = fairy.dbapi_connection
    if dbapi.autocommit:
        yield
        return
    dbapi.autocommit = True  # an attribute of psycopg's: no round trip on an idle connection
    try:
        yield
    finally:
        try:
            dbapi.autocommit = False
        except Exception:  # noqa: BLE001 - a broken connection: discarded, never pooled
            fairy.invalidate()


def _rollback(dbapi) -> None:
    try:
        dbapi.rollback()
    except Exception:  # noqa: BLE001 - a lost connection: the pool invalidates it on return
        pass


def utcnow_naive() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
