"""`portal` commands: Database schema, serving and the demo data."""
from __future__ import annotations

import stat

import click

from ..db import secure_sqlite_files, sqlite_path
from ..vault import KeyRing


from .base import (Env, Failed, _read_secret_stdin,
                   _safe_url, _table, main, pass_env)


# ---------------------------------------------------------------- db

@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


def _current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _secure_files(url: str) -> None:
    """SQLite: data directory 0700 when created, database files 0600 (see db.secure_sqlite_files)."""
    for p in secure_sqlite_files(url):
        click.echo(f"narrowed {p} to mode 0600 (it was readable by others)")
    path = sqlite_path(url)
    if path is not None and stat.S_IMODE(path.parent.stat().st_mode) & 0o077:
        click.echo(f"note: the directory {path.parent} is open to others; the database files in it "
                   "are not (0600)", err=True)


@db.command("upgrade")
@pass_env
def db_upgrade(env: Env) -> None:
    """Migrate the database to the newest schema and make sure the key file exists."""
    from .. import migrate

    if not (migrate.ROOT / "alembic.ini").exists():
        raise Failed(f"alembic.ini not found in {migrate.ROOT} "
                     "(install the package editable from its source tree)")
    url = env.settings.database_url
    _secure_files(url)
    before = _current_revision(url)
    migrate.upgrade(url)
    after = _current_revision(url)
    if before == after:
        click.echo(f"database {_safe_url(url)} already at revision {after} (head)")
    else:
        click.echo(f"database {_safe_url(url)} upgraded from {before or 'empty'} "
                   f"to revision {after} (head)")
    from .dbroles import regrant_after_upgrade
    for role in regrant_after_upgrade(url):
        click.echo(f"privileges of the application role {role} re-applied (portal db grant)")
    key_file = env.settings.key_file
    existed = key_file.exists()
    KeyRing.load_or_create(key_file)
    click.echo(f"key file {key_file} {'present' if existed else 'created (mode 0600)'}")
    # Search indexes that need the keys (a migration sees only the database): see
    # `portal customers reindex`.
    from .customers import reindex_files
    n = reindex_files(env.db, env.vault)
    if n:
        click.echo(f"indexed {n} file(s) for search by name")
    if env.db.refresh_statistics():
        click.echo("planner statistics gathered (SQLite ANALYZE)")


# ---------------------------------------------------------------- serve

@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (they share sessions and the audit chain through the database).")
@pass_env
def serve(env: Env, host: str, port: int, workers: int) -> None:
    """Run the web application with uvicorn (logs: one JSON line per request on stderr).

    With PORTAL_ENV=production it first runs `portal doctor`'s checks and refuses to start
    while any is dangerous.

    The port is bound first: "serving on …" is printed only once it is ours, and a port
    already in use is said plainly (exit status 1). Choose another with --port (or
    `make run PORT=…`).
    """
    if env.settings.env == "production":
        from .. import doctor
        bad = doctor.dangers(doctor.run(env.settings))
        if bad:
            for f in bad:
                click.echo(f"DANGER  {f.check}: {f.message}", err=True)
            raise Failed("refusing to start with PORTAL_ENV=production while `portal doctor` "
                         "finds something dangerous (above)")

    # Every worker loads the key file; create it once here so workers cannot race to make
    # different ones. The same for the database's files and their modes.
    _secure_files(env.settings.database_url)
    KeyRing.load_or_create(env.settings.key_file)
    sock = bind_port(host, port)
    click.echo(f"serving on {serving_url(host, port)} ({workers} worker{'s' if workers > 1 else ''})")
    # One worker: this process serves (the application's modules are mostly imported already,
    # so it starts fastest). Several: it becomes the lean supervisor they fork from.
    from ..supervisor import run
    start = hand_over if workers > 1 else run
    if not start(sock, host, port, workers, env.settings.log_format, env.settings.log_level):
        raise Failed("the portal did not start (see the messages above)")


def _exec_supervisor(sock, host: str, port: int, workers: int, log_format: str, log_level: str) -> bool:
    """Become the lean supervisor (portal/supervisor.py): same process id, same socket, none of
    the command line's imports kept resident beside the workers for the server's lifetime.
    Never returns."""
    import os
    import sys

    from ..supervisor import command, server_environment

    sys.stdout.flush()
    sys.stderr.flush()
    argv = command(sock.fileno(), host, port, workers, log_format, log_level)
    os.execve(argv[0], argv, server_environment(os.environ))
    sock.close()  # reached only where execv is stubbed (tests)
    return False


# Tests serve in their own process instead (portal.supervisor.run), so nothing is exec'd there.
hand_over = _exec_supervisor


def serving_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def bind_port(host: str, port: int):
    """A socket bound to host:port, or Failed saying plainly why not (port in use, bad address)."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # Lets a restart reuse a port still in TIME_WAIT; a port someone listens on stays refused.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise Failed(f"port {port} on {host} is already in use (another portal or program "
                         f"listens there); choose another with --port, e.g. `make run PORT={port + 1}`") from None
        raise Failed(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    # Listening from here on: connections wait in the backlog until uvicorn takes them.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


# ---------------------------------------------------------------- demo

@main.command()
@click.option("--password-stdin", is_flag=True,
              help="Read the demo accounts' password from the first line of standard input "
                   "(otherwise $PORTAL_DEMO_PASSWORD, else the built-in demo password).")
@click.option("--url", metavar="URL", default="",
              help="The address the portal will be served on (e.g. http://127.0.0.1:8000), to print "
                   "where to sign in; `make run` passes its HOST and PORT. Without it no address is "
                   "printed: `portal serve` prints the real one once it listens.")
@pass_env
def demo(env: Env, password_stdin: bool, url: str) -> None:
    """Load the demo company: units, 13 staff accounts, 300 customer files and a membership
    programme with two years of history (members, cards, purchases, points, stored value).

    Idempotent: what exists is left alone (passwords included), so a second run changes
    nothing and prints the accounts again.
    """
    from .. import demo as demo_data

    password = demo_data.demo_password(_read_secret_stdin() if password_stdin else None)
    try:
        summary = demo_data.load_demo(env.db, env.vault, password)
    except demo_data.DemoError as exc:
        raise Failed(str(exc)) from None
    for w in summary.warnings:
        click.echo(f"warning: {w}", err=True)
    if summary.changed:
        click.echo(f"demo loaded: {summary.units_created} units, {len(summary.users_created)} users, "
                   f"{summary.files_created} customer files")
    else:
        click.echo("demo already loaded; nothing changed")
    rows = [(u.username, u.display_name, str(u.role), u.unit, password) for u in summary.users]
    _table(("username", "name", "role", "unit", "password"), rows)
    if len(summary.users_created) < len(summary.users):
        click.echo("(accounts that already existed keep the password they were created with)")
    if summary.notes:
        click.echo("\nmembership programme:")
        for note in summary.notes:
            click.echo(f"  {note}")
    # End with a signed checkpoint: none of the demo's entries can be cut off unnoticed.
    from ..audit.checkpoints import newest_checkpoint, sign_if_moved
    if env.db.audit_signer is not None:
        with env.db.write() as s:
            sign_if_moved(s, env.db.audit_signer)
            cp = newest_checkpoint(s)
        if cp is not None:
            click.echo(f"\naudit log signed up to entry {cp.seq} (`portal audit verify` checks it)")
    if url:
        click.echo(f"\nsign in at {url.rstrip('/')}/login once the portal is serving there")
    else:
        click.echo("\nstart the portal with `portal serve [--port N]` and sign in at the address it prints")
    click.echo("leaders, auditors and admins set up a second factor (any TOTP authenticator app) "
               "at their first sign-in; the page also shows the key to type in by hand")
