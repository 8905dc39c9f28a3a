"""The POS API keeps the contract it publishes: Schemathesis runs every operation of
/api/v1/schema/openapi.json against a real `portal serve` with the demo data and a terminal key
(all checks, all phases including stateful, positive and negative data, a fixed seed and a
bounded number of examples), then the audit chain must verify and every card account's balances
must equal its ledgers.

On SQLite by default; on PostgreSQL when PORTAL_TEST_DATABASE_URL is set (a database of its
own is created on that server and dropped afterwards). Takes one to three minutes.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from portal.db import Database
from portal.membership.models import CardAccount, PointsEntryRow, StoredValueEntryRow

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "api_contract"
PG_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
SEED = 19
MAX_EXAMPLES = 15  # per operation and phase: about 500 requests in all
STARTUP_TIMEOUT = 90.0

schemathesis = pytest.importorskip("schemathesis", reason="the contract test needs the test extras")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_admin(url: str = ""):
    from .pg import admin_engine
    return admin_engine()


def _run(cmd: list[str], env: dict, cwd: Path, timeout: float = 300) -> str:
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def portal_server():
    """A demo database, a terminal key for the company's root unit, and `portal serve` on a
    free port: (url, key, database_url, env, workdir)."""
    workdir = Path(tempfile.mkdtemp(prefix="portal-contract-"))
    pg_name = ""
    if PG_URL:
        pg_name = f"portal_contract_{uuid.uuid4().hex[:10]}"
        with _pg_admin(PG_URL).connect() as c:
            c.execute(text(f'CREATE DATABASE "{pg_name}"'))
        database_url = make_url(PG_URL).set(database=pg_name).render_as_string(hide_password=False)
    else:
        database_url = f"sqlite:///{workdir / 'portal.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "SCHEMATHESIS_"))}
    env.update({"PORTAL_DATABASE_URL": database_url, "PORTAL_KEY_FILE": str(workdir / "keys.json"),
                "PORTAL_DEMO_PASSWORD": "contract-demo-password", "PYTHONUNBUFFERED": "1",
                # Schemathesis probes every operation without and with invented keys hundreds of
                # times a minute from one address: the throttle (tested on its own in
                # test_pos_api_contract.py) would answer those 429 instead of 401.
                "PORTAL_API_REFUSALS_PER_MINUTE": "1000000",
                "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])})
    portal = [sys.executable, "-m", "portal.cli"]
    proc = None
    log = workdir / "server.log"
    try:
        from .pg import portal_setup_commands
        for extra, args in portal_setup_commands(database_url):  # as the owner, as in production
            _run([*portal, *args], {**env, **extra}, workdir)
        _run([*portal, "demo"], env, workdir)
        out = _run([*portal, "terminal", "add", "Contract till", "--unit", "HQ"], env, workdir)
        key = re.search(r"^(vip_\S+)$", out, re.M).group(1)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("w") as fh:
            proc = subprocess.Popen([*portal, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                    env=env, cwd=workdir, stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"portal serve did not start:\n{log.read_text(errors='replace')}", pytrace=False)
            time.sleep(0.2)
        yield url, key, database_url, env, workdir
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if pg_name:
            with _pg_admin(PG_URL).connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_api_keeps_its_published_contract_and_its_ledgers_exact(portal_server):
    url, key, database_url, env, workdir = portal_server
    st_env = {**env, "SCHEMATHESIS_HOOKS": "tests.api_contract.hooks"}  # a fresh Idempotency-Key per call
    cmd = [str(Path(sys.executable).with_name("schemathesis")), "--no-color",
           "--config-file", str(HERE / "schemathesis.toml"),
           "run", f"{url}/api/v1/schema/openapi.json",
           "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
           "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES), "--workers", "1",
           "--header", f"Authorization: Bearer {key}",
           "--request-timeout", "30"]
    r = subprocess.run(cmd, env=st_env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = f"{r.stdout}\n{r.stderr}".replace(key, "<key>")
    assert r.returncode == 0, f"Schemathesis found contract failures:\n{report[-12000:]}"
    assert re.search(r"\d+ generated, \d+ passed", report), report[-3000:]

    # The chain is intact ...
    verify = subprocess.run([sys.executable, "-m", "portal.cli", "audit", "verify"], env=env, cwd=workdir,
                            capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # ... and every balance is what its ledger says.
    db = Database(database_url)
    try:
        with db.read() as s:
            points = dict(s.execute(select(PointsEntryRow.account_id, func.sum(PointsEntryRow.points))
                                    .group_by(PointsEntryRow.account_id)).all())
            stored = dict(s.execute(select(StoredValueEntryRow.account_id, func.sum(StoredValueEntryRow.amount_fen))
                                    .group_by(StoredValueEntryRow.account_id)).all())
            accounts = s.execute(select(CardAccount.id, CardAccount.points_balance,
                                        CardAccount.stored_value_fen)).all()
    finally:
        db.dispose()
    assert accounts
    wrong = [(a, p, v) for a, p, v in accounts if (p, v) != (points.get(a, 0) or 0, stored.get(a, 0) or 0)]
    assert wrong == [], f"balances that differ from their ledgers (account, points, fen): {wrong[:10]}"
