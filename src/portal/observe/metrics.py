"""Prometheus metrics (prometheus-client), exposed at /metrics (views/ops.py).

Several processes: with PROMETHEUS_MULTIPROC_DIR set (prometheus-client's own variable: a
directory every process of one machine can write, emptied when the machine boots, e.g.
/run/portal/metrics), the portal's server processes *and* its jobs write their counts there
and any one process answers /metrics for all of them. Without it, each process reports only
its own counts (scrape each process's own port then).

Labels are bounded: a route's template (`/customers/{file_id:int}`), never an address with ids.
"""
from __future__ import annotations

import os


def _multiprocess_dir() -> bool:
    """Use PROMETHEUS_MULTIPROC_DIR when it is (or can be made) a directory; else per process
    (a command run by hand before the units made the directory must not fail over metrics)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not path:
        return False
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        return os.access(path, os.W_OK)
    except OSError:
        return False


MULTIPROCESS = _multiprocess_dir()
if not MULTIPROCESS:
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # read by prometheus_client at import

from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry,  # noqa: E402
                               Counter, Gauge, Histogram, generate_latest, multiprocess)

REQUESTS = Counter("portal_http_requests", "HTTP requests answered, by route template and status",
                   ["method", "route", "status"])
LATENCY = Histogram("portal_http_request_duration_seconds", "Time to answer, by route template",
                    ["method", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
AUDIT_APPENDS = Counter("portal_audit_appends", "Audit entries appended, by outcome", ["outcome"])
DENIALS = Counter("portal_denials", "Refusals recorded in the audit log, by policy action", ["action"])
SIGNINS_THROTTLED = Counter("portal_signins_throttled", "Sign-in attempts refused by the throttle, by step",
                            ["step"])
JOB_RUNS = Counter("portal_job_runs", "`portal jobs …` runs, by job", ["job"])
JOB_FAILURES = Counter("portal_job_failures", "`portal jobs …` runs that failed, by job", ["job"])
JOB_LAST_SUCCESS = Gauge("portal_job_last_success_timestamp_seconds", "When each job last succeeded",
                         ["job"], multiprocess_mode="max")
DB_POOL_IN_USE = Gauge("portal_db_pool_connections_in_use", "Database connections checked out",
                       multiprocess_mode="livesum")
DB_POOL_OPEN = Gauge("portal_db_pool_connections_open", "Database connections open (in use or idle)",
                     multiprocess_mode="livesum")


def exposition() -> tuple[bytes, str]:
    """The text format of every metric (of all processes in multi-process mode)."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


def process_exits() -> None:
    """Drop this process's live gauges (multi-process mode) when it stops."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid())


def watch_pool(engine) -> None:
    """Count the engine's connections in use and open (SQLAlchemy pool events)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(*_):
        DB_POOL_OPEN.inc()

    @event.listens_for(engine, "close")
    def _close(*_):
        DB_POOL_OPEN.dec()

    @event.listens_for(engine, "checkout")
    def _checkout(*_):
        DB_POOL_IN_USE.inc()

    @event.listens_for(engine, "checkin")
    def _checkin(*_):
        DB_POOL_IN_USE.dec()


def job_finished(job: str, ok: bool) -> None:
    import time

    JOB_RUNS.labels(job).inc()
    if ok:
        JOB_LAST_SUCCESS.labels(job).set(time.time())
    else:
        JOB_FAILURES.labels(job).inc()
