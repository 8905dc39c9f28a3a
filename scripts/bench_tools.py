"""The bench's tools: the portal command, the process tree's CPU and memory, wrk, signing in
through /login (with a second factor), the values the pages are asked for, and a server run.

Used by scripts/bench.py and the other bench_*.py scripts (which reach them as `bench.X` too).
"""
from __future__ import annotations

import json
import os
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
    member_file_id: str = ""  # alice's member with the longest points history ("": none)


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
    """One of alice's files with an ID number (plain values read through the vault), and her
    active member with the longest points history."""
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
    from sqlalchemy import func
    from portal.membership.models import CardAccount, Membership, PointsEntryRow
    member = s.scalar(select(Membership.customer_id).join(CardAccount, CardAccount.membership_id == Membership.id)
                      .join(PointsEntryRow, PointsEntryRow.account_id == CardAccount.id)
                      .where(Membership.owner_id == uid, Membership.status == "active")
                      .group_by(Membership.customer_id).order_by(func.count().desc(), Membership.customer_id).limit(1))
    print(json.dumps({"mobile": ci.mobile, "id_number": ci.id_number, "file_id": str(f.id),
                      "name": ci.name, "surname": surname + "总", "member_file_id": str(member or "")}))
'''
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return Targets(**json.loads(p.stdout))


# ---------------------------------------------------------------- one server run

class Server:
    """`portal serve` on 127.0.0.1:port. Its log (a JSON line per request) goes to a file, not a
    pipe nobody reads: a full pipe would stop the server mid-run."""

    def __init__(self, env: dict, port: int, workers: int):
        import tempfile

        self.port = port
        self.log = tempfile.NamedTemporaryFile(prefix="portal-bench-serve-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [PORTAL, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        import httpx
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.tail()}")
            try:
                if httpx.get(self.base + "/healthz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start: {self.tail()}")

    def tail(self, n: int = 2000) -> str:
        try:
            return Path(self.log.name).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)
