"""PostgreSQL for the tests, as production runs it: an owner role migrates, the application role
(PORTAL_TEST_DATABASE_URL) is what the portal and the tests connect as.

`scripts/with-postgres` sets PORTAL_TEST_DATABASE_URL (the application role `portal_app`) and
PORTAL_TEST_OWNER_DATABASE_URL (the owner `portal_owner`, which creates databases and runs the
migrations). Without the owner's URL both are the same role (privileges are then not tested).
"""
from __future__ import annotations

import os
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
PG_OWNER_URL = os.environ.get("PORTAL_TEST_OWNER_DATABASE_URL", "") or PG_URL
# The application role, when it differs from the owner.
APP_ROLE = (make_url(PG_URL).username or "") if PG_URL and PG_OWNER_URL != PG_URL else ""


def _with_user_of(url: str, of: str) -> str:
    src = make_url(of)
    return make_url(url).set(username=src.username, password=src.password).render_as_string(hide_password=False)


def as_owner(url: str) -> str:
    """The same database, as the owner role (for migrations, and for tests that play an attacker
    with the owner's powers)."""
    return _with_user_of(url, PG_OWNER_URL) if url.startswith("postgresql") else url


def as_app(url: str) -> str:
    return _with_user_of(url, PG_URL) if url.startswith("postgresql") else url


def admin_engine():
    """The owner on the `postgres` database: creates and drops the tests' databases."""
    return create_engine(make_url(PG_OWNER_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")


def create_database(prefix: str, template: str | None = None) -> str:
    """A new database (owned by the owner role); returns its URL for the application role."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    eng = admin_engine()
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    eng.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url_or_name: str) -> None:
    name = make_url(url_or_name).database if "://" in url_or_name else url_or_name
    eng = admin_engine()
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


def grant_app(url: str) -> None:
    """What `portal db grant --app-role` does, on the database of `url`, as its owner."""
    if not APP_ROLE or not url.startswith("postgresql"):
        return
    from portal.db_roles import grant_app_role
    eng = create_engine(as_owner(url))
    with eng.begin() as conn:
        grant_app_role(conn, APP_ROLE)
    eng.dispose()


def migrate(url: str) -> None:
    """`portal db upgrade` as the owner, then the application role's grants."""
    from portal.migrate import upgrade
    upgrade(as_owner(url))
    grant_app(url)


def owner_engine(db):
    """An engine on `db`'s database with the owner's powers (SQLite: the database's own)."""
    if db.sqlite:
        return db.engine
    from sqlalchemy.pool import NullPool
    return create_engine(as_owner(db.url), poolclass=NullPool)


def portal_setup_commands(url: str) -> list[tuple[dict, list[str]]]:
    """The environment and arguments of `portal db upgrade` (+ `portal db grant`) for a
    subprocess: as the owner, as production does it."""
    steps = [({"PORTAL_DATABASE_URL": as_owner(url)}, ["db", "upgrade"])]
    if APP_ROLE and url.startswith("postgresql"):
        steps.append(({"PORTAL_DATABASE_URL": as_owner(url)}, ["db", "grant", "--app-role", APP_ROLE]))
    return steps
