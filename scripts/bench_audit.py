"""The auditor's rows of `make bench`: signing a checkpoint and filtering the log at millions of entries.

For one database (already migrated, with the demo company) it appends chained audit entries
with `portal bench seed-audit` up to the wanted number (a signed checkpoint every 1,000, as a
server signs them), starts `portal serve`, signs dave (auditor, with his second factor) in
through /login, and times sequential requests as he makes them (one at a time, so each figure
is what he waits): the log page with each filter, its next page, and signing a checkpoint (the
POST and the integrity page it leads to). p50 and p95 of `--audit-requests` requests after two
warm-ups. The plan of the heaviest filter is captured with EXPLAIN (QUERY PLAN on SQLite,
ANALYZE on PostgreSQL). Used by scripts/bench.py (`--audit-entries`).
"""
from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from urllib.parse import urlencode

TARGET_P50_MS = 300.0


def _p(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q * (len(v) - 1))))]


def head_seq(env: dict) -> int:
    code = ("from sqlalchemy import text\nfrom portal.config import Settings\nfrom portal.db import Database\n"
            "db = Database(Settings.from_env().database_url)\n"
            "with db.read() as s:\n    print(s.execute(text('SELECT seq FROM audit_head WHERE id = 1')).scalar())\n")
    return int(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              check=True).stdout.strip())


def sample_values(env: dict) -> dict:
    """A file number named in the log, and the user with most entries."""
    code = r'''
import json
from sqlalchemy import text
from portal.config import Settings
from portal.db import Database
db = Database(Settings.from_env().database_url)
with db.read() as s:
    head = s.execute(text("SELECT seq FROM audit_head WHERE id = 1")).scalar()
    f = s.execute(text("SELECT object_id FROM audit_event WHERE seq <= :h AND object_type = 'customer' "
                       "AND object_id <> '' ORDER BY seq DESC LIMIT 1"), {"h": head // 2}).scalar()
print(json.dumps({"file": f or ""}))
'''
    import json
    return json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                     check=True).stdout)


def cases(values: dict) -> list[tuple[str, str, dict]]:
    """(key, label, query parameters) of the log page, as an auditor filters it."""
    month_ago = date.today() - timedelta(days=30)
    return [
        ("log", "the log, newest first (no filter)", {}),
        ("by_user", "by user (alice)", {"actor": "alice"}),
        ("by_action", "by action (access.approve)", {"action": "access.approve"}),
        ("by_outcome", "by outcome (denied)", {"outcome": "denied"}),
        ("by_dates", "by date range (a week, a month ago)",
         {"since": month_ago.isoformat(), "until": (month_ago + timedelta(days=6)).isoformat()}),
        ("by_quarter", "by date range (a quarter, a year ago)",
         {"since": (date.today() - timedelta(days=420)).isoformat(),
          "until": (date.today() - timedelta(days=330)).isoformat()}),
        ("by_file", "by file", {"file": values.get("file", "")}),
        ("user_denied", "by user and outcome (alice, denied)", {"actor": "alice", "outcome": "denied"}),
    ]


def sign_in_auditor(base: str, env: dict, username: str, secret: str | None, password: str):
    import httpx

    from portal.accounts import totp

    c = httpx.Client(base_url=base, follow_redirects=False, timeout=120)
    r = c.get("/login")
    csrf = re.search(r'name="_csrf" value="([^"]+)"', r.text).group(1)
    r = c.post("/login", data={"_csrf": csrf, "username": username, "password": password, "next": "/audit"})
    if r.status_code != 303:
        raise RuntimeError(f"sign-in as {username} failed: HTTP {r.status_code}")
    loc = r.headers["location"]
    if loc.startswith("/login/totp"):
        r = c.get(loc)
        csrf = re.search(r'name="_csrf" value="([^"]+)"', r.text).group(1)
        from datetime import datetime, timezone

        import bench
        # A code is good for its 30 s step and the ones either side, once (no replay).
        last = bench._last_step(env, username)
        now_step = totp.step_of(datetime.now(timezone.utc))
        step = now_step if last is None or now_step > last else last + 1
        if step > now_step + 1:
            time.sleep(max(0.0, (step - 1) * totp.STEP - time.time() + 0.5))
        r = c.post("/login/totp", data={"_csrf": csrf, "code": totp.code_at(secret, step), "next": "/audit"})
        if r.status_code != 303:
            raise RuntimeError(f"second factor for {username} refused: HTTP {r.status_code}")
    return c


def timed(fn, n: int) -> dict:
    for _ in range(2):
        fn()
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(_p(ms, 0.95), 1),
            "max_ms": round(max(ms), 1), "n": n}


def measure(env: dict, server_cls, free_port, enrol, password: str, n: int, log) -> dict:
    secret = None
    try:
        secret = enrol(env, "dave")
    except RuntimeError as exc:
        log(f"  dave: {exc}; signing in with the password only")
    values = sample_values(env)
    server = server_cls(env, free_port(), 1)
    out: dict = {"entries": head_seq(env), "pages": {}}
    try:
        c = sign_in_auditor(server.base, env, "dave", secret, password)

        def get(path: str, want: int = 200):
            r = c.get(path)
            if r.status_code != want:
                raise RuntimeError(f"{path}: HTTP {r.status_code}")
            return r

        for key, label, params in cases(values):
            url = "/audit" + ("?" + urlencode(params) if params else "")
            first = get(url).text
            res = timed(lambda: get(url), n)
            res["label"], res["url"] = label, url
            m = re.search(r'before=(\d+)', first)
            if m and key in ("log", "by_user"):
                nxt = url + ("&" if params else "?") + f"before={m.group(1)}"
                out["pages"][key + "_next"] = {**timed(lambda: get(nxt), n),
                                               "label": label + ", next page (keyset)", "url": nxt}
            count = re.search(r'data-testid="audit-count">([^<]*)<', first)
            res["count_text"] = count.group(1) if count else ""
            out["pages"][key] = res
            log(f"  /audit {key:12s} p50 {res['p50_ms']:7.1f} ms  p95 {res['p95_ms']:7.1f} ms  {res['count_text']}")

        def sign():
            page = get("/audit/integrity").text
            csrf = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)
            t0 = time.perf_counter()
            r = c.post("/audit/checkpoint", data={"_csrf": csrf})
            if r.status_code != 303:
                raise RuntimeError(f"sign: HTTP {r.status_code}")
            t1 = time.perf_counter()
            page = get(r.headers["location"]).text
            if 'class="ok" data-testid="chain-status"' not in page:
                raise RuntimeError("the integrity page does not say intact after signing")
            return (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000

        for _ in range(2):
            sign()
        posts, pages, totals = [], [], []
        for _ in range(n):
            a, b = sign()
            posts.append(a), pages.append(b), totals.append(a + b)
        out["sign"] = {
            "post": {"p50_ms": round(statistics.median(posts), 1), "p95_ms": round(_p(posts, 0.95), 1)},
            "page": {"p50_ms": round(statistics.median(pages), 1), "p95_ms": round(_p(pages, 0.95), 1)},
            "total": {"p50_ms": round(statistics.median(totals), 1), "p95_ms": round(_p(totals, 0.95), 1)},
            "n": n}
        log(f"  sign checkpoint: POST p50 {out['sign']['post']['p50_ms']} ms, with the integrity page "
            f"p50 {out['sign']['total']['p50_ms']} ms p95 {out['sign']['total']['p95_ms']} ms")
    finally:
        server.stop()
    heaviest = max(out["pages"], key=lambda k: out["pages"][k]["p50_ms"])
    out["heaviest"] = heaviest
    out["plan"] = explain(env, out["pages"][heaviest]["url"])
    return out


def explain(env: dict, url: str) -> str:
    """The plans of the log page's queries for this URL: the seq window of a date range, the
    page of entries (newest first) and the bounded count."""
    code = r'''
import sys
from urllib.parse import parse_qsl, urlsplit
from sqlalchemy import func, select
from portal.audit import browse, service
from portal.audit.models import AuditEvent
from portal.config import Settings
from portal.db import Database
db = Database(Settings.from_env().database_url)
params = dict(parse_qsl(urlsplit(sys.argv[1]).query))
before = params.pop("before", None)
f, _ = service.parse_filter(params)
with db.read() as s:
    conn = s.connection()
    queries = []
    if f.since or f.until:
        w = select(func.min(AuditEvent.seq + 0), func.max(AuditEvent.seq + 0))
        w = w.where(AuditEvent.at >= f.since) if f.since else w
        w = w.where(AuditEvent.at < f.until) if f.until else w
        queries.append(("seq window of the date range", w))
    f = browse.with_seq_window(s, f)
    q = service.filtered(select(AuditEvent), f)
    if before:
        q = q.where(AuditEvent.seq < int(before))
    queries.append(("page", q.order_by(AuditEvent.seq.desc()).limit(51)))
    if f != service.AuditFilter():
        sub = service.filtered(select(AuditEvent.seq), f).limit(browse.COUNT_CAP + 1).subquery()
        queries.append(("count (bounded)", select(func.count()).select_from(sub)))
    for name, q in queries:
        sql = str(q.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        sql = " ".join(sql.split())
        if db.sqlite:
            plan = [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all()]
        else:
            plan = [r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql).all()]
        print(f"-- {name}: {sql}")
        print("\n".join(plan))
'''
    p = subprocess.run([sys.executable, "-c", code, url], env=env, capture_output=True, text=True)
    return p.stdout.strip() or p.stderr.strip()[-1500:]


def seed_to(env: dict, portal, entries: int, log) -> None:
    have = head_seq(env)
    if have < entries:
        log(f"  appending {entries - have:,} audit entries (to {entries:,})")
        _secs, out = portal(env, "bench", "seed-audit", str(entries - have))
        log("  " + out.strip().splitlines()[-1])


def render(results: dict) -> list[str]:
    out = []
    for kind in ("sqlite", "postgresql"):
        r = results.get(kind)
        if not r:
            continue
        name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[kind]
        out += [f"### {name}, {r['entries']:,} audit entries", "",
                f"Measured {r.get('at', '?')}; load average before: {r.get('load_before', 0):.2f}. "
                f"{r['pages'].get('log', {}).get('n', '?')} sequential requests per row as dave "
                "(auditor), after two warm-ups; each log page also appends its own `audit.view` entry.", "",
                "| request | p50 ms | p95 ms | target p50 ≤ 300 ms | count shown |", "|---|---:|---:|---|---|"]
        s = r.get("sign")
        if s:
            out.append(f"| sign a checkpoint: POST /audit/checkpoint | {s['post']['p50_ms']:.1f} | "
                       f"{s['post']['p95_ms']:.1f} | {_mark(s['post']['p50_ms'])} | |")
            out.append(f"| sign a checkpoint, with the integrity page it leads to | {s['total']['p50_ms']:.1f} | "
                       f"{s['total']['p95_ms']:.1f} | {_mark(s['total']['p50_ms'])} | |")
        for key, p in r["pages"].items():
            out.append(f"| /audit {p['label']} | {p['p50_ms']:.1f} | {p['p95_ms']:.1f} | {_mark(p['p50_ms'])} | "
                       f"{p.get('count_text', '')} |")
        out += ["", f"Plan of the heaviest filter ({r['pages'][r['heaviest']]['label']}, `{r['pages'][r['heaviest']]['url']}`):",
                "", "```", r.get("plan", ""), "```", ""]
    return out


def _mark(p50: float) -> str:
    return "met" if p50 <= TARGET_P50_MS else "**missed**"


# ---------------------------------------------------------------- the report block and a stand-alone run

BEGIN, END = "<!-- bench-audit:begin -->", "<!-- bench-audit:end -->"


def write_block(results: dict, path) -> None:
    """Rewrite the auditor's figures between their own markers in BENCHMARKS.md (the page
    figures of scripts/bench.py and the prose are kept)."""
    from pathlib import Path
    path = Path(path)
    block = "\n".join([BEGIN, "", *render(results), END])
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n## The auditor at 3M audit entries\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def run_one(env: dict, kind: str, entries: int, n: int, log) -> dict:
    """Seed up to `entries` and measure one database (env: PORTAL_DATABASE_URL, PORTAL_KEY_FILE)."""
    import os
    from datetime import datetime, timezone

    import bench  # scripts/bench.py: the portal command, the server, the second factor
    seed_to(env, bench.portal, entries, log)
    load = os.getloadavg()[0]
    res = measure(env, bench.Server, bench.free_port, bench.enrol_second_factor, bench.PASSWORD, n, log)
    res["at"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    res["load_before"] = load
    res["kind"] = kind
    return res


def main(argv=None) -> None:
    """Measure an existing portal database (migrated, demo loaded): `scripts/bench_audit.py --help`."""
    import argparse
    import json
    import os
    from pathlib import Path

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", choices=("sqlite", "postgresql"), required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--key-file", required=True)
    ap.add_argument("--entries", default="3M", help="audit entries to seed up to (k/M suffixes)")
    ap.add_argument("--requests", type=int, default=20, help="timed requests per row")
    ap.add_argument("--results", default="var/bench/audit-results.json")
    ap.add_argument("--out", default="BENCHMARKS.md")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench
    env = {**os.environ, "PORTAL_DATABASE_URL": args.database_url, "PORTAL_KEY_FILE": args.key_file,
           "PORTAL_DEMO_PASSWORD": bench.PASSWORD}
    env.pop("PORTAL_DEBUG", None)
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text()) if path.exists() else {}
    results[args.kind] = run_one(env, args.kind, bench.parse_size(args.entries), args.requests, bench.log)
    path.write_text(json.dumps(results, indent=1))
    write_block(results, args.out)
    bench.log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
