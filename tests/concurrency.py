"""Running a piece of work in many threads at the same moment (the concurrency tests share it)."""
from __future__ import annotations

import threading


def race(n: int, fn) -> list[tuple[str, object]]:
    """Run fn(i) in n threads released together; ("ok", result) or ("error", exception) each."""
    barrier = threading.Barrier(n)
    results: list[tuple[str, object] | None] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = ("ok", fn(i))
        except Exception as exc:  # noqa: BLE001 - classified by the test
            results[i] = ("error", exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    return results  # type: ignore[return-value]
