"""The policy's decisions from many worker threads at once (a process's first requests)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from portal.policy import enforcer


def test_casbin_is_never_asked_from_two_threads_at_once(monkeypatch):
    """pycasbin's Enforcer is not thread-safe (its matcher's parser raised SystemError under the
    multiprocess test's fifty viewers): the memo's misses reach it one at a time."""
    real = enforcer._enforcer()
    inside, most = 0, 0
    guard = threading.Lock()

    class Probe:
        def enforce(self, *args):
            nonlocal inside, most
            with guard:
                inside += 1
                most = max(most, inside)
            time.sleep(0.005)  # long enough for other threads to arrive
            try:
                return real.enforce(*args)
            finally:
                with guard:
                    inside -= 1

    monkeypatch.setattr(enforcer, "_enforcer", lambda: Probe())
    enforcer._allowed.cache_clear()
    try:
        asks = [(role, "customer", "view", rel) for role in ("salesperson", "leader", "auditor", "admin")
                for rel in ("own", "led", "granted", "any")]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda a: enforcer._allowed(*a), asks))
    finally:
        enforcer._allowed.cache_clear()
    assert most == 1
    assert answers == [bool(real.enforce(*a)) for a in asks]
