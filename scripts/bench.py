#!/usr/bin/env python3
"""The benchmark harness behind `make bench`: seeds the portal at growing sizes, drives it with wrk
on SQLite and on PostgreSQL, and writes BENCHMARKS.md.

For each database and each size (files seeded with `portal bench seed`, cumulatively) it
  - times the seeding (files/s, encryption and blind indexes included),
  - times `portal audit verify` (entries/s) and `portal jobs purge-sessions`,
  - starts `portal serve`, signs in alice (salesperson) and bob (leader, second factor) through
    /login like a browser, and runs wrk (16 connections by default) against /healthz and each
    page: requests/s, p50 and p99 latency, and throughput as a share of /healthz in the same run,
  - samples the server's memory (RSS of the server process and its workers) during the load,
  - then grows the audit log to --audit-entries (3M) and times, as dave the auditor, the log page
    with each filter and signing a checkpoint (scripts/bench_audit.py; its own section).
Results go to a JSON file as they come (so a long run can be resumed or re-rendered with
--report-only) and to BENCHMARKS.md between the `bench:begin`/`bench:end` markers; the prose
around the markers (the analysis) is kept.

PostgreSQL: when no PORTAL_TEST_POSTGRES_ADMIN_URL is set, the script re-runs itself under
scripts/with-postgres (a private, throwaway server). wrk comes from Debian (installed with
apt-get when missing and running as root). Traffic goes to 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PORTAL = str(VENV_BIN / "portal") if (VENV_BIN / "portal").exists() else "portal"
PASSWORD = os.environ.get("PORTAL_DEMO_PASSWORD") or "vip-demo-2026!"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

# Targets from the issue, checked in the report.
TARGETS = {
    "seed_files_per_s": 5000,
    "list_share": 0.40,      # list, search and team list: share of /healthz throughput
    "list_p50_ms": 15.0,
    "growth": 1.5,           # p50 at the largest size / p50 at the smallest
    "file_share": 0.30,      # file page: share of /healthz
    "verify_entries_per_s": 200_000,
    "rss_mb": 300,
}

PAGES = [
    # (key, label, who, path template, target group)
    ("healthz", "/healthz (bare)", None, "/healthz", None),
    ("list", "salesperson list (50 masked rows, newest first)", "alice", "/customers", "list"),
    ("list_next", "salesperson list, next page (keyset cursor)", "alice", "/customers?after={cursor}", "list"),
    ("search_mobile", "exact search by mobile", "alice", "/customers?q={mobile}", "list"),
    ("search_id", "exact search by ID number", "alice", "/customers?q={id_number}", "list"),
    ("team_list", "leader's team list (subtree)", "bob", "/customers", "list"),
    # Keyed blind indexes of the full name and the surname (customers/search.py), walked per
    # unit of the leader's subtree; the name travels in the URL here only for wrk.
    ("search_name", "search by name (leader, full name)", "bob", "/customers?q={name}", "list"),
    ("search_surname", "search by surname (leader, 王总)", "bob", "/customers?q={surname}", "list"),
    ("file", "file page (decrypt + audit row)", "alice", "/customers/{file_id}", "file"),
    # The report pages (issue 13) are timed one request after another, with two years of
    # purchases, by scripts/bench_reports.py (--report-requests).
]


def parse_size(s: str) -> int:
    s = s.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1:], 1)
    return int(float(s[:-1] if s[-1:] in "km" else s) * mult)


def fmt_size(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- tools

def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0:
        log("installing wrk from Debian")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, check=False,
                       stdout=subprocess.DEVNULL)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-q"], env=env, check=False, stdout=subprocess.DEVNULL)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
    path = shutil.which("wrk")
    if not path:
        sys.exit("bench: wrk is not installed (apt-get install wrk)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def portal(env: dict, *args: str, check: bool = True, stdin: str | None = None) -> tuple[float, str]:
    """Run the portal command; returns (seconds, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.run([PORTAL, *args], env=env, capture_output=True, text=True, input=stdin)
    dt = time.perf_counter() - t0
    if check and p.returncode != 0:
        sys.exit(f"bench: portal {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return dt, p.stdout


def tree_pids(pid: int) -> list[int]:
    """A process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process tree: RSS counts shared pages once per process, PSS shares them out."""
    rss = pss = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process tree so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / ticks


class RssSampler:
    """Peak RSS and PSS of the server's processes while the load runs, and the CPU it used."""

    def __init__(self, pid: int, every: float = 0.25):
        self.pid, self.every, self.peak, self.peak_pss = pid, every, 0, 0
        self.cpu = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        cpu0 = cpu_seconds(self.pid)
        while not self._stop.is_set():
            rss, pss = memory_kb(self.pid)
            self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)
            self._stop.wait(self.every)
        self.cpu = cpu_seconds(self.pid) - cpu0

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


# ---------------------------------------------------------------- wrk

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def run_wrk(wrk: str, url: str, cookie: str | None, duration: float, connections: int,
            threads: int) -> dict:
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
           "--timeout", "10s"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
           "requests": int(re.search(r"(\d+) requests in", out).group(1)),
           "non_2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0,
           "errors": sum(int(x) for x in m.groups()) if (m := re.search(
               r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)) else 0}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        res[f"p{pct}_ms"] = _ms(m.group(1)) if m else float("nan")
    return res


# ---------------------------------------------------------------- signing in

@dataclass
class Targets:
    mobile: str
    id_number: str
    file_id: str
    name: str = ""
    surname: str = ""


def enrol_second_factor(env: dict, username: str) -> str:
    """Turn on bob's second factor in the database (as he would on /account/2fa); returns the secret."""
    code = r'''
import sys
from sqlalchemy import select
from portal import clock
from portal.accounts import mfa, totp
from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.config import Settings
from portal.db import Database
from portal.org.models import OrgUnit
from portal.vault import KeyRing, Vault
st = Settings.from_env(); db = Database(st.database_url); vault = Vault(KeyRing.load(st.key_file))
with db.write() as s:
    user = s.scalar(select(User).where(User.username == sys.argv[1]))
    secret = mfa.pending_secret(s, vault, user) if not mfa.enrolled(user) else mfa._secret(vault, user)
    if not mfa.enrolled(user):
        actor = accounts.actor_for(user, s.get(OrgUnit, user.unit_id))
        step = totp.step_of(clock.now())
        assert mfa.confirm_enrolment(s, vault, user, totp.code_at(secret, step), actor) is not None
print(secret)
'''
    p = subprocess.run([sys.executable, "-c", code, username], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"could not enrol {username}'s second factor: {p.stderr[-500:]}")
    return p.stdout.strip()


def sign_in(base: str, username: str, env: dict, totp_secret: str | None = None) -> str:
    """Sign in through /login as a browser does; returns the Cookie header value."""
    import httpx

    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as c:
        r = c.get("/login")
        csrf = re.search(r'name="_csrf" value="([^"]+)"', r.text).group(1)
        r = c.post("/login", data={"_csrf": csrf, "username": username, "password": PASSWORD,
                                   "next": "/customers"})
        if r.status_code != 303:
            raise RuntimeError(f"sign-in as {username} failed: HTTP {r.status_code}")
        loc = r.headers["location"]
        if loc.startswith("/login/totp"):
            if not totp_secret:
                raise RuntimeError(f"{username} needs a second factor")
            from portal.accounts import totp
            r = c.get(loc)
            csrf = re.search(r'name="_csrf" value="([^"]+)"', r.text).group(1)
            # A code is good for its 30 s step and the ones either side, once (no replay).
            last = _last_step(env, username)
            now_step = totp.step_of(datetime.now(timezone.utc))
            step = now_step if last is None or now_step > last else last + 1
            if step > now_step + 1:
                time.sleep(max(0.0, (step - 1) * totp.STEP - time.time() + 0.5))
            r = c.post("/login/totp", data={"_csrf": csrf, "code": totp.code_at(totp_secret, step),
                                            "next": "/customers"})
            if r.status_code != 303:
                raise RuntimeError(f"second factor for {username} refused: HTTP {r.status_code}")
        elif loc.startswith("/account/2fa"):
            raise RuntimeError(f"{username} must enrol a second factor first")
        token = c.cookies.get("portal_session")
        r = c.get("/customers")
        if r.status_code != 200:
            raise RuntimeError(f"{username} cannot open /customers: HTTP {r.status_code}")
        return f"portal_session={token}"


def _last_step(env: dict, username: str) -> int | None:
    code = ("import sys\nfrom sqlalchemy import select\nfrom portal.config import Settings\n"
            "from portal.db import Database\nfrom portal.accounts.models import User\n"
            "db = Database(Settings.from_env().database_url)\n"
            "with db.read() as s:\n"
            "    print(s.scalar(select(User.totp_last_step).where(User.username == sys.argv[1])))\n")
    p = subprocess.run([sys.executable, "-c", code, username], env=env, capture_output=True, text=True)
    v = p.stdout.strip()
    return int(v) if v.isdigit() else None


def pick_targets(env: dict) -> Targets:
    """One of alice's files with an ID number (plain values read through the vault)."""
    code = r'''
import json, random
from sqlalchemy import select
from portal.config import Settings
from portal.db import Database
from portal.vault import KeyRing, Vault
from portal.customers.models import CustomerFile
from portal.customers.service import current_input
from portal.accounts.models import User
st = Settings.from_env(); db = Database(st.database_url); vault = Vault(KeyRing.load(st.key_file))
with db.read() as s:
    uid = s.scalar(select(User.id).where(User.username == "alice"))
    files = list(s.scalars(select(CustomerFile).where(CustomerFile.owner_id == uid,
        CustomerFile.id_number_bidx.is_not(None)).order_by(CustomerFile.created_at.desc()).limit(500)))
    f = random.Random(7).choice(files)
    ci = current_input(vault, f)
    from portal.customers import names
    surname = names.surname_of(names.normalise(ci.name)) or ci.name
    print(json.dumps({"mobile": ci.mobile, "id_number": ci.id_number, "file_id": str(f.id),
                      "name": ci.name, "surname": surname + "总"}))
'''
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return Targets(**json.loads(p.stdout))


# ---------------------------------------------------------------- one server run

class Server:
    def __init__(self, env: dict, port: int, workers: int):
        self.port = port
        self.proc = subprocess.Popen(
            [PORTAL, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        import httpx
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def measure_pages(args, wrk: str, env: dict, targets: Targets, bob_secret: str | None) -> dict:
    port = free_port()
    server = Server(env, port, args.workers)
    try:
        cookies = {"alice": sign_in(server.base, "alice", env),
                   "bob": sign_in(server.base, "bob", env, bob_secret)}
        import httpx
        first = httpx.get(server.base + "/customers", headers={"Cookie": cookies["alice"]}).text
        m = re.search(r'/customers\?after=([A-Za-z0-9_\-]+)', first)
        cursor = m.group(1) if m else ""
        from urllib.parse import quote
        values = {"mobile": targets.mobile, "id_number": targets.id_number,
                  "file_id": targets.file_id, "cursor": cursor,
                  "name": quote(targets.name), "surname": quote(targets.surname)}
        results = {}
        for key, label, who, path, _ in PAGES:
            if key not in args.pages:
                continue
            url = server.base + path.format(**values)
            cookie = cookies[who] if who else None
            # The response must be the page, not a redirect to /login.
            r = httpx.get(url, headers={"Cookie": cookie} if cookie else {})
            if r.status_code != 200:
                raise RuntimeError(f"{key}: HTTP {r.status_code} for {path}")
            run_wrk(wrk, url, cookie, min(2, args.duration), args.connections, args.threads)  # warm up
            with RssSampler(server.proc.pid) as rss:
                res = run_wrk(wrk, url, cookie, args.duration, args.connections, args.threads)
            res["rss_mb"] = round(rss.peak / 1024, 1)
            res["pss_mb"] = round(rss.peak_pss / 1024, 1)
            res["cpu_ms_per_request"] = round(rss.cpu * 1000 / max(res["requests"], 1), 3)
            results[key] = res
            log(f"  {key:14s} {res['rps']:8.0f} req/s  p50 {res['p50_ms']:6.2f} ms  "
                f"p99 {res['p99_ms']:7.2f} ms  cpu {res['cpu_ms_per_request']:.2f} ms/req  "
                f"rss {res['rss_mb']:.0f} MB pss {res['pss_mb']:.0f} MB"
                + (f"  NON-2XX {res['non_2xx']}" if res["non_2xx"] else ""))
        return results
    finally:
        server.stop()


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
        secs, out = portal(env, "jobs", "purge-sessions")
        row["purge_sessions"] = {"seconds": round(secs, 2), "output": out.strip()}
        row["db_mb"] = db_size_mb(kind, url)
        targets = pick_targets(env)
        row["pages"] = measure_pages(args, wrk, env, targets, bob_secret)
        row["rss_peak_mb"] = max((p["rss_mb"] for p in row["pages"].values()), default=0)
        row["pss_peak_mb"] = max((p.get("pss_mb", 0) for p in row["pages"].values()), default=0)
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


# ---------------------------------------------------------------- the report

def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        kb = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")))
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        pass
    pg = ""
    try:
        pgbin = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))[-1]
        pg = subprocess.run([str(pgbin), "-V"], capture_output=True, text=True).stdout.strip()
    except (IndexError, OSError):
        pass
    import sqlite3
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "os": platform.platform(),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "postgresql": pg,
            "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()
            if shutil.which("wrk") else ""}


def _mark(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def render(results: dict) -> str:
    meta = results.get("meta", {})
    m = meta.get("machine", {})
    out = [BEGIN, "",
           f"Measured {meta.get('date', '?')} on {m.get('cores', '?')} cores ({m.get('cpu', '?')}), "
           f"{m.get('memory', '?')} RAM, {m.get('os', '?')}; Python {m.get('python', '?')}, "
           f"SQLite {m.get('sqlite', '?')}, {m.get('postgresql', '?')}, {m.get('wrk', 'wrk')}.",
           f"Command: `{meta.get('command', 'scripts/bench.py')}`. wrk: {meta.get('connections', 16)} "
           f"connections, {meta.get('threads', 2)} threads, {meta.get('duration', '?')} s per page "
           f"(after a short warm-up); server `portal serve --workers {meta.get('workers', 1)}` "
           "(uvicorn), wrk and the database on the same machine. Load average before each size is "
           "shown: the machine is shared, so other work competes for the two cores.", ""]
    for kind in ("sqlite", "postgresql"):
        sizes = results.get(kind)
        if not sizes:
            continue
        name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[kind]
        for size_key, row in sizes.items():
            pages = row.get("pages", {})
            health = pages.get("healthz", {}).get("rps")
            out += [f"### {name}, {size_key} files", "",
                    f"Database {row.get('db_mb', '?')} MB; load average before: "
                    f"{row.get('load_before', 0):.2f}; server memory peak "
                    f"{row.get('rss_peak_mb', '?')} MB RSS, {row.get('pss_peak_mb', '?')} MB PSS "
                    f"(target < 300 MB: {_mark(row.get('rss_peak_mb', 0) < TARGETS['rss_mb'])} on RSS, "
                    f"{_mark(row.get('pss_peak_mb', 0) < TARGETS['rss_mb'])} on PSS).", "",
                    "| page | req/s | p50 ms | p99 ms | share of /healthz | target | server CPU ms/request |",
                    "|---|---:|---:|---:|---:|---|---:|"]
            for key, label, _who, _path, group in PAGES:
                p = pages.get(key)
                if not p:
                    continue
                share = p["rps"] / health if health else float("nan")
                if group == "list":
                    ok = share >= TARGETS["list_share"] and p["p50_ms"] <= TARGETS["list_p50_ms"]
                    tgt = f"≥ 40 %, p50 ≤ 15 ms: {_mark(ok)}"
                elif group == "file":
                    ok = share >= TARGETS["file_share"]
                    tgt = f"≥ 30 %: {_mark(ok)}"
                elif group == "report":
                    tgt = f"p50 ≤ 300 ms: {_mark(p['p50_ms'] <= 300)}"
                else:
                    tgt = ""
                bad = f" ({p['non_2xx']} non-2xx!)" if p.get("non_2xx") else ""
                cpu = f"{p['cpu_ms_per_request']:.2f}" if "cpu_ms_per_request" in p else "—"
                out.append(f"| {label}{bad} | {p['rps']:,.0f} | {p['p50_ms']:.2f} | {p['p99_ms']:.2f} | "
                           f"{share:.0%} | {tgt} | {cpu} |")
            out.append("")
            extra = []
            if "seed" in row:
                s = row["seed"]
                inner = s.get("files_per_s_inner", s["files_per_s"])
                ok = inner >= TARGETS["seed_files_per_s"]
                extra.append(f"- import (`portal bench seed {s['files']}`): {inner:,} files/s as the command "
                             f"reports it (generation, encryption, blind indexes, 3 chained audit entries "
                             f"per file, inserts, commits; {s['files_per_s']:,} files/s counting Python's "
                             f"start-up too); target ≥ 5,000: {_mark(ok)}")
            if "verify" in row:
                v = row["verify"]
                ok = v["entries_per_s"] >= TARGETS["verify_entries_per_s"]
                extra.append(f"- `portal audit verify`: {v['entries']:,} entries in {v['seconds']:.2f} s = "
                             f"{v['entries_per_s']:,} entries/s (wall clock, start-up included); "
                             f"target ≥ 200,000: {_mark(ok)}")
            if "purge_sessions" in row:
                extra.append(f"- daily jobs: only `portal jobs purge-sessions` exists yet: "
                             f"{row['purge_sessions']['seconds']:.2f} s")
            out += extra + [""]
    out += growth_tables(results)
    out += ["", END]
    return "\n".join(out)


def growth_tables(results: dict) -> list[str]:
    out = []
    for kind in ("sqlite", "postgresql"):
        sizes = results.get(kind) or {}
        if len(sizes) < 2:
            continue
        name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[kind]
        keys = list(sizes)
        out += [f"### Growth, {name}: p50 latency in ms (and req/s) by number of files", "",
                "| page | " + " | ".join(keys) + f" | p50 {keys[-1]} / {keys[0]} | target ≤ 1.5× |",
                "|---|" + "---:|" * len(keys) + "---:|---|"]
        for key, label, _who, _path, group in PAGES:
            cells = []
            for k in keys:
                p = sizes[k].get("pages", {}).get(key)
                cells.append(f"{p['p50_ms']:.2f} ({p['rps']:,.0f})" if p else "—")
            first = sizes[keys[0]].get("pages", {}).get(key)
            last = sizes[keys[-1]].get("pages", {}).get(key)
            ratio = last["p50_ms"] / first["p50_ms"] if first and last and first["p50_ms"] else float("nan")
            tgt = _mark(ratio <= TARGETS["growth"]) if group == "list" else ""
            out.append(f"| {label} | " + " | ".join(cells) + f" | {ratio:.2f}× | {tgt} |")
        for what, getter in (("import files/s", lambda r: r.get("seed", {}).get("files_per_s_inner")),
                             ("verify entries/s", lambda r: r.get("verify", {}).get("entries_per_s")),
                             ("server RSS peak MB", lambda r: r.get("rss_peak_mb")),
                             ("server PSS peak MB", lambda r: r.get("pss_peak_mb")),
                             ("database MB", lambda r: r.get("db_mb"))):
            cells = [f"{getter(sizes[k]):,}" if getter(sizes[k]) is not None else "—" for k in keys]
            out.append(f"| {what} | " + " | ".join(cells) + " | | |")
        out.append("")
    return out


def write_report(results: dict, path: Path) -> None:
    block = render(results)
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if BEGIN in text and END in text:
            text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
        else:
            text = text.rstrip() + "\n\n## Figures\n\n" + block + "\n"
    else:
        text = ("# Benchmarks\n\nWritten by `make bench` (scripts/bench.py); the figures between "
                "the markers are regenerated on every run.\n\n## Figures\n\n" + block + "\n")
    path.write_text(text, encoding="utf-8")
    import bench_reports
    bench_reports.write_block(results, path)
    if results.get("audit"):
        import bench_audit
        bench_audit.write_block(results["audit"], path)
    svg = growth_svg(results)
    if svg:
        path.with_name("benchmarks-growth.svg").write_text(svg, encoding="utf-8")


def growth_svg(results: dict) -> str:
    """p50 of the list-like pages against the number of files (log x), one line per page and database."""
    series = []
    colours = {"list": "#1f77b4", "search_mobile": "#2ca02c", "search_id": "#98df8a",
               "team_list": "#ff7f0e", "file": "#9467bd", "list_next": "#aec7e8",
               "search_name": "#d62728", "search_surname": "#ff9896"}
    for kind in ("sqlite", "postgresql"):
        sizes = results.get(kind) or {}
        if len(sizes) < 2:
            continue
        for key in colours:
            pts = [(parse_size(k), row["pages"][key]["p50_ms"]) for k, row in sizes.items()
                   if key in row.get("pages", {})]
            if len(pts) >= 2:
                series.append((kind, key, pts))
    if not series:
        return ""
    import math
    W, H, L, B = 640, 360, 60, 40
    xs = [x for *_, pts in series for x, _ in pts]
    ymax = max(15.0, max(y for *_, pts in series for _, y in pts) * 1.1)
    x0, x1 = math.log10(min(xs)), math.log10(max(xs))

    def px(x):
        return L + (math.log10(x) - x0) / ((x1 - x0) or 1) * (W - L - 160)

    def py(y):
        return H - B - y / ymax * (H - B - 20)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<line x1="{L}" y1="{H - B}" x2="{W - 160}" y2="{H - B}" stroke="black"/>',
             f'<line x1="{L}" y1="20" x2="{L}" y2="{H - B}" stroke="black"/>',
             f'<text x="{L}" y="14">p50 latency (ms) at 16 connections vs files (log scale)</text>',
             f'<line x1="{L}" y1="{py(15):.1f}" x2="{W - 160}" y2="{py(15):.1f}" stroke="red" stroke-dasharray="4 3"/>',
             f'<text x="{W - 158}" y="{py(15) + 4:.1f}" fill="red">15 ms target</text>']
    for x in sorted(set(xs)):
        parts.append(f'<text x="{px(x):.1f}" y="{H - B + 15}" text-anchor="middle">{fmt_size(x)}</text>')
    for t in range(0, int(ymax) + 1, max(1, int(ymax) // 6)):
        parts.append(f'<text x="{L - 5}" y="{py(t) + 4:.1f}" text-anchor="end">{t}</text>')
    for i, (kind, key, pts) in enumerate(series):
        dash = "" if kind == "sqlite" else ' stroke-dasharray="6 3"'
        d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(f'<polyline points="{d}" fill="none" stroke="{colours[key]}" stroke-width="2"{dash}/>')
        parts.append(f'<text x="{W - 150}" y="{40 + i * 14}" fill="{colours[key]}">'
                     f'{"SQLite" if kind == "sqlite" else "PostgreSQL"} {key}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


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
    ap.add_argument("--workers", type=int, default=2, help="server worker processes (portal serve --workers)")
    ap.add_argument("--pages", default=",".join(k for k, *_ in PAGES), help="pages to measure")
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
                       "workers": args.workers,
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
