"""The `portal` command, run in-process with click's CliRunner against a temporary SQLite database."""
from __future__ import annotations

import re

import codecs
import json
import shutil
import sqlite3
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
import pytest

from portal.migrate import alembic_config
from click.testing import CliRunner, Result
from sqlalchemy import select

from portal import demo as demo_data
from portal.cli import main
from portal.customers import rules
from portal.customers.models import CustomerFile
from portal.customers.service import current_input
from portal.db import Database
from portal.vault import KeyRing, Vault

PASSWORD = "correct-horse-battery"


@dataclass
class Env:
    dir: Path
    db_path: Path
    key_file: Path

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db_path}"

    def vars(self) -> dict[str, str]:
        return {"PORTAL_DATABASE_URL": self.url, "PORTAL_KEY_FILE": str(self.key_file)}

    def sql(self, query: str, *args) -> list[tuple]:
        con = sqlite3.connect(self.db_path)
        try:
            return con.execute(query, args).fetchall()
        finally:
            con.close()

    def scalar(self, query: str, *args):
        return self.sql(query, *args)[0][0]


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), input=input, env=env)
    # Errors are one line on stderr, never a traceback.
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def make_env(dir: Path) -> Env:
    dir.mkdir(parents=True, exist_ok=True)
    return Env(dir=dir, db_path=dir / "portal.db", key_file=dir / "keys.json")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One migrated database with the demo loaded twice (the second run must change nothing)."""
    env = make_env(tmp_path_factory.mktemp("demo"))
    e = {**env.vars(), "PORTAL_DEMO_PASSWORD": ""}
    upgrade = invoke("db", "upgrade", env=e)
    first = invoke("demo", "--url", "http://127.0.0.1:8000", env=e)  # as `make run` does
    counts_after_first = (env.scalar("SELECT count(*) FROM user_account"),
                          env.scalar("SELECT count(*) FROM customer_file"),
                          env.scalar("SELECT count(*) FROM audit_event"))
    second = invoke("demo", env=e)
    return env, upgrade, first, second, counts_after_first


@pytest.fixture
def env(tmp_path, monkeypatch) -> Env:
    """A fresh, empty environment (nothing migrated yet)."""
    env = make_env(tmp_path / "fresh")
    for k, v in env.vars().items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("PORTAL_DEMO_PASSWORD", raising=False)
    monkeypatch.delenv("PORTAL_DEBUG", raising=False)
    return env


@pytest.fixture
def demo_env(demo_run, tmp_path, monkeypatch) -> Env:
    """A private copy of the demo database and key file."""
    src = demo_run[0]
    env = make_env(tmp_path / "demo")
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(src.db_path) + suffix)
        if p.exists():
            shutil.copy(p, str(env.db_path) + suffix)
    shutil.copy(src.key_file, env.key_file)
    for k, v in env.vars().items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("PORTAL_DEBUG", raising=False)
    return env


def upgraded(env: Env) -> Env:
    assert invoke("db", "upgrade").exit_code == 0
    return env


# ---------------------------------------------------------------- db upgrade and demo

def test_db_upgrade_creates_schema_and_key_file(env):
    r = invoke("db", "upgrade")
    assert r.exit_code == 0, r.output
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head in r.stdout and "created" in r.stdout
    assert stat.S_IMODE(env.key_file.stat().st_mode) == 0o600
    assert env.scalar("SELECT version_num FROM alembic_version") == head
    again = invoke("db", "upgrade")
    assert again.exit_code == 0 and f"already at revision {head}" in again.stdout


def test_demo_loads_and_is_idempotent(demo_run):
    env, upgrade, first, second, counts_after_first = demo_run
    assert upgrade.exit_code == 0, upgrade.output
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert stat.S_IMODE(env.key_file.stat().st_mode) == 0o600

    users, files, events = counts_after_first
    assert users == len(demo_data.DEMO_USERS) == 13
    assert files == 300
    # The second run changed nothing, not even the audit log.
    assert (env.scalar("SELECT count(*) FROM user_account"),
            env.scalar("SELECT count(*) FROM customer_file"),
            env.scalar("SELECT count(*) FROM audit_event")) == counts_after_first
    assert "nothing changed" in second.stdout

    for out in (first.stdout, second.stdout):  # both print the accounts and where to go
        for u in demo_data.DEMO_USERS:
            assert u.username in out
        assert demo_data.DEFAULT_PASSWORD in out
    # Where to sign in: the address it was given, else none it cannot know.
    assert "sign in at http://127.0.0.1:8000/login" in first.stdout
    assert "8000" not in second.stdout and "sign in at the address it prints" in second.stdout

    per_owner = dict(env.sql("SELECT u.username, count(*) FROM customer_file f "
                             "JOIN user_account u ON u.id = f.owner_id GROUP BY u.username"))
    assert per_owner == {name: 50 for name in demo_data.SALESPEOPLE}
    units = dict(env.sql("SELECT code, name FROM org_unit"))
    assert units == {u.code: u.name for u in demo_data.DEMO_UNITS}
    roles = dict(env.sql("SELECT username, role FROM user_account"))
    assert roles["grace"] == "leader" and roles["dave"] == "auditor" and roles["erin"] == "admin"
    assert env.sql("SELECT detail FROM audit_event WHERE action = 'demo.load'") == [
        ("units=6 users=13 customer_files=300",)]
    # File numbers are per region.
    prefixes = Counter(no.split()[0] for (no,) in env.sql("SELECT file_no FROM customer_file"))
    assert prefixes == {"755": 200, "010": 100}


def test_demo_data_is_deterministic_and_valid():
    a, b = demo_data.demo_customers(), demo_data.demo_customers()
    assert a == b and len(a) == 300
    assert len({c.data.mobile for c in a}) == 300
    ids = [c.data.id_number for c in a if c.data.id_number]
    assert len(set(ids)) == len(ids) > 200
    for c in a:
        d = c.data
        assert rules.normalise_mobile(d.mobile) == d.mobile
        assert 1 <= len(d.name) <= 4 and d.name[0] in demo_data.SURNAMES + "欧司上诸"
        if d.id_number:
            assert rules.normalise_id_number(d.id_number) == d.id_number
            assert rules.id_number_gender(d.id_number) == d.gender
            assert rules.id_number_birthday(d.id_number) == d.birthday
            assert 1955 <= d.birthday.year <= 2000
        assert d.address.startswith("深圳市" if c.owner in ("alice", "amy", "charlie", "chris") else "北京市")
    for owner in demo_data.SALESPEOPLE:
        cats = {c.data.category for c in a if c.owner == owner}
        assert cats == {str(x) for x in rules.Category}
    assert any("茅台" in c.data.notes for c in a)


def stored_demo_files(demo_env) -> dict:
    """The demo's files as they decrypt, by mobile, but for the two the personal-data demo erased or
    corrected (demo_privacy.py), each checked for that here."""
    from portal.privacy.models import CorrectionRequest, ErasureRequest
    db = Database(demo_env.url)
    vault = Vault(KeyRing.load(demo_env.key_file))
    try:
        with db.read() as s:
            erased = set(s.scalars(select(ErasureRequest.customer_id).where(ErasureRequest.status == "approved")))
            corrected = set(s.scalars(select(CorrectionRequest.customer_id).where(CorrectionRequest.status == "answered")))
            files = {f.id: current_input(vault, f) for f in s.scalars(select(CustomerFile))}
    finally:
        db.dispose()
    assert len(erased) == len(corrected) == 1 and all(files[i].name == "" for i in erased)
    assert all(files[i].address == "深圳市福田区福华三路88号2101室" for i in corrected)
    return {c.mobile: c for i, c in files.items() if i not in erased | corrected}


def demo_files_expected(stored: dict) -> dict:
    expected = {c.data.mobile: c.data for c in demo_data.demo_customers()}
    assert len(expected) == len(stored) + 2
    return {m: c for m, c in expected.items() if m in stored}


def test_demo_stored_files_decrypt(demo_env):
    stored = stored_demo_files(demo_env)
    assert stored == demo_files_expected(stored)


def test_demo_refuses_weak_password(env):
    upgraded(env)
    r = invoke("demo", "--password-stdin", input="short\n")
    assert r.exit_code == 2
    assert "password" in r.stderr and "12 characters" in r.stderr
    assert env.scalar("SELECT count(*) FROM user_account") == 0


def test_demo_password_sources(monkeypatch):
    monkeypatch.delenv("PORTAL_DEMO_PASSWORD", raising=False)
    assert demo_data.demo_password() == demo_data.DEFAULT_PASSWORD
    monkeypatch.setenv("PORTAL_DEMO_PASSWORD", "from-the-environment")
    assert demo_data.demo_password() == "from-the-environment"
    assert demo_data.demo_password("from-stdin-123") == "from-stdin-123"


# ---------------------------------------------------------------- org and users

def test_org_and_user_commands(env):
    upgraded(env)
    assert invoke("org", "add", "HQ", "VIP 酒业集团").exit_code == 0
    assert invoke("org", "add", "755", "深圳大区", "--parent", "HQ").exit_code == 0
    r = invoke("org", "add", "755A", "深圳一组", "--parent", "755")
    assert r.exit_code == 0 and "755A" in r.stdout

    dup = invoke("org", "add", "755", "again", "--parent", "HQ")
    assert dup.exit_code == 2 and "already in use" in dup.stderr
    second_company = invoke("org", "add", "XX", "Another company")
    assert second_company.exit_code == 2 and "parent" in second_company.stderr
    listing = invoke("org", "list")
    assert listing.exit_code == 0
    assert "深圳一组" in listing.stdout and "    755A" in listing.stdout

    r = invoke("user", "add", "wang", "--role", "salesperson", "--unit", "755A",
               "--display-name", "王小明", "--password-stdin", input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert env.sql("SELECT role, display_name, is_active FROM user_account WHERE username='wang'") == [
        ("salesperson", "王小明", 1)]
    # Without --password-stdin nobody types a password: a one-time set-up code is printed.
    r = invoke("user", "add", "li", "--role", "leader", "--unit", "755")
    assert r.exit_code == 0, r.output
    assert re.search(r"set-up code .*: [A-Z2-9]{5}(-[A-Z2-9]{5}){3}$", r.stdout, re.M), r.stdout
    assert env.sql("SELECT password_hash, awaiting_approval FROM user_account WHERE username='li'") == [
        ("", 0)]

    weak = invoke("user", "add", "zhao", "--role", "salesperson", "--unit", "755A",
                  "--password-stdin", input="short\n")
    assert weak.exit_code == 2 and "password" in weak.stderr
    no_unit = invoke("user", "add", "zhao", "--role", "salesperson", "--unit", "NOPE",
                     "--password-stdin", input=PASSWORD + "\n")
    assert no_unit.exit_code == 2 and "NOPE" in no_unit.stderr
    bad_role = invoke("user", "add", "zhao", "--role", "boss", "--unit", "755A", "--password-stdin",
                      input=PASSWORD + "\n")
    assert bad_role.exit_code == 2
    assert env.scalar("SELECT count(*) FROM user_account WHERE username='zhao'") == 0

    r = invoke("user", "disable", "wang")
    assert r.exit_code == 0 and "disabled user wang" in r.stdout
    assert env.scalar("SELECT is_active FROM user_account WHERE username='wang'") == 0
    listing = invoke("user", "list")
    assert listing.exit_code == 0 and "王小明" in listing.stdout
    assert invoke("user", "enable", "wang").exit_code == 0
    assert env.scalar("SELECT is_active FROM user_account WHERE username='wang'") == 1
    missing = invoke("user", "disable", "nobody")
    assert missing.exit_code == 2 and "nobody" in missing.stderr

    actions = [a for (a,) in env.sql("SELECT action FROM audit_event ORDER BY seq")]
    assert actions.count("unit.create") == 3
    assert actions.count("user.create") == 2
    assert actions[-2:] == ["user.disable", "user.enable"]
    assert invoke("audit", "verify").exit_code == 0


# ---------------------------------------------------------------- import

def make_id(born: str, seq: int, region: str = "440305") -> str:
    first17 = f"{region}{born}{seq:03d}"
    return first17 + rules.id_check_char(first17)


HEADER = "name,gender,mobile,id_number,birthday,address,employer,position,category,notes"


def csv_bytes(*lines: str) -> bytes:
    """As Excel writes "CSV UTF-8": a BOM and CRLF line ends."""
    return codecs.BOM_UTF8 + "\r\n".join((HEADER, *lines, "")).encode("utf-8")


def test_import_success(demo_env):
    before = demo_env.scalar("SELECT count(*) FROM customer_file")
    events_before = demo_env.scalar("SELECT max(seq) FROM audit_event")
    f = demo_env.dir / "客户.csv"
    f.write_bytes(csv_bytes(
        f"张伟,男,139 0000 1111,{make_id('19800101', 11)},,深圳市南山区科技园,某科技公司,总经理,民营企业,偏好茅台",
        f"李娜,女,+86 138-0000-2222,{make_id('19850707', 22)},1985-07-07,,,,government,",
        "王芳,女,13700003333,,,,,,个人,\"多行\r\n备注\"",
    ))
    r = invoke("customers", "import", str(f), "--owner", "alice")
    assert r.exit_code == 0, r.output
    assert "imported 3 files for alice" in r.stdout
    assert demo_env.scalar("SELECT count(*) FROM customer_file") == before + 3

    db = Database(demo_env.url)
    vault = Vault(KeyRing.load(demo_env.key_file))
    try:
        with db.read() as s:
            files = list(s.scalars(select(CustomerFile).order_by(CustomerFile.file_no.desc()).limit(3)))
            got = {current_input(vault, x).name: current_input(vault, x) for x in files}
            owners = {x.owner_id for x in files}
    finally:
        db.dispose()
    assert set(got) == {"张伟", "李娜", "王芳"}
    assert got["张伟"].gender == "M" and got["张伟"].category == "enterprise"
    assert got["张伟"].birthday.isoformat() == "1980-01-01"  # taken from the ID number
    assert got["李娜"].mobile == "13800002222" and got["李娜"].gender == "F"
    assert got["王芳"].id_number is None and got["王芳"].notes == "多行\n备注"
    assert owners == {demo_env.scalar("SELECT id FROM user_account WHERE username='alice'")}

    new_events = demo_env.sql("SELECT action, actor_username, detail FROM audit_event "
                              "WHERE seq > ? ORDER BY seq", events_before)
    assert [a for a, _, _ in new_events] == ["customer.create"] * 3 + ["customer.import"]
    assert {u for _, u, _ in new_events} == {"alice"}
    assert new_events[-1][2] == "3 file(s) from 客户.csv"
    assert invoke("audit", "verify").exit_code == 0


def test_the_tally_follows_the_demo_and_the_bench_seed(demo_env):
    """customer_file_tally (the home pages' files figure) matches the files after the demo and
    after the bench's bulk seed (three batches)."""
    assert "tally matches the files" in invoke("customers", "tally").output
    r = invoke("bench", "seed", "40", "--batch", "15", "--workers", "0")
    assert r.exit_code == 0, r.output
    assert demo_env.scalar("SELECT sum(files) FROM customer_file_tally") == demo_env.scalar(
        "SELECT count(*) FROM customer_file")
    ok = invoke("customers", "tally")
    assert ok.exit_code == 0 and "tally matches the files" in ok.output, ok.output


def test_import_failure_imports_nothing(demo_env):
    before = demo_env.scalar("SELECT count(*) FROM customer_file")
    events_before = demo_env.scalar("SELECT count(*) FROM audit_event")
    f = demo_env.dir / "bad.csv"
    f.write_bytes(csv_bytes(
        "张伟,男,13900001111,,,,,,个人,",
        "李娜,女,12345,,,,,,个人,",
        "王芳,X,13700003333,,,,,,nobody,",
    ))
    r = invoke("customers", "import", str(f), "--owner", "alice")
    assert r.exit_code == 1
    assert "line 3: mobile: " in r.stderr
    assert "line 4: gender: " in r.stderr and "line 4: category: " in r.stderr
    assert "nothing imported" in r.stderr
    assert demo_env.scalar("SELECT count(*) FROM customer_file") == before
    assert demo_env.scalar("SELECT count(*) FROM audit_event") == events_before

    good = demo_env.dir / "good.csv"
    good.write_bytes(csv_bytes("张伟,男,13900001111,,,,,,个人,"))
    for owner in ("dave", "grace-not-a-user"):  # an auditor may not own files; unknown users neither
        r = invoke("customers", "import", str(good), "--owner", owner)
        assert r.exit_code == 2 and "owner" in r.stderr
    assert invoke("user", "disable", "amy").exit_code == 0
    r = invoke("customers", "import", str(good), "--owner", "amy")
    assert r.exit_code == 2 and "not an active salesperson" in r.stderr

    # A number already on file is refused too (the whole file is rejected).
    existing = demo_data.demo_customers()[0].data.mobile
    dup = demo_env.dir / "dup.csv"
    dup.write_bytes(csv_bytes("张伟,男,13900001111,,,,,,个人,", f"李娜,女,{existing},,,,,,个人,"))
    r = invoke("customers", "import", str(dup), "--owner", "alice")
    assert r.exit_code == 1 and "line 3: mobile: already on file" in r.stderr
    assert demo_env.scalar("SELECT count(*) FROM customer_file") == before

    missing = invoke("customers", "import", str(demo_env.dir / "nope.csv"), "--owner", "alice")
    assert missing.exit_code == 2


# ---------------------------------------------------------------- audit

def test_audit_verify_detects_tampering(demo_env):
    r = invoke("audit", "verify")
    n = demo_env.scalar("SELECT count(*) FROM audit_event")
    head = demo_env.scalar("SELECT hash FROM audit_head")
    assert r.exit_code == 0
    assert r.stdout.startswith(f"audit chain intact: {n} entries, head {head}, ")
    # The demo ends with a signed checkpoint: none of its entries can be cut off unnoticed.
    assert f"at entry {n}; 0 entries after it not yet signed" in r.stdout

    con = sqlite3.connect(demo_env.db_path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE audit_event SET reason = 'edited' WHERE seq = 5")
    con.execute("DROP TRIGGER audit_event_no_update")
    con.execute("UPDATE audit_event SET reason = 'edited' WHERE seq = 5")
    con.commit()
    con.close()

    r = invoke("audit", "verify")
    assert r.exit_code == 1
    assert "audit chain broken at entry 5: entry 5 was altered" in r.stderr


# ---------------------------------------------------------------- keys

def test_keys_rotate_reencrypts_and_retires(demo_env):
    # Files are sealed with each customer's own key: rotation re-wraps those keys, not the files.
    old_blob = demo_env.scalar("SELECT key_ct FROM customer_key ORDER BY customer_id LIMIT 1")
    file_blob = demo_env.scalar("SELECT name_ct FROM customer_file ORDER BY file_no LIMIT 1")
    r = invoke("keys", "rotate", "--batch", "70")
    assert r.exit_code == 0, r.output
    assert "new data key 2 is active (was 1)" in r.stdout
    # Every table with ciphertext is named (the demo's member-service records too).
    done = re.search(r"re-encrypted (\d+) row\(s\) under key 2: (.*)", r.stdout)
    # (300 files; the personal-data demo erased one: its key is gone, nothing to re-wrap)
    assert done and "299 customer_key" in done.group(2) and done.group(2).endswith("0 user_account")
    assert re.search(r"^customer_key: \d+ row\(s\) re-encrypted, \d+ in all$", r.stdout, re.M)  # progress per batch
    assert "retired key(s) 1" in r.stdout

    assert demo_env.sql("SELECT DISTINCT key_id FROM customer_file") == [(0,)]
    assert demo_env.scalar("SELECT name_ct FROM customer_file ORDER BY file_no LIMIT 1") == file_blob
    doc = json.loads(demo_env.key_file.read_text())
    assert doc["active"] == 2 and list(doc["data_keys"]) == ["2"] and "1" in doc["retired"]
    assert stat.S_IMODE(demo_env.key_file.stat().st_mode) == 0o600
    assert demo_env.scalar("SELECT key_ct FROM customer_key ORDER BY customer_id LIMIT 1") != old_blob

    stored = stored_demo_files(demo_env)
    assert stored == demo_files_expected(stored)

    (detail,) = demo_env.sql("SELECT detail FROM audit_event WHERE action = 'keys.rotate'")[0]
    assert "new_key=2" in detail and f"reencrypted={done.group(1)}" in detail
    for material in doc["data_keys"].values():
        assert material not in detail
    assert invoke("audit", "verify").exit_code == 0

    status = invoke("keys", "status")
    assert status.exit_code == 0 and "active key: 2" in status.stdout
    assert invoke("keys", "retire").stdout.strip() == "no unused keys to retire"


def test_keys_rotate_without_retiring(demo_env):
    r = invoke("keys", "rotate", "--no-retire")
    assert r.exit_code == 0, r.output
    doc = json.loads(demo_env.key_file.read_text())
    assert sorted(doc["data_keys"]) == ["1", "2"] and not doc["retired"]
    r = invoke("keys", "retire")
    assert r.exit_code == 0 and "retired key(s) 1" in r.stdout
    assert sorted(json.loads(demo_env.key_file.read_text())["data_keys"]) == ["2"]


# ---------------------------------------------------------------- jobs, serve, errors, help

def test_purge_sessions(demo_env):
    uid = demo_env.scalar("SELECT id FROM user_account WHERE username='alice'")
    con = sqlite3.connect(demo_env.db_path)
    con.executemany("INSERT INTO web_session (id, user_id, created_at, last_seen_at, client_addr) "
                    "VALUES (?, ?, ?, ?, '')",
                    [("old", uid, "2020-01-01 00:00:00", "2020-01-01 00:00:00"),
                     ("new", uid, "2999-01-01 00:00:00", "2999-01-01 00:00:00")])
    con.commit()
    con.close()
    r = invoke("jobs", "purge-sessions")
    assert r.exit_code == 0 and "purged 1 expired session(s)" in r.stdout
    assert demo_env.sql("SELECT id FROM web_session") == [("new",)]
    r = invoke("jobs", "audit-summary")  # the demo's log: counted once (the migration or the page did some)
    assert r.exit_code == 0 and "audit summary:" in r.stdout
    assert demo_env.scalar("SELECT seq FROM audit_day_head") == demo_env.scalar("SELECT seq FROM audit_head")
    assert invoke("jobs", "audit-summary").stdout.strip() == "audit summary: 0 new entries counted"


def test_serve_runs_uvicorn_without_access_log(env, monkeypatch):
    import socket

    import uvicorn.supervisors

    calls = []

    class Supervisor:
        def __init__(self, config, sockets):
            calls.append((config, [sk.getsockname() for sk in sockets]))

        def run(self):
            pass

    monkeypatch.setattr(uvicorn.supervisors, "Multiprocess", Supervisor)
    # In this process, not exec'd into the lean supervisor (as `portal serve` does for real).
    from portal import supervisor
    from portal.cli import server as server_cli
    monkeypatch.setattr(server_cli, "hand_over", supervisor.run)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    r = invoke("serve", "--port", str(port), "--workers", "2")
    assert r.exit_code == 0, r.output
    [(config, sockets)] = calls
    assert (config.app, config.factory, config.workers, config.access_log, config.proxy_headers) == (
        "portal.app:create_app_from_env", True, 2, False, False)
    # The port is bound (and said) before the workers start.
    assert sockets == [("127.0.0.1", port)]
    assert f"serving on http://127.0.0.1:{port} (2 workers)" in r.output
    # The key file exists before the workers start, so they cannot race to create different ones.
    assert env.key_file.exists()


def test_errors_are_one_line_without_traceback(env):
    r = invoke("user", "list")
    assert r.exit_code == 1 and "portal db upgrade" in r.stderr
    upgraded(env)
    env.key_file.unlink()
    f = env.dir / "x.csv"
    f.write_bytes(csv_bytes("张伟,男,13900001111,,,,,,个人,"))
    r = invoke("customers", "import", str(f), "--owner", "alice")
    assert r.exit_code == 1 and "no key file" in r.stderr
    r = invoke("keys", "rotate")
    assert r.exit_code == 1 and "no key file" in r.stderr
    assert invoke("audit", "verify").stdout.startswith("audit chain intact: 0 entries")


@pytest.mark.parametrize("args", [
    [], ["db"], ["db", "upgrade"], ["serve"], ["demo"], ["org"], ["org", "add"], ["org", "list"],
    ["user"], ["user", "add"], ["user", "disable"], ["user", "enable"], ["user", "list"],
    ["customers", "import"], ["audit", "verify"], ["keys", "rotate"], ["keys", "retire"],
    ["keys", "status"], ["jobs", "purge-sessions"], ["jobs", "checkpoint"], ["user", "reset-2fa"],
    ["jobs", "audit-summary"],
])
def test_every_command_has_help(args):
    r = invoke(*args, "--help")
    assert r.exit_code == 0 and "Usage: " in r.stdout
    assert len(r.stdout.splitlines()) > 3


def test_demo_refuses_a_database_with_another_company(env):
    upgraded(env)
    assert invoke("org", "add", "ACME", "Another company").exit_code == 0
    r = invoke("demo")
    assert r.exit_code == 1 and "already has a company (ACME" in r.stderr
    assert env.scalar("SELECT count(*) FROM org_unit") == 1
    assert env.scalar("SELECT count(*) FROM user_account") == 0


# ---------------------------------------------------------------- progress of long commands

def test_a_long_command_draws_a_bar_on_a_terminal_and_writes_tenths_to_a_log(monkeypatch):
    import io
    import sys

    from portal.cli import progress as progress_mod

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for on_tty in (True, False):
        err = Terminal() if on_tty else io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        with progress_mod.progress(250, "importing customer files") as step:
            for _ in range(250):
                step(1)
        text = err.getvalue()
        if on_tty:  # click's bar: the label, the position, redrawn in place
            assert "importing customer files" in text and "250/250" in text and "\r" in text
        else:  # a log: one plain line per tenth, nothing per row
            lines = text.splitlines()
            assert lines[0] == "importing customer files: 10% (25 of 250)" and len(lines) == 10
            assert lines[-1] == "importing customer files: 100% (250 of 250)"
    quiet = io.StringIO()
    monkeypatch.setattr(sys, "stderr", quiet)
    with progress_mod.progress(12, "recording purchases") as step:
        step(12)
    assert quiet.getvalue() == ""  # a short job says nothing more than its result
