"""`portal db grant`: the application role's privileges on PostgreSQL (see portal.db_roles)."""
from __future__ import annotations

import click
from sqlalchemy import create_engine

from .. import db_roles
from ..db import is_sqlite
from .base import BadInput, Env, Failed, _safe_url, pass_env
from .server import db


@db.command("grant")
@click.option("--app-role", "role", required=True, metavar="NAME",
              help="The PostgreSQL role `portal serve` and the jobs connect as (it must exist).")
@pass_env
def db_grant(env: Env, role: str) -> None:
    """Give the application role what the portal needs and nothing more (PostgreSQL).

    Run it as the owner of the tables (PORTAL_DATABASE_URL names the owner role, the one that
    runs `portal db upgrade`). The application role may then SELECT, INSERT, UPDATE and DELETE
    the portal's tables, but only SELECT and INSERT the audit log, its checkpoints and the
    ledgers (points, stored value, member history); it cannot TRUNCATE, ALTER a table, drop or
    disable a trigger, or create tables. Tables that later migrations add get SELECT and INSERT
    by default; `portal db upgrade` re-applies this for every role granted before. Idempotent.
    """
    url = env.settings.database_url
    if is_sqlite(url):
        raise BadInput("SQLite has no roles: the database file's mode (0600) is its protection")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            report = db_roles.grant_app_role(conn, role)
    except db_roles.RoleError as exc:
        raise Failed(str(exc)) from None
    finally:
        engine.dispose()
    _print_report(report, url)


def _print_report(report: db_roles.GrantReport, url: str) -> None:
    kinds: dict[tuple[str, ...], list[str]] = {}
    for table, privs in report.tables.items():
        kinds.setdefault(privs, []).append(table)
    click.echo(f"granted role {report.role} on {_safe_url(url)}:")
    for privs, tables in sorted(kinds.items(), key=lambda kv: -len(kv[0])):
        names = ", ".join(tables) if len(tables) <= 12 else f"{len(tables)} tables"
        click.echo(f"  {', '.join(privs)}: {names}")
    click.echo(f"  USAGE, SELECT on {report.sequences} sequence(s); no TRUNCATE, ALTER, triggers or CREATE")


def regrant_after_upgrade(url: str) -> list[str]:
    """Re-apply the grants of every application role set up before (new tables, new lists)."""
    if is_sqlite(url):
        return []
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            roles = db_roles.granted_roles(conn)
            for role in roles:
                db_roles.grant_app_role(conn, role)
    finally:
        engine.dispose()
    return roles
