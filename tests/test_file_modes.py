"""The SQLite database and the files beside it (write-ahead log, shared memory) hold password and
PIN hashes: they are the owner's alone (0600) in a data directory created 0700, like the key file,
whatever the umask, whether `portal db upgrade`, `portal serve` or the app creates them."""
from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from portal.cli import main
from portal.db import Database


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)  # the usual umask: files 0644, directories 0755
    yield
    os.umask(old)


def cli(data: Path, *args: str):
    r = CliRunner().invoke(main, list(args), env={
        "PORTAL_DATABASE_URL": f"sqlite:///{data / 'portal.db'}",
        "PORTAL_KEY_FILE": str(data / "keys.json"), "PORTAL_DEBUG": "0"})
    assert "Traceback" not in r.output, r.output
    return r


def files(data: Path) -> dict[str, int]:
    return {p.name: mode(p) for p in data.iterdir()}


def write_and_hold(url: str):
    """An app process in the middle of its work: the WAL and shared-memory files exist."""
    db = Database(url)
    with db.write() as s:
        s.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
        s.execute(text("INSERT INTO probe VALUES (1)"))
    conn = db.read_engine.connect()
    conn.execute(text("SELECT count(*) FROM probe")).scalar()
    return db, conn


def test_db_upgrade_makes_the_data_directory_0700_and_the_database_files_0600(tmp_path, loose_umask):
    data = tmp_path / "var"
    r = cli(data, "db", "upgrade")
    assert r.exit_code == 0, r.output
    assert mode(data) == 0o700
    assert mode(data / "portal.db") == 0o600 and mode(data / "keys.json") == 0o600
    db, conn = write_and_hold(f"sqlite:///{data / 'portal.db'}")
    try:
        modes = files(data)
        assert {"portal.db-wal", "portal.db-shm"} <= set(modes)
        assert {name: m for name, m in modes.items() if m != 0o600} == {}
    finally:
        conn.close()
        db.dispose()


def test_db_upgrade_narrows_a_world_readable_database_from_before(tmp_path, loose_umask):
    data = tmp_path / "var"
    data.mkdir()
    con = sqlite3.connect(data / "portal.db")  # as an older version left it: 0644, WAL 0644
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE leftover (x INTEGER)")
    con.commit()
    assert mode(data / "portal.db") == 0o644 and mode(data / "portal.db-wal") == 0o644
    try:
        r = cli(data, "db", "upgrade")
        assert r.exit_code == 0, r.output
        assert "narrowed" in r.output and "note: the directory" in r.output
        for name in ("portal.db", "portal.db-wal", "portal.db-shm"):
            assert mode(data / name) == 0o600, name
    finally:
        con.close()


def test_serve_secures_the_database_before_the_workers_start(tmp_path, loose_umask, monkeypatch):
    import uvicorn

    from portal.cli import server as server_cli

    # Everything up to the server itself runs: no port is bound and no app is started.
    monkeypatch.setattr(server_cli, "bind_port", lambda host, port: None)
    from portal import supervisor
    monkeypatch.setattr(server_cli, "hand_over", supervisor.run)  # in this process, not exec'd
    monkeypatch.setattr(uvicorn.Config, "load_app", lambda self: None)

    def started(self, sockets=None):
        self.started = True
    monkeypatch.setattr(uvicorn.Server, "run", started)
    data = tmp_path / "var"
    data.mkdir()
    (data / "portal.db").touch()
    os.chmod(data / "portal.db", 0o644)
    r = cli(data, "serve")
    assert r.exit_code == 0, r.output
    assert mode(data / "portal.db") == 0o600 and mode(data / "keys.json") == 0o600


def test_the_app_creates_its_database_files_0600(tmp_path, loose_umask):
    data = tmp_path / "new" / "data"
    db, conn = write_and_hold(f"sqlite:///{data / 'portal.db'}")
    try:
        assert mode(data) == 0o700
        modes = files(data)
        assert {"portal.db", "portal.db-wal", "portal.db-shm", "portal.db.writelock"} <= set(modes)
        assert {name: m for name, m in modes.items() if m != 0o600} == {}
    finally:
        conn.close()
        db.dispose()


def test_the_key_file_directory_is_created_0700(tmp_path, loose_umask):
    from portal.vault import KeyRing

    ring = KeyRing.load_or_create(tmp_path / "keys" / "keys.json")
    assert mode(ring.path.parent) == 0o700 and mode(ring.path) == 0o600
