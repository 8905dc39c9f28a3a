"""Where a page's reads and its audit append run: on the event loop when that cannot wait, else in
a worker thread.

A list, search or file page on SQLite reads a local file in WAL mode (never waiting for a writer),
then appends and commits one audit entry. Run here, on the loop, it saves the hop to a worker
thread (about 1 ms of CPU of a 5 ms page). The loop must never wait, so the append only *tries*
the writer lock (portal/writer_gate.py): if another thread or process holds it, nothing has been
written, and the whole call runs again in a worker thread, where it waits for the lock as every
writer does. PostgreSQL (reads over a socket), an in-memory database, and a moment when the
worker threads hold every read connection always go to a thread.

Any call is correct here: until it commits a write, each write is only tried; after one, the
others wait as in a thread (writer_gate.py). The calls given to it are pages that read, then
commit their audit entries in one transaction (read_then_audit, append_all_committed). Audit before
reveal holds either way: the caller renders what `fn` returned, after its entries were committed.
"""
from __future__ import annotations

import functools
from functools import partial
from typing import Any, Callable, TypeVar

import anyio.to_thread

from ..writer_gate import on_loop

T = TypeVar("T")


async def page_work(db, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` on the loop when `db.loop_ready()`, and again in a worker thread if
    its write found the lock taken (even if `fn` caught the WriterBusy and went on)."""
    if db.loop_ready():
        with on_loop() as call:
            try:
                result = fn(*args, **kwargs)
            except Exception:
                if not call.busy:  # a failure of its own: as in a thread
                    raise
        if not call.busy:
            return result
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


def loop_page(fn: Callable[..., T]) -> Callable[..., Any]:
    """A synchronous page handler `fn(request, ...)` served through `page_work` (decorate it
    beneath the route's decorator): Litestar reads the parameters from `fn`'s signature."""

    @functools.wraps(fn)
    async def handler(request, *args: Any, **kwargs: Any):
        return await page_work(request.app.state.db, fn, request, *args, **kwargs)

    return handler
