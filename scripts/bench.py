#!/usr/bin/env python3
"""The benchmark harness behind `make bench`: seeds the portal at growing sizes, drives it with wrk
on SQLite and on PostgreSQL, and writes BENCHMARKS.md.

For each database and each size (files seeded with `portal bench seed`, cumulatively) it
  - times the seeding (files/s, encryption and blind indexes included),
  - times `portal audit verify` (entries/s) and `portal jobs purge-sessions`,
  - starts `portal serve` with one worker, signs in alice (salesperson) and bob (leader, second
    factor) through /login like a browser, and runs wrk (16 connections by default) against
    /healthz and each page (bench_pages.py): requests/s, p50 and p99 latency, and the server's
    CPU time per request (its CPU time over the run divided by the requests served),
  - starts `portal serve --workers 2` and drives the audited pages again: two workers against
    one, and the server's memory (RSS and PSS of all its processes) under that load,
  - measures each page's work alone on the same database (src/portal/bench/floor.py: one
    indexed read, the raw index walk, AES-GCM, the audit append and commit, a plain Jinja2
    table), so the report sets each page's CPU against its floor,
  - then (--audit-entries) grows the audit log and times, as dave the auditor, the log page with
    each filter and signing a checkpoint (scripts/bench_audit.py; its own section).
Results go to a JSON file as they come (so a long run can be resumed or re-rendered with
--report-only) and to BENCHMARKS.md between the `bench:begin`/`bench:end` markers; the prose
around the markers (the analysis) is kept.

The modules beside it: bench_pages.py (the pages, their targets and floors; other issues add
rows there), bench_tools.py (the portal command, wrk, the process tree's CPU and memory, signing
in, the server), bench_measure.py (one size's measurements), bench_report.py (the Markdown).

PostgreSQL: when no PORTAL_TEST_POSTGRES_ADMIN_URL is set, the script re-runs itself under
scripts/with-postgres (a private, throwaway server). wrk comes from Debian (installed with
apt-get when missing and running as root). Traffic goes to 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import bench_measure
from bench_pages import SCALING_PAGES, all_pages
from bench_report import machine, write_report
# Re-exported: bench_audit.py and the other bench scripts reach these as `bench.X`.
from bench_tools import (PASSWORD, PORTAL, ROOT, RssSampler, Server, Targets, _last_step,  # noqa: F401
                         enrol_second_factor, ensure_wrk, fmt_size, free_port, log, parse_size,
                         pick_targets, portal, run_wrk, sign_in)


# ---------------------------------------------------------------- one database

def database_url(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'sqlite' / 'portal.db'}"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    admin = os.environ["PORTAL_TEST_POSTGRES_ADMIN_URL"]
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text('DROP DATABASE IF EXISTS "portal_bench" WITH (FORCE)'))
        c.execute(text('CREATE DATABASE "portal_bench"'))
    eng.dispose()
    return make_url(admin).set(database="portal_bench").render_as_string(hide_password=False)


def measure_size(args, wrk: str, env: dict, bob_secret: str | None, row: dict) -> None:
    """The pages on one worker, the audited ones on two, then the floor (server stopped)."""
    targets = pick_targets(env)
    row["pages"] = bench_measure.measure_pages(args, wrk, env, targets, bob_secret, workers=1,
                                               keys=args.pages)
    if args.scaling:
        row["scaling"] = bench_measure.measure_scaling(args, wrk, env, targets, bob_secret, row["pages"])
        row["rss_peak_mb"] = max(p["rss_mb"] for p in row["scaling"].values())
        row["pss_peak_mb"] = max(p["pss_mb"] for p in row["scaling"].values())
    row["floor"] = bench_measure.measure_floor(env, targets)


def bench_database(args, wrk: str, kind: str, results: dict, save) -> None:
    wd = Path(args.workdir) / kind
    if wd.exists():
        shutil.rmtree(wd)
    wd.mkdir(parents=True)
    url = database_url(kind, Path(args.workdir))
    env = {**os.environ, "PORTAL_DATABASE_URL": url, "PORTAL_KEY_FILE": str(wd / "keys.json"),
           "PORTAL_DEMO_PASSWORD": PASSWORD}
    env.pop("PORTAL_DEBUG", None)
    log(f"{kind}: migrating and loading the demo company")
    portal(env, "db", "upgrade")
    portal(env, "demo")
    bob_secret = None
    try:
        bob_secret = enrol_second_factor(env, "bob")
    except RuntimeError as exc:  # no second factor in this version of the portal
        log(f"{kind}: {exc}; signing bob in with his password only")
    db_results = results.setdefault(kind, {})
    seeded = 0
    for size in args.sizes:
        row = {"size": size, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "load_before": os.getloadavg()[0]}
        add = size - seeded
        if add > 0:
            log(f"{kind}: seeding {add:,} files (to {size:,})")
            secs, out = portal(env, "bench", "seed", str(add))
            row["seed"] = {"files": add, "seconds": round(secs, 2),
                           "files_per_s": round(add / secs),
                           "reported": out.strip().splitlines()[-1]}
            m = re.search(r"\(([\d,]+) files/s\)", out)
            if m:
                row["seed"]["files_per_s_inner"] = int(m.group(1).replace(",", ""))
            log(f"{kind}: {row['seed']['reported']}")
            seeded = size
        secs, out = portal(env, "audit", "verify")
        n = int(re.search(r"intact: (\d+) entries", out).group(1))
        row["verify"] = {"entries": n, "seconds": round(secs, 2), "entries_per_s": round(n / secs)}
        log(f"{kind}: audit verify {n:,} entries in {secs:.2f} s ({n / secs:,.0f}/s)")
        # A served log is signed every 1,000 entries and each minute; the seeded one is not. Sign
        # it once here (checking the stretch), or each server's sweep would spend the page runs
        # checking millions of seeded entries before it could sign.
        secs, out = portal(env, "jobs", "checkpoint")
        row["checkpoint"] = {"seconds": round(secs, 2), "output": out.strip()}
        log(f"{kind}: {out.strip()} ({secs:.1f} s)")
        secs, out = portal(env, "jobs", "purge-sessions")
        row["purge_sessions"] = {"seconds": round(secs, 2), "output": out.strip()}
        row["db_mb"] = db_size_mb(kind, url)
        row["load_pages"] = os.getloadavg()[0]
        measure_size(args, wrk, env, bob_secret, row)
        # Rows of other issues measured at each size go here (row["<name>"] = ...).
        if args.report_requests:  # members and two years of purchases for the new files, then the report pages
            import bench_reports
            row["reports"] = bench_reports.run_size(env, kind, args.report_requests, log)
        db_results[fmt_size(size)] = row
        save()
    if args.audit_entries:
        # The auditor's rows: the same database, its log grown to --audit-entries entries.
        import bench_audit
        log(f"{kind}: the auditor at {fmt_size(args.audit_entries)} audit entries")
        results.setdefault("audit", {})[kind] = bench_audit.run_one(
            env, kind, args.audit_entries, args.audit_requests, log)
        save()


def db_size_mb(kind: str, url: str) -> float:
    if kind == "sqlite":
        path = Path(url.split("sqlite:///", 1)[1])
        return round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20, 1)
    from sqlalchemy import create_engine, text
    eng = create_engine(url)
    with eng.connect() as c:
        n = c.execute(text("SELECT pg_database_size(current_database())")).scalar()
    eng.dispose()
    return round(n / 2**20, 1)


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description="Benchmark the portal on SQLite and PostgreSQL at growing sizes; write BENCHMARKS.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--sizes", default="10k,100k,1M",
                    help="comma-separated numbers of seeded files, ascending (seeded cumulatively)")
    ap.add_argument("--databases", default="sqlite,postgresql", help="sqlite, postgresql or both")
    ap.add_argument("--duration", type=float, default=8, help="seconds of wrk load per page")
    ap.add_argument("--connections", type=int, default=16, help="concurrent wrk connections")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--no-scaling", dest="scaling", action="store_false",
                    help=f"skip the two-worker run of the audited pages ({', '.join(SCALING_PAGES)}) "
                         "and the memory peak taken there")
    ap.add_argument("--pages", default=",".join(p.key for p in all_pages()), help="pages to measure")
    ap.add_argument("--workdir", default=str(ROOT / "var" / "bench"), help="databases, keys and results")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help="the report to write")
    ap.add_argument("--audit-entries", default="3M",
                    help="after the sizes, grow the audit log to this many entries and time the "
                         "auditor's log filters and checkpoint signing (0: skip)")
    ap.add_argument("--audit-requests", type=int, default=20, help="timed requests per auditor row")
    ap.add_argument("--report-requests", type=int, default=10,
                    help="at each size, seed members and two years of purchases for the new files and time "
                         "each report page this many times (scripts/bench_reports.py; 0: skip)")
    ap.add_argument("--report-only", action="store_true",
                    help="re-render the report from the saved results without measuring")
    args = ap.parse_args(argv)
    args.sizes = sorted(parse_size(s) for s in args.sizes.split(","))
    args.pages = set(args.pages.split(",")) | {"healthz"}
    args.audit_entries = parse_size(args.audit_entries) if args.audit_entries not in ("", "0") else 0
    dbs = [d.strip() for d in args.databases.split(",") if d.strip()]
    for d in dbs:
        if d not in ("sqlite", "postgresql"):
            ap.error(f"unknown database {d}")
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    results_path = workdir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    if args.report_only:
        write_report(results, Path(args.out))
        print(f"wrote {args.out}")
        return
    if "postgresql" in dbs and not os.environ.get("PORTAL_TEST_POSTGRES_ADMIN_URL"):
        script = ROOT / "scripts" / "with-postgres"
        os.execv(str(script), [str(script), sys.executable, *sys.argv])
    wrk = ensure_wrk()
    results["meta"] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                       "machine": machine(), "duration": args.duration,
                       "connections": args.connections, "threads": args.threads,
                       "command": "scripts/bench.py " + " ".join(sys.argv[1:])}

    def save() -> None:
        results_path.write_text(json.dumps(results, indent=1))
        write_report(results, Path(args.out))

    for kind in dbs:
        results[kind] = {}
        bench_database(args, wrk, kind, results, save)
    save()
    log(f"wrote {args.out} (raw results in {results_path})")


if __name__ == "__main__":
    main()
