"""Consistent copies of a live database, and loading one into an empty database.

SQLite: the online backup API copies the database in one step under one read transaction (in
WAL mode writers carry on meanwhile), so the copy is the database as of one moment; the
manifest's figures are then read from the copy itself. PostgreSQL: a REPEATABLE READ
transaction exports its snapshot (`pg_export_snapshot()`), reads the audit head, the schema
revision and the row counts in it, and `pg_dump --snapshot` dumps exactly that snapshot in
custom format: the figures and the dump agree to the entry, however many processes write.

Neither copy holds the customers' own data keys (`customer_key`, see subject_keys.py): pg_dump
leaves that table's rows out, and the SQLite copy has them deleted (secure_delete) and is
vacuumed before it is sealed, so no free page keeps them. A backup made before an erasure then
holds nothing that opens the erased customer's fields; a restore takes the keys from the live
database or a key backup (customer_keys.py).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from ..db import is_sqlite, sqlite_path
from ..subject_keys import TABLE as KEY_TABLE

# Tables whose rows never go into a backup (their schema does); not counted in the manifest.
EXCLUDED_DATA = (KEY_TABLE,)


class SnapshotError(Exception):
    """The database cannot be copied or restored (tool missing, target not empty, ...)."""


@dataclass
class Snapshot:
    kind: str                      # "sqlite" | "postgresql"
    files: list[tuple[str, Path]]  # (name in the backup, plaintext path)
    schema_revision: str
    audit_count: int
    audit_head: str
    tables: dict[str, int] = field(default_factory=dict)
    customer_keys: int = 0         # rows of customer_key in the database, left out of the copy


SQLITE_NAME = "portal.sqlite3"
PG_NAME = "portal.pgdump"


def kind_of(url: str) -> str:
    if is_sqlite(url):
        return "sqlite"
    if make_url(url).get_backend_name() == "postgresql":
        return "postgresql"
    raise SnapshotError(f"cannot back up a {make_url(url).get_backend_name()} database")


# ---------------------------------------------------------------- figures

def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _figures(conn, tables: list[str]) -> tuple[str, int, str, dict[str, int]]:
    """(schema revision, audit entries, audit head hash, rows per table but the excluded ones)
    on an open connection."""
    rev = conn.execute(text("SELECT version_num FROM alembic_version")).scalar() or ""
    seq, head = conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    counts = {t: int(conn.execute(text(f"SELECT count(*) FROM {_quote(t)}")).scalar())
              for t in sorted(tables) if t not in EXCLUDED_DATA}
    return str(rev), int(seq), str(head), counts


def _key_rows(conn, tables) -> int:
    return int(conn.execute(text(f"SELECT count(*) FROM {KEY_TABLE}")).scalar()) if KEY_TABLE in tables else 0


def figures_of(url: str) -> tuple[str, int, str, dict[str, int]]:
    """The same figures read from any database (a restored one, say)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        tables = inspect(engine).get_table_names()
        with engine.connect() as conn:
            return _figures(conn, tables)
    finally:
        engine.dispose()


# ---------------------------------------------------------------- SQLite

def sqlite_snapshot(url: str, workdir: Path) -> Snapshot:
    src_path = sqlite_path(url)
    if src_path is None or not src_path.exists():
        raise SnapshotError(f"no SQLite database at {url}")
    dest = workdir / SQLITE_NAME
    os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    src = sqlite3.connect(src_path, timeout=30)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)  # pages=-1: the whole database in one step, one consistent read
    finally:
        src.close()
    try:
        dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
        keys = _drop_key_rows(dst)
    finally:
        dst.close()
    fig = figures_of(f"sqlite:///{dest}")
    return Snapshot("sqlite", [(SQLITE_NAME, dest)], *fig, customer_keys=keys)


def _drop_key_rows(con: sqlite3.Connection) -> int:
    """Delete the customers' keys from the copy, zeroing their bytes, and rebuild the file
    (VACUUM) so that no free page still holds one. Returns how many rows there were."""
    if not con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                       (KEY_TABLE,)).fetchone():
        return 0
    con.isolation_level = None
    con.execute("PRAGMA secure_delete=ON")
    n = con.execute(f"SELECT count(*) FROM {KEY_TABLE}").fetchone()[0]
    con.execute(f"DELETE FROM {KEY_TABLE}")
    con.execute("VACUUM")
    return int(n)


def _is_empty_sqlite(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return True
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    finally:
        con.close()


def _sqlite_target(url: str) -> Path:
    target = sqlite_path(url)
    if target is None:
        raise SnapshotError("restore needs a SQLite database file (not an in-memory database)")
    if not _is_empty_sqlite(target):
        raise SnapshotError(f"{target} is not empty: restore only into an empty database")
    for suffix in ("-wal", "-journal"):
        side = Path(str(target) + suffix)
        if side.exists() and side.stat().st_size:
            raise SnapshotError(f"{side} exists: another database was here; remove it first")
    return target


def sqlite_restore(plain: Path, url: str) -> None:
    target = _sqlite_target(url)
    parent = target.parent
    if not parent.exists():
        parent.mkdir(mode=0o700, parents=True)
    tmp = parent / f".{target.name}.restoring"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, open(plain, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())
    con = sqlite3.connect(tmp)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()
    if ok != "ok":
        tmp.unlink(missing_ok=True)
        raise SnapshotError(f"the restored SQLite file fails its integrity check: {ok}")
    if not _is_empty_sqlite(target):  # someone wrote there meanwhile
        tmp.unlink(missing_ok=True)
        raise SnapshotError(f"{target} is not empty: restore only into an empty database")
    os.replace(tmp, target)
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)


# ---------------------------------------------------------------- PostgreSQL

def pg_tool(name: str) -> str:
    """pg_dump / pg_restore: the newest /usr/lib/postgresql/N/bin (as scripts/with-postgres
    finds the server's binaries), else the one on PATH. A newer pg_dump reads older servers."""
    found = []
    base = Path("/usr/lib/postgresql")
    if base.is_dir():
        for d in base.iterdir():
            exe = d / "bin" / name
            if exe.is_file() and os.access(exe, os.X_OK):
                try:
                    found.append((tuple(int(p) for p in d.name.split(".")), str(exe)))
                except ValueError:
                    continue
    if found:
        return max(found)[1]
    exe = shutil.which(name)
    if exe is None:
        raise SnapshotError(f"{name} not found: install the PostgreSQL client "
                            "(Debian: apt-get install postgresql-client)")
    return exe


def _libpq_env(url: str) -> dict[str, str]:
    """Connection settings for pg_dump/pg_restore as environment variables, so a password
    never shows in the process list."""
    u: URL = make_url(url)
    env = dict(os.environ)  # PGPASSFILE, PGSSLMODE ... of the operator still apply
    for var, value in (("PGHOST", u.host), ("PGPORT", u.port), ("PGUSER", u.username),
                       ("PGPASSWORD", u.password), ("PGDATABASE", u.database)):
        if value not in (None, ""):
            env[var] = str(value)
    for k, v in u.query.items():  # sslmode and the like
        if isinstance(v, str) and k in ("sslmode", "sslrootcert", "sslcert", "sslkey", "host"):
            env["PGHOST" if k == "host" else "PG" + k.upper()] = v
    return env


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip().splitlines()
        raise SnapshotError(f"{what} failed: {msg[-1] if msg else f'exit {r.returncode}'}")


def pg_snapshot(url: str, workdir: Path) -> Snapshot:
    dest = workdir / PG_NAME
    os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    engine = create_engine(url, poolclass=NullPool)
    try:
        tables = inspect(engine).get_table_names()
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            with conn.begin():
                snap = conn.execute(text("SELECT pg_export_snapshot()")).scalar()
                fig = _figures(conn, tables)
                keys = _key_rows(conn, tables)
                # The transaction stays open while pg_dump reads its snapshot.
                _run([pg_tool("pg_dump"), "--format=custom", f"--snapshot={snap}",
                      *(f"--exclude-table-data={t}" for t in EXCLUDED_DATA),
                      "--no-password", f"--file={dest}"], _libpq_env(url), "pg_dump")
    finally:
        engine.dispose()
    return Snapshot("postgresql", [(PG_NAME, dest)], *fig, customer_keys=keys)


def _pg_user_tables(url: str) -> int:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'")).scalar())
    finally:
        engine.dispose()


def _pg_target(url: str) -> None:
    if _pg_user_tables(url):
        raise SnapshotError(f"{make_url(url).database} is not empty: restore only into an "
                            "empty database (createdb a new one)")


def pg_restore(plain: Path, url: str) -> None:
    _pg_target(url)
    _run([pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
          "--single-transaction", "--no-password", f"--dbname={make_url(url).database}", str(plain)],
         _libpq_env(url), "pg_restore")


def take(url: str, workdir: Path) -> Snapshot:
    return sqlite_snapshot(url, workdir) if kind_of(url) == "sqlite" else pg_snapshot(url, workdir)


def check_target(kind: str, url: str) -> None:
    """Refuse a database of another kind, or one that is not empty."""
    if kind_of(url) != kind:
        raise SnapshotError(f"this is a {kind} backup; it restores only into a {kind} database")
    if kind == "sqlite":
        _sqlite_target(url)
    else:
        _pg_target(url)


def restore(kind: str, plain: Path, url: str) -> None:
    check_target(kind, url)
    if kind == "sqlite":
        sqlite_restore(plain, url)
    else:
        pg_restore(plain, url)
