"""What the bench measures at each size: every page under wrk on one worker (server CPU per
request), the audited pages on two workers against one (scaling and memory), and the floor
(each page's work alone, src/portal/bench/floor.py)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict
from urllib.parse import quote

from bench_pages import SCALING_PAGES, all_pages
from bench_tools import RssSampler, Server, Targets, free_port, log, run_wrk, sign_in


def measure_pages(args, wrk: str, env: dict, targets: Targets, bob_secret: str | None, *,
                  workers: int, keys: set[str]) -> dict:
    """wrk against each page in `keys` on `portal serve --workers N`: requests/s, latency, and the
    server's CPU time (all its processes) over the run divided by the requests it served."""
    import httpx

    server = Server(env, free_port(), workers)
    try:
        cookies = {"alice": sign_in(server.base, "alice", env),
                   "bob": sign_in(server.base, "bob", env, bob_secret)}
        first = httpx.get(server.base + "/customers", headers={"Cookie": cookies["alice"]}, timeout=30).text
        m = re.search(r'/customers\?after=([A-Za-z0-9_\-]+)', first)
        values = {"mobile": targets.mobile, "id_number": targets.id_number, "file_id": targets.file_id,
                  "member_file_id": targets.member_file_id,
                  "cursor": m.group(1) if m else "", "name": quote(targets.name),
                  "surname": quote(targets.surname)}
        results = {}
        for page in all_pages():
            if page.key not in keys or "{member_file_id}" in page.path and not targets.member_file_id:
                continue
            url = server.base + page.path.format(**values)
            cookie = cookies[page.who] if page.who else None
            # The response must be the page, not a redirect to /login.
            r = httpx.get(url, headers={"Cookie": cookie} if cookie else {}, timeout=30)
            if r.status_code != 200:
                raise RuntimeError(f"{page.key}: HTTP {r.status_code} for {page.path}")
            run_wrk(wrk, url, cookie, min(2, args.duration), args.connections, args.threads)  # warm up
            with RssSampler(server.proc.pid) as rss:
                res = run_wrk(wrk, url, cookie, args.duration, args.connections, args.threads)
            res["rss_mb"] = round(rss.peak / 1024, 1)
            res["pss_mb"] = round(rss.peak_pss / 1024, 1)
            res["cpu_ms_per_request"] = round(rss.cpu * 1000 / max(res["requests"], 1), 3)
            results[page.key] = res
            log(f"  {workers}w {page.key:14s} {res['rps']:8.0f} req/s  p50 {res['p50_ms']:6.2f} ms  "
                f"p99 {res['p99_ms']:7.2f} ms  cpu {res['cpu_ms_per_request']:.2f} ms/req  "
                f"rss {res['rss_mb']:.0f} MB pss {res['pss_mb']:.0f} MB"
                + (f"  NON-2XX {res['non_2xx']}" if res["non_2xx"] else ""))
        return results
    finally:
        server.stop()


def measure_scaling(args, wrk: str, env: dict, targets: Targets, bob_secret: str | None,
                    one_worker: dict) -> dict:
    """The audited pages on two workers (the memory peak is taken here too), against one."""
    keys = {k for k in SCALING_PAGES if k in args.pages} | {"healthz"}
    two = measure_pages(args, wrk, env, targets, bob_secret, workers=2, keys=keys)
    out = {}
    for key, res in two.items():
        one = one_worker.get(key)
        out[key] = {**res, "rps_one_worker": one["rps"] if one else None,
                    "speedup": round(res["rps"] / one["rps"], 2) if one and one["rps"] else None}
    return out


def measure_floor(env: dict, targets: Targets, rounds: int = 5) -> dict:
    """Each page's work alone on this database (python -m portal.bench.floor, server stopped)."""
    p = subprocess.run([sys.executable, "-m", "portal.bench.floor", "--targets", json.dumps(asdict(targets)),
                        "--rounds", str(rounds)], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"the floor measurement failed: {p.stderr[-2000:]}")
    floor = json.loads(p.stdout)
    log("  floor (µs): " + ", ".join(f"{k} {v:,.0f}" for k, v in floor["parts"].items()))
    return floor
