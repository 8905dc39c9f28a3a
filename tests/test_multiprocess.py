"""Several portal processes, one database: sessions, disabling, throttling and the audit chain
hold across processes. Four real `portal serve` processes on a fresh database (SQLite, or
PostgreSQL when PORTAL_TEST_DATABASE_URL is set), driven over HTTP on 127.0.0.1."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
PORTAL = str(Path(sys.executable).parent / "portal")
PASSWORD = "vip-demo-multiprocess-1"
PROCESSES = 4
VIEWERS = 50
VIEWS_EACH = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin(url: str = ""):
    from .pg import admin_engine
    return admin_engine()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A fresh, migrated database with the demo company, and the environment naming it."""
    base = tmp_path_factory.mktemp("multiprocess")
    name = None
    if PG_URL:
        name = f"portal_mp_{uuid.uuid4().hex[:10]}"
        with _admin(PG_URL).connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{base / 'portal.db'}"
    e = {**os.environ, "PORTAL_DATABASE_URL": url, "PORTAL_KEY_FILE": str(base / "keys.json"),
         "PORTAL_DEMO_PASSWORD": PASSWORD}
    e.pop("PORTAL_DEBUG", None)
    from .pg import portal_setup_commands
    for extra, args in [*portal_setup_commands(url), ({}, ["demo"])]:  # migrations as the owner
        subprocess.run([PORTAL, *args], env={**e, **extra}, check=True, capture_output=True, timeout=120)
    yield e
    if name:
        with _admin(PG_URL).connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


_LOGS: dict = {}  # each server process -> the file its log goes to


def _log_of(proc) -> str:
    log = _LOGS[proc]
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


def _errors_of_servers() -> str:
    """The servers' log lines that are not a plain request (errors, tracebacks), for a failure."""
    lines = []
    for log in _LOGS.values():
        log.seek(0)
        lines += [ln for ln in log.read().decode(errors="replace").splitlines()
                  if '"status": 200' not in ln and '"status":200' not in ln and '"status":30' not in ln]
    return "\n".join(lines[-120:])


@pytest.fixture(scope="module")
def servers(env):
    """Four `portal serve` processes on their own ports, sharing the database and the key file."""
    procs, bases = [], []
    for _ in range(PROCESSES):
        port = _free_port()
        # The log (a JSON line per request) goes to a file: a pipe nobody reads would fill and stall.
        log = tempfile.TemporaryFile()
        procs.append(subprocess.Popen([PORTAL, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                      env=env, stdout=subprocess.DEVNULL, stderr=log))
        _LOGS[procs[-1]] = log
        bases.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.time() + 60
        for proc, base in zip(procs, bases):
            while True:
                assert proc.poll() is None, _log_of(proc)
                try:
                    if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.time() < deadline, "a server did not start"
                time.sleep(0.2)
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _sign_in(base: str, username: str, password: str = PASSWORD) -> httpx.Response:
    """The browser's way: the form (anonymous cookie and CSRF token), then the POST."""
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as c:
        form = c.get("/login")
        csrf = re.search(r'name="_csrf" value="([^"]+)"', form.text).group(1)
        return c.post("/login", data={"_csrf": csrf, "username": username, "password": password,
                                      "next": "/customers"})


def _session(base: str, username: str) -> str:
    r = _sign_in(base, username)
    assert r.status_code == 303, (username, r.status_code)
    return r.cookies["portal_session"]


def _get(base: str, path: str, token: str) -> httpx.Response:
    return httpx.get(base + path, headers={"Cookie": f"portal_session={token}"},
                     follow_redirects=False, timeout=30)


def _portal(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PORTAL, *args], env=env, capture_output=True, text=True, timeout=120)


def _verified_count(env) -> int:
    r = _portal(env, "audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    return int(re.search(r"intact: (\d+) entries", r.stdout).group(1))


def _file_ids(base: str, token: str) -> list[str]:
    page = _get(base, "/customers", token)
    assert page.status_code == 200
    return re.findall(r'href="/customers/([0-9a-f-]{36})"', page.text)


def test_a_session_started_on_one_process_works_on_every_other(servers):
    token = _session(servers[0], "alice")
    for base in servers:
        r = _get(base, "/customers", token)
        assert r.status_code == 200 and "customer-rows" in r.text, base


def test_disabling_a_user_ends_their_session_on_every_process(env, servers):
    token = _session(servers[3], "chris")
    assert all(_get(b, "/customers", token).status_code == 200 for b in servers)
    r = _portal(env, "user", "disable", "chris")
    assert r.returncode == 0, r.stderr
    for base in servers:
        r = _get(base, "/customers", token)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), base
    assert _sign_in(servers[1], "chris").status_code == 401  # and no new session anywhere


def _actor(db, username: str):
    from sqlalchemy import select

    from portal.accounts import service as accounts
    from portal.accounts.models import User
    from portal.org.models import OrgUnit
    with db.read() as s:
        user = s.scalar(select(User).where(User.username == username))
        return accounts.actor_for(user, s.get(OrgUnit, user.unit_id))


def test_a_revoked_grant_ends_access_on_every_process(env, servers):
    from portal.access import service as access
    from portal.customers.models import CustomerFile
    from portal.db import Database

    alice, charlie = _session(servers[0], "alice"), _session(servers[1], "charlie")
    file_id = _file_ids(servers[0], alice)[0]
    assert {_get(b, f"/customers/{file_id}", charlie).status_code for b in servers} == {403}
    db = Database(env["PORTAL_DATABASE_URL"])
    try:
        with db.write() as s:  # charlie asks, bob (alice's leader) approves: as the pages do
            f = s.get(CustomerFile, uuid.UUID(file_id))
            r = access.request_access(s, _actor(db, "charlie"), f.file_no,
                                      "Customer called the Shenzhen B team about an order", hours=4)
            access.decide(s, _actor(db, "bob"), r.id, True)
            grant_id = r.id
        assert {_get(b, f"/customers/{file_id}", charlie).status_code for b in servers} == {200}
        with db.write() as s:
            access.revoke(s, _actor(db, "bob"), grant_id, "the order is done")
        assert {_get(b, f"/customers/{file_id}", charlie).status_code for b in servers} == {403}
    finally:
        db.dispose()


def test_an_account_throttled_on_one_process_is_throttled_on_the_others(servers):
    for _ in range(5):
        assert _sign_in(servers[1], "amy", "not-the-password-at-all").status_code == 401
    # The right password, on other processes: still refused until the window passes.
    for base in (servers[2], servers[0]):
        assert _sign_in(base, "amy").status_code == 429, base


def test_signin_throttle_holds_under_concurrency_on_four_processes(servers):
    """Forty wrong passwords at once for one account, spread over four processes: five are
    checked (401), the rest refused unchecked (429); then the right password is refused too."""
    guesses = 40

    def guess(n: int) -> int:
        return _sign_in(servers[n % len(servers)], "cathy", f"not-the-password-{n}").status_code

    with ThreadPoolExecutor(max_workers=guesses) as pool:
        statuses = sorted(pool.map(guess, range(guesses)))
    assert statuses == [401] * 5 + [429] * (guesses - 5)
    assert _sign_in(servers[2], "cathy").status_code == 429


def test_fifty_concurrent_viewers_on_four_processes_leave_one_unbroken_chain(env, servers):
    owners = ["alice", "frank", "fiona"]
    tokens = {u: _session(servers[i % len(servers)], u) for i, u in enumerate(owners)}
    files = {u: _file_ids(servers[0], tokens[u])[:VIEWS_EACH * 4] for u in owners}
    before = _verified_count(env)

    failed: list[str] = []

    def viewer(n: int) -> list[int]:
        owner = owners[n % len(owners)]
        base = servers[n % len(servers)]
        ids = files[owner]
        out = []
        for k in range(VIEWS_EACH):
            r = _get(base, f"/customers/{ids[(n + k) % len(ids)]}", tokens[owner])
            if r.status_code != 200:  # which server, and whose error page (the portal's or uvicorn's)
                failed.append(f"{base} {r.status_code} {r.headers.get('content-type')} {r.text[:300]!r}")
            out.append(r.status_code)
        return out

    with ThreadPoolExecutor(max_workers=VIEWERS) as pool:
        statuses = [s for result in pool.map(viewer, range(VIEWERS)) for s in result]
    assert statuses == [200] * (VIEWERS * VIEWS_EACH), "\n".join(failed) + "\n" + _errors_of_servers()
    # Every view appended exactly one entry, and the entries from four processes form one chain.
    assert _verified_count(env) == before + VIEWERS * VIEWS_EACH
