"""`portal` commands: Database schema, serving and the demo data."""
from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy.engine import make_url

from ..db import is_sqlite
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


@db.command("upgrade")
@pass_env
def db_upgrade(env: Env) -> None:
    """Migrate the database to the newest schema and make sure the key file exists."""
    from .. import migrate

    if not (migrate.ROOT / "alembic.ini").exists():
        raise Failed(f"alembic.ini not found in {migrate.ROOT} "
                     "(install the package editable from its source tree)")
    url = env.settings.database_url
    if is_sqlite(url):
        u = make_url(url)
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    before = _current_revision(url)
    migrate.upgrade(url)
    after = _current_revision(url)
    if before == after:
        click.echo(f"database {_safe_url(url)} already at revision {after} (head)")
    else:
        click.echo(f"database {_safe_url(url)} upgraded from {before or 'empty'} "
                   f"to revision {after} (head)")
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


# ---------------------------------------------------------------- serve

@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (they share sessions and the audit chain through the database).")
@pass_env
def serve(env: Env, host: str, port: int, workers: int) -> None:
    """Run the web application with uvicorn."""
    import uvicorn

    # Every worker loads the key file; create it once here so workers cannot race to make
    # different ones.
    KeyRing.load_or_create(env.settings.key_file)
    click.echo(f"serving on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''})")
    uvicorn.run(
        "portal.app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
        # No access log on purpose: URLs can carry personal data (search terms, file ids).
        access_log=False,
        # Forwarded headers are handled by the app itself (PORTAL_TRUST_PROXY), not uvicorn.
        proxy_headers=False,
    )


# ---------------------------------------------------------------- demo

@main.command()
@click.option("--password-stdin", is_flag=True,
              help="Read the demo accounts' password from the first line of standard input "
                   "(otherwise $PORTAL_DEMO_PASSWORD, else the built-in demo password).")
@pass_env
def demo(env: Env, password_stdin: bool) -> None:
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
    click.echo(f"\nsign in at {demo_data.URL_HINT} (start it with `portal serve`)")
    click.echo("leaders, auditors and admins set up a second factor (any TOTP authenticator app) "
               "at their first sign-in; the page also shows the key to type in by hand")
