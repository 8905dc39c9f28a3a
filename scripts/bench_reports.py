"""The report rows of `make bench`: every report page, for a leader and for the company, with two
years of purchases (issue 13: p50 <= 300 ms for a leader of 50,000 members and for the
company-wide view at 1M files).

At each size scripts/bench.py measures, after the files are seeded: `portal bench seed-purchases`
makes the new files members with purchases from the day they joined (src/portal/bench/
seed_purchases.py; timed on its own), then `portal serve` starts, bob (leader of team 755A), lhq
(a leader at the root unit: the company-wide view) and dave (auditor, for the audit analytics)
sign in with their second factors, and each report page is requested one request after another
(what a reader waits, not throughput), after two warm-ups: p50 and p95. The plan of the slowest
query of the slowest page is captured with EXPLAIN (QUERY PLAN on SQLite, ANALYZE on
PostgreSQL). Results go under "reports" in each size's row of bench.py's results and between
the `bench-reports` markers of BENCHMARKS.md.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone

TARGET_P50_MS = 300.0
BEGIN, END = "<!-- bench-reports:begin -->", "<!-- bench-reports:end -->"
READERS = {"bob": "leader, team 755A", "lhq": "company-wide (leader at the root unit)", "dave": "auditor"}
# (key, label, path): the default period of each page (this year; the monthly report: last month).
PAGES = [
    ("overview", "programme overview", "/reports/overview"),
    ("classes", "classes A-D and RFM", "/reports/classes"),
    ("monthly", "monthly unit report", "/reports/monthly"),
    ("cards", "card tracking and issue list", "/reports/cards"),
    ("sales", "sales and credit", "/reports/sales"),
    ("service", "service", "/reports/service"),
]
AUDIT_PAGE = ("audit", "audit analytics (this month)", "/reports/audit")


def cases() -> list[tuple[str, str, str, str]]:
    """(key, reader, label, path) of every timed request."""
    out = [(f"{who}_{key}", who, label, path) for who in ("bob", "lhq") for key, label, path in PAGES]
    return out + [(f"dave_{AUDIT_PAGE[0]}", "dave", AUDIT_PAGE[1], AUDIT_PAGE[2])]


def seed(env: dict, portal, log) -> dict:
    secs, out = portal(env, "bench", "seed-purchases")
    line = out.strip().splitlines()[-1] if out.strip() else ""
    log("  " + line)
    m = re.search(r"\(([\d,]+) rows/s\)", line)
    return {"seconds": round(secs, 2), "reported": line,
            "rows_per_s": int(m.group(1).replace(",", "")) if m else None}


def volumes(env: dict) -> dict:
    """Members in bob's and the company's scope, purchases and tier changes."""
    code = r'''
import json
from sqlalchemy import func, select
from portal.config import Settings
from portal.db import Database
from portal.accounts.models import User
from portal.org.models import OrgUnit
from portal.policy.scope import subtree_range
from portal.membership.models import Membership, Purchase, PointsEntryRow, TierChange
db = Database(Settings.from_env().database_url)
with db.read() as s:
    bob = s.scalar(select(User).where(User.username == "bob"))
    lo, hi = subtree_range(s.get(OrgUnit, bob.unit_id).path)
    n = lambda q: s.scalar(q) or 0
    print(json.dumps({
        "members": n(select(func.count()).select_from(Membership)),
        "bob_members": n(select(func.count()).select_from(Membership).where(
            (Membership.owner_id == bob.id) | ((Membership.unit_path >= lo) & (Membership.unit_path < hi)))),
        "purchases": n(select(func.count()).select_from(Purchase)),
        "points_entries": n(select(func.count()).select_from(PointsEntryRow)),
        "tier_changes": n(select(func.count()).select_from(TierChange))}))
'''
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return json.loads(p.stdout) if p.returncode == 0 else {"error": p.stderr[-300:]}


def measure(env: dict, n: int, log) -> dict:
    import bench  # scripts/bench.py: the server, the second factor, the password
    import bench_audit  # signing in through /login with a second factor, timing

    secrets = {}
    for who in READERS:
        try:
            secrets[who] = bench.enrol_second_factor(env, who)
        except RuntimeError as exc:
            log(f"  {who}: {exc}; signing in with the password only")
            secrets[who] = None
    try:
        server = bench.Server(env, bench.free_port(), 1)
    except RuntimeError as exc:  # a busy shared machine: one more try
        log(f"  {exc}; starting the server again")
        server = bench.Server(env, bench.free_port(), 1)
    out: dict = {"pages": {}}
    try:
        clients = {who: bench_audit.sign_in_auditor(server.base, env, who, secrets[who], bench.PASSWORD)
                   for who in READERS}
        for key, who, label, path in cases():
            c = clients[who]

            def get():
                r = c.get(path)
                if r.status_code != 200:
                    raise RuntimeError(f"{who} {path}: HTTP {r.status_code}")

            res = bench_audit.timed(get, n)
            res.update(who=who, label=label, path=path)
            out["pages"][key] = res
            log(f"  {who:4s} {path:20s} p50 {res['p50_ms']:8.1f} ms  p95 {res['p95_ms']:8.1f} ms")
        for c in clients.values():
            c.close()
    finally:
        server.stop()
    heaviest = max(out["pages"], key=lambda k: out["pages"][k]["p50_ms"])
    out["heaviest"] = heaviest
    out["plan"] = explain(env, out["pages"][heaviest]["who"], heaviest.split("_", 1)[1])
    return out


def explain(env: dict, who: str, key: str) -> str:
    """The slowest query of one report for one reader, with its plan."""
    code = r'''
import sys, time
from sqlalchemy import event, select
from portal.config import Settings
from portal.db import Database
from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.org.models import OrgUnit
from portal.membership.rules import programme_today
from portal.reports import audit_stats, cards, classes, monthly, overview, sales, service
from portal.reports.filters import parse_filter, units_in_scope
who, key = sys.argv[1], sys.argv[2]
db = Database(Settings.from_env().database_url)
log = []
@event.listens_for(db.read_engine, "before_cursor_execute")
def _b(conn, cursor, statement, params, context, many):
    conn.info["t0"] = time.perf_counter()
@event.listens_for(db.read_engine, "after_cursor_execute")
def _a(conn, cursor, statement, params, context, many):
    log.append((time.perf_counter() - conn.info["t0"], statement, params))
with db.read() as s:
    u = s.scalar(select(User).where(User.username == who))
    actor = accounts.actor_for(u, s.get(OrgUnit, u.unit_id))
    if key == "audit":
        f, _ = parse_filter({"period": "month"}, programme_today(), [])
        fn = lambda s: audit_stats.audit_stats(s, f, audit_stats.Unusual())
    else:
        f, _ = parse_filter({}, programme_today(), units_in_scope(s, actor))
        b = {"overview": overview.overview, "classes": classes.classes, "monthly": monthly.monthly,
             "cards": cards.cards, "sales": sales.sales, "service": service.service}[key]
        fn = lambda s: b(s, actor, f)
with db.read() as s:
    fn(s)
    secs, sql, params = max(log, key=lambda x: x[0])
    conn = s.connection()
    prefix = "EXPLAIN QUERY PLAN " if db.sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
    rows = conn.exec_driver_sql(prefix + sql, params).all()
    plan = [r[3] for r in rows] if db.sqlite else [r[0] for r in rows]
print(f"-- {secs * 1000:.0f} ms of {len(log)} queries: " + " ".join(sql.split()))
print("\n".join(plan))
'''
    p = subprocess.run([sys.executable, "-c", code, who, key], env=env, capture_output=True, text=True)
    return p.stdout.strip() or p.stderr.strip()[-1500:]


def run_size(env: dict, kind: str, n: int, log, *, seeding: bool = True) -> dict:
    """Seed the purchases of the new files (unless ``seeding`` is False: the database as it is),
    then measure (env: PORTAL_DATABASE_URL, PORTAL_KEY_FILE)."""
    import bench
    res = {"seed": seed(env, bench.portal, log) if seeding else {"reported": "not seeded in this run"}}
    res["volumes"] = volumes(env)
    res["load_before"] = os.getloadavg()[0]
    res.update(measure(env, n, log))
    res["at"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return res


# ---------------------------------------------------------------- the report block

def _n(v) -> str:
    return f"{v:,}" if isinstance(v, int) else "?"


def _mark(p50: float) -> str:
    return "met" if p50 <= TARGET_P50_MS else "**missed**"


def render(results: dict) -> list[str]:
    out = []
    for kind in ("sqlite", "postgresql"):
        sizes = {k: row["reports"] for k, row in (results.get(kind) or {}).items() if row.get("reports")}
        if not sizes:
            continue
        name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[kind]
        keys = list(sizes)
        out += [f"### {name}: report pages, p50 (p95) ms by number of files", ""]
        for k in keys:
            r, v = sizes[k], sizes[k].get("volumes", {})
            s = r.get("seed", {})
            out.append(f"- {k} files: {_n(v.get('members'))} members ({_n(v.get('bob_members'))} in bob's "
                       f"scope), {_n(v.get('purchases'))} purchases, {_n(v.get('tier_changes'))} tier changes; "
                       f"seeding them: {s.get('reported', '?')}; measured {r.get('at', '?')}, load average "
                       f"before {r.get('load_before', 0):.2f}.")
        n = next(iter(sizes.values()))["pages"]
        n = next(iter(n.values())).get("n", "?") if n else "?"
        out += ["", f"{n} sequential requests per row after two warm-ups; each page also appends its "
                "`report.view` audit entry. Target: p50 ≤ 300 ms.", "",
                "| report | reader | " + " | ".join(keys) + f" | target at {keys[-1]} |",
                "|---|---|" + "---:|" * len(keys) + "---|"]
        for key, who, label, path in cases():
            cells = []
            for k in keys:
                p = sizes[k]["pages"].get(key)
                cells.append(f"{p['p50_ms']:.0f} ({p['p95_ms']:.0f})" if p else "—")
            last = sizes[keys[-1]]["pages"].get(key)
            out.append(f"| {label} (`{path}`) | {READERS[who]} | " + " | ".join(cells) + " | "
                       + (_mark(last["p50_ms"]) if last else "") + " |")
        last = sizes[keys[-1]]
        h = last["pages"].get(last.get("heaviest", ""), {})
        out += ["", f"Slowest query of the slowest page at {keys[-1]} ({h.get('label', '?')}, "
                f"{READERS.get(h.get('who', ''), '?')}) and its plan:", "", "```", last.get("plan", ""), "```", ""]
    return out


def write_block(results: dict, path) -> None:
    """Rewrite the report rows between their own markers in BENCHMARKS.md (the rest is kept). A run
    without report rows (`--report-requests 0`) leaves the earlier ones where they are."""
    from pathlib import Path
    path = Path(path)
    rows = render(results)
    if not rows:
        return
    block = "\n".join([BEGIN, "", *rows, END])
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n## Reports with two years of purchases\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv=None) -> None:
    """Measure the report pages of an existing portal database (migrated, demo loaded, files
    seeded): `scripts/bench_reports.py --help`. Seeds the purchases of files not yet
    members unless --no-seed."""
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", choices=("sqlite", "postgresql"), required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--key-file", required=True)
    ap.add_argument("--size", required=True, help="the label of this size in the table (e.g. 100k)")
    ap.add_argument("--requests", type=int, default=10, help="timed requests per row")
    ap.add_argument("--results", default="var/bench/report-results.json")
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--no-seed", dest="seed", action="store_false",
                    help="measure the database as it is (no `portal bench seed-purchases`: at 1M files it "
                         "rebuilds every report summary, minutes even when no file is left to seed)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench
    env = {**os.environ, "PORTAL_DATABASE_URL": args.database_url, "PORTAL_KEY_FILE": args.key_file,
           "PORTAL_DEMO_PASSWORD": bench.PASSWORD}
    env.pop("PORTAL_DEBUG", None)
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text()) if path.exists() else {}
    row = results.setdefault(args.kind, {}).setdefault(args.size, {})
    row["reports"] = run_size(env, args.kind, args.requests, bench.log, seeding=args.seed)
    path.write_text(json.dumps(results, indent=1))
    write_block(results, args.out)
    bench.log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
