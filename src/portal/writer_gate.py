"""SQLite's writers, queued; and a page's one write made on the event loop when nobody waits.

`WriterGate` queues writers: a thread lock within the process, an flock(2) on a file beside the
database across processes. SQLite itself lets one writer in at a time, but a writer that finds
the lock taken sleeps in its busy handler (1, 2, 5, 10, ... 100 ms), so under load writers convoy
and throughput collapses. Waiting here wakes as soon as the lock is free.

**On the loop** (`on_loop()`): an audited page on SQLite reads a local file in WAL mode, which
never waits for a writer, then appends and commits one audit entry. Run on the event loop instead
of a worker thread, it spends about 1 ms less CPU (the hop, its futures and wake-ups). The loop
must never wait, so inside `on_loop()` the gate is only *tried*: taken by another thread or
process, the call is marked busy and `WriterBusy` is raised before anything is written, and the
caller runs the whole call again in a worker thread (views/offload.py), where writers wait as
usual. Only the first write is tried: once one is committed, running the call again would write it
twice, so any later write waits for the lock as in a thread (correct, but the loop then waits:
the calls given to the loop are pages that write once).
"""
from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator


class WriterBusy(Exception):
    """On the loop, the writer lock is taken (or the write cannot be made there): nothing was
    written; run the call again in a worker thread."""


@dataclass
class LoopCall:
    busy: bool = False    # a write found the lock taken (the caller runs it again in a thread)
    written: int = 0      # writes committed on the loop (at most one)


_LOOP: ContextVar[LoopCall | None] = ContextVar("portal_loop_call", default=None)


def trying() -> LoopCall | None:
    """The running `on_loop()` call while its writes are only tried (none committed yet), or
    None (a worker thread, code outside one, or a call that has committed a write)."""
    call = _LOOP.get()
    return call if call is not None and not call.written else None


@contextmanager
def on_loop() -> Iterator[LoopCall]:
    call = LoopCall()
    token = _LOOP.set(call)
    try:
        yield call
    finally:
        _LOOP.reset(token)


def busy(call: LoopCall, why: str) -> WriterBusy:
    call.busy = True
    return WriterBusy(why)


def not_on_loop(what: str) -> None:
    """Raised (WriterBusy) on the loop by any write but Database.raw_write(), until one is committed."""
    call = trying()
    if call is not None:
        raise busy(call, f"{what} is opened in a worker thread")


def begin_at_once(dbapi, call: LoopCall, operational_error: type[Exception], busy_timeout_ms: int) -> None:
    """SQLite's BEGIN IMMEDIATE on the loop: without the busy handler's wait (a writer outside the
    gate, another program say, may hold the lock); WriterBusy at once if the lock is taken."""
    dbapi.execute("PRAGMA busy_timeout=0")
    try:
        dbapi.execute("BEGIN IMMEDIATE")
    except operational_error as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        raise busy(call, "the database is locked") from None
    finally:
        dbapi.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")


class WriterGate:
    def __init__(self, path: str | None):
        self.path = path
        self._lock = threading.RLock()
        self._local = threading.local()
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int | None:
        if self.path is None:
            return None
        if self._fd is None or self._pid != os.getpid():  # opened once per process (and after fork)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def held(self) -> Iterator[None]:
        call = trying()
        if call is not None:
            yield from self._tried(call)
            return
        with self._lock:
            depth = getattr(self._local, "depth", 0)
            fd = self._file() if depth == 0 else None
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def _tried(self, call: LoopCall) -> Iterator[None]:
        """The gate on the loop: taken only if free at once, else WriterBusy (nothing written)."""
        if getattr(self._local, "depth", 0) or not self._lock.acquire(blocking=False):
            raise busy(call, "the writer lock is held in this process")
        try:
            fd = self._file()
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise busy(call, "the writer lock is held by another process") from None
            self._local.depth = 1
            try:
                yield
            finally:
                self._local.depth = 0
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()
