"""The list, search and file pages on the event loop (views/offload.py, writer_gate.py): on SQLite
their reads and their one audit append run on the loop; if the writer lock is taken, nothing is
written there and the whole call runs again in a worker thread, where it waits as writers do. The
loop never waits for the lock, nor for SQLite's busy handler, until it has committed a write."""
from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
import time

import pytest
from sqlalchemy import func, select

from portal.accounts.actor import Actor
from portal.audit import service as audit
from portal.audit.models import AuditEvent
from portal.db import BUSY_TIMEOUT_MS
from portal.views import offload
from portal.writer_gate import WriterBusy

from .browser import signed_in

ROBOT = Actor.system("test")


def _count(db, action: str = "test.offload") -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


class Work:
    """A page's work: a read, then one audit entry; remembers the thread of each run."""

    def __init__(self, db, *, writes: int = 1, swallow: bool = False, session: bool = False):
        self.db, self.writes, self.swallow, self.session = db, writes, swallow, session
        self.threads: list[str] = []

    def __call__(self, value: str) -> str:
        self.threads.append(threading.current_thread().name)
        with self.db.read() as s:
            s.scalar(select(func.count()).select_from(AuditEvent))
        for _ in range(self.writes):
            try:
                if self.session:
                    with self.db.write() as s:
                        audit.record(s, ROBOT, "test.offload", detail=value)
                else:
                    audit.append_committed(self.db, ROBOT, "test.offload", detail=value)
            except WriterBusy:
                if not self.swallow:
                    raise
        return value


def _run(db, work: Work, value: str = "v") -> str:
    return asyncio.run(offload.page_work(db, work, value))


class LockHeld:
    """Another thread of the process holds the writer lock from ``start()`` until ``seconds``
    later; ``join()`` waits for it to let go."""

    def __init__(self, db, seconds: float = 0.3):
        self.db, self.seconds = db, seconds
        self.held, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        with self.db._gate.held():
            self.held.set()
            self.release.wait(10)

    def start(self) -> "LockHeld":
        self.thread.start()
        self.held.wait(5)
        threading.Timer(self.seconds, self.release.set).start()
        return self

    def join(self) -> None:
        self.thread.join()


@pytest.fixture
def sqlite_db(db):
    if not db.sqlite:
        pytest.skip("the loop serves SQLite's pages only (PostgreSQL: see test_postgresql_is_never_on_the_loop)")
    return db


def test_a_free_writer_lock_serves_the_call_on_the_loop(sqlite_db):
    work = Work(sqlite_db)
    assert _run(sqlite_db, work) == "v"
    assert work.threads == [threading.current_thread().name]  # no worker thread
    assert _count(sqlite_db) == 1


def test_a_lock_held_in_the_process_sends_the_call_to_a_thread_and_it_waits_there(sqlite_db):
    lock = LockHeld(sqlite_db).start()
    work = Work(sqlite_db)
    started = time.monotonic()
    assert _run(sqlite_db, work) == "v"
    lock.join()
    assert time.monotonic() - started >= 0.25  # the thread waited for the lock
    assert len(work.threads) == 2 and work.threads[0] == threading.current_thread().name
    assert work.threads[1] != work.threads[0]
    assert _count(sqlite_db) == 1  # nothing written on the loop's try
    with sqlite_db.read() as s:
        assert audit.verify_chain(s).ok


def test_a_lock_held_by_another_process_sends_the_call_to_a_thread(sqlite_db):
    # flock(2) locks belong to an open file description: another open of the gate's file stands
    # for another process's.
    fd = os.open(sqlite_db._gate.path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    threading.Timer(0.3, fcntl.flock, (fd, fcntl.LOCK_UN)).start()
    work = Work(sqlite_db)
    try:
        assert _run(sqlite_db, work) == "v"
    finally:
        os.close(fd)
    assert len(work.threads) == 2 and work.threads[1] != threading.current_thread().name
    assert _count(sqlite_db) == 1


def test_sqlites_lock_held_outside_the_gate_never_makes_the_loop_wait(sqlite_db, settings):
    # Another program's write transaction: the loop's BEGIN IMMEDIATE is refused at once (not after
    # the 30-second busy handler), the thread's waits until the lock is free.
    other = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"), isolation_level=None,
                            check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.5, other.commit).start()
    work = Work(sqlite_db)
    attempts: list[float] = []
    real = offload.anyio.to_thread.run_sync

    async def timed(fn):
        attempts.append(time.monotonic())
        return await real(fn)

    started = time.monotonic()
    offload.anyio.to_thread.run_sync = timed
    try:
        assert _run(sqlite_db, work) == "v"
    finally:
        offload.anyio.to_thread.run_sync = real
        other.close()
    assert attempts and attempts[0] - started < 0.4  # the loop gave up at once
    assert len(work.threads) == 2 and _count(sqlite_db) == 1
    fairy = sqlite_db.engine.raw_connection()
    try:  # the pooled connection waits again as every writer does
        assert fairy.dbapi_connection.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
    finally:
        fairy.close()


def test_a_call_that_swallows_writer_busy_is_still_run_again_in_a_thread(sqlite_db):
    lock = LockHeld(sqlite_db, 0.2).start()
    work = Work(sqlite_db, swallow=True)
    assert _run(sqlite_db, work) == "v"
    lock.join()
    assert len(work.threads) == 2 and _count(sqlite_db) == 1


def test_a_write_session_is_opened_in_a_thread(sqlite_db):
    work = Work(sqlite_db, session=True)
    assert _run(sqlite_db, work) == "v"
    assert len(work.threads) == 2 and work.threads[1] != threading.current_thread().name
    assert _count(sqlite_db) == 1


def test_writes_after_the_first_committed_one_wait_as_in_a_thread(sqlite_db):
    # Run again in a thread, a call that committed a write would make it twice: after the first,
    # the call's writes are no longer only tried, and wait for the lock as a thread's do.
    lock = LockHeld(sqlite_db)
    work = Work(sqlite_db, writes=2)
    first_write = audit.append_committed

    def then_hold(*args, **kwargs):
        out = first_write(*args, **kwargs)
        if not lock.held.is_set():
            lock.start()
        return out

    audit.append_committed = then_hold
    try:
        assert _run(sqlite_db, work) == "v"
    finally:
        audit.append_committed = first_write
    lock.join()
    assert lock.held.is_set()  # the lock was taken between the two writes
    assert work.threads == [threading.current_thread().name] and _count(sqlite_db) == 2


def test_the_loop_is_not_used_when_the_threads_hold_every_read_connection(sqlite_db):
    pool = sqlite_db.read_engine.pool
    held = [sqlite_db.read_engine.raw_connection() for _ in range(pool.size())]
    try:
        assert not sqlite_db.loop_ready()
        work = Work(sqlite_db)
        assert _run(sqlite_db, work) == "v"
        assert len(work.threads) == 1 and work.threads[0] != threading.current_thread().name
    finally:
        for c in held:
            c.close()
    assert sqlite_db.loop_ready()


def test_postgresql_is_never_on_the_loop(db):
    work = Work(db)
    assert _run(db, work) == "v"
    if db.sqlite:
        assert work.threads == [threading.current_thread().name]
    else:
        assert not db.loop_ready()
        assert len(work.threads) == 1 and work.threads[0] != threading.current_thread().name
    assert _count(db) == 1


@pytest.mark.parametrize("page", ["file", "list", "search"])
def test_the_pages_show_with_one_entry_whether_the_lock_is_free_or_taken(client, story, app, page):
    signed_in(client, "alice")
    fid = story.files["alice"][0]
    path = {"file": f"/customers/{fid}", "list": "/customers", "search": "/customers?q=nobody"}[page]
    action = {"file": "customer.view", "list": "customer.list", "search": "customer.search"}[page]
    db = app.state.db
    before = _count(db, action)
    assert client.get(path).status_code == 200
    assert _count(db, action) == before + 1
    if not db.sqlite:
        return
    lock = LockHeld(db).start()
    r = client.get(path)
    lock.join()
    assert r.status_code == 200
    assert _count(db, action) == before + 2  # one more: none from the loop's try
    with db.read() as s:
        assert audit.verify_chain(s).ok


def _on_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:  # a worker thread
        return False


@pytest.mark.parametrize("who,path", [("alice", "/customers/{fid}"), ("alice", "/customers"), ("alice", "/customers?q=nobody"),
                                      ("alice", "/"), ("bob", "/"), ("bob", "/complaints"), ("bob", "/visits"),
                                      ("bob", "/receivables")])
def test_the_busy_pages_are_served_on_the_loop_on_sqlite(client, story, app, monkeypatch, who, path):
    db = app.state.db
    if not db.sqlite:
        pytest.skip("PostgreSQL's pages are served from worker threads")
    signed_in(client, who)
    path = path.format(fid=story.files["alice"][0])
    # An append that signs a checkpoint (the story has none yet) opens its connection in a thread.
    assert client.get(path).status_code == 200
    reads = []
    for name in ("read", "raw_read"):
        real = getattr(db, name)
        monkeypatch.setattr(db, name, lambda real=real: reads.append(_on_a_loop()) or real())
    assert client.get(path).status_code == 200
    assert reads and all(reads), reads
