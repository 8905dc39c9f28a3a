"""Least privilege on PostgreSQL: the application role cannot rewrite the audit log or the
ledgers, alter tables or drop triggers; the owner migrates and grants (`portal db grant`)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from portal import db_roles
from portal.cli import main

from .pg import APP_ROLE, PG_URL, as_owner

needs_roles = pytest.mark.skipif(not APP_ROLE, reason="PostgreSQL with an owner and an application "
                                 "role (scripts/with-postgres sets PORTAL_TEST_OWNER_DATABASE_URL)")


def _triggered_tables(url: str) -> set[str]:
    """Tables the migrations guard with a trigger that refuses changes."""
    eng = create_engine(as_owner(url), poolclass=NullPool)
    with eng.connect() as c:
        if eng.dialect.name == "sqlite":
            rows = c.execute(text("SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
            found = {t for t, sql in rows if "append-only" in sql or "cannot be deleted" in sql}
        else:
            found = set(c.execute(text(
                "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal "
                "AND p.prosrc ILIKE '%RAISE EXCEPTION%'")).scalars())
    eng.dispose()
    return found


def test_every_table_the_database_guards_is_in_the_one_list_of_append_only_tables(settings):
    guarded = _triggered_tables(settings.database_url)
    assert guarded, "no append-only triggers found"
    assert guarded <= set(db_roles.APPEND_ONLY) | set(db_roles.NO_DELETE)
    assert set(db_roles.APPEND_ONLY) <= guarded  # and the list names no table without its trigger


def _statements() -> list[str]:
    out = []
    for t in db_roles.APPEND_ONLY:
        out += [f"UPDATE {t} SET id = id" if t != "audit_event" else "UPDATE audit_event SET detail = 'x'",
                f"DELETE FROM {t}", f"TRUNCATE {t}"]
    out += ["DELETE FROM audit_head", "TRUNCATE audit_head",
            "ALTER TABLE audit_event DISABLE TRIGGER USER",
            "DROP TRIGGER audit_event_no_change ON audit_event",
            "DROP TRIGGER points_entry_no_change ON points_entry",
            "ALTER TABLE customer_file ADD COLUMN smuggled integer",
            "ALTER TABLE points_entry DROP CONSTRAINT points_entry_pkey",
            "DROP TABLE web_session",
            "CREATE TABLE smuggled (x integer)",
            "UPDATE alembic_version SET version_num = 'x'"]
    return out


@needs_roles
def test_the_application_role_is_refused_each_statement_that_would_rewrite_history(settings, story):
    eng = create_engine(settings.database_url, poolclass=NullPool)
    refused = {}
    with eng.connect() as c:
        assert c.execute(text("SELECT current_user")).scalar() == APP_ROLE
        c.commit()
        for sql in _statements():
            with pytest.raises(DBAPIError) as exc:
                with c.begin():
                    c.execute(text(sql))
            # The privilege wall stops it, before any trigger is asked.
            refused[sql] = getattr(exc.value.orig, "sqlstate", "")
        # ... while its everyday work goes on: it appends to the log and moves the head.
        with c.begin():
            before = c.execute(text("SELECT seq FROM audit_head WHERE id = 1")).scalar()
            c.execute(text("UPDATE audit_head SET seq = seq WHERE id = 1"))
            c.execute(text("UPDATE web_session SET last_seen_at = last_seen_at"))
            assert c.execute(text("SELECT count(*) FROM audit_event")).scalar() >= before
    eng.dispose()
    assert {sql: code for sql, code in refused.items() if code != "42501"} == {}  # insufficient_privilege


@needs_roles
def test_portal_db_grant_sets_up_the_role_and_new_tables_are_covered_after_an_upgrade(settings, story):
    owner = as_owner(settings.database_url)
    env = {"PORTAL_DATABASE_URL": owner, "PORTAL_KEY_FILE": str(settings.key_file), "PORTAL_DEBUG": "0"}
    r = CliRunner().invoke(main, ["db", "grant", "--app-role", APP_ROLE], env=env)
    assert r.exit_code == 0, r.output
    assert "SELECT, INSERT: " + ", ".join(sorted(db_roles.APPEND_ONLY)) in r.output
    # A table a later migration adds: usable at once (default privileges), changeable after
    # `portal db upgrade`, which re-applies the grants.
    eng_owner = create_engine(owner, poolclass=NullPool)
    with eng_owner.begin() as c:
        c.execute(text("CREATE TABLE later_table (id serial PRIMARY KEY, x integer)"))
    app = create_engine(settings.database_url, poolclass=NullPool)
    with app.begin() as c:
        c.execute(text("INSERT INTO later_table (x) VALUES (1)"))
    with pytest.raises(DBAPIError):
        with app.begin() as c:
            c.execute(text("UPDATE later_table SET x = 2"))
    r = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert r.exit_code == 0, r.output
    assert f"privileges of the application role {APP_ROLE} re-applied" in r.output
    with app.begin() as c:
        c.execute(text("UPDATE later_table SET x = 2"))
    app.dispose()
    eng_owner.dispose()


@needs_roles
def test_portal_db_grant_refuses_a_role_that_does_not_exist_or_is_the_owner(settings):
    owner = as_owner(settings.database_url)
    env = {"PORTAL_DATABASE_URL": owner, "PORTAL_KEY_FILE": str(settings.key_file), "PORTAL_DEBUG": "0"}
    r = CliRunner().invoke(main, ["db", "grant", "--app-role", "nobody_here"], env=env)
    assert r.exit_code == 1 and "no role 'nobody_here'" in r.output
    from sqlalchemy.engine import make_url
    r = CliRunner().invoke(main, ["db", "grant", "--app-role", make_url(owner).username], env=env)
    assert r.exit_code == 1 and "the one connected" in r.output


@pytest.mark.skipif(bool(PG_URL), reason="SQLite only")
def test_portal_db_grant_says_sqlite_has_no_roles(settings):
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file)}
    r = CliRunner().invoke(main, ["db", "grant", "--app-role", "portal_app"], env=env)
    assert r.exit_code == 2 and "SQLite has no roles" in r.output


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only (PORTAL_TEST_POSTGRES=1)")
def test_the_portals_postgresql_connections_run_without_jit(settings):
    """JIT compiling cost the report queries about a second each (db._no_jit): every connection
    the portal opens, writer and reader, has it off; the server's default is on."""
    from portal.db import Database
    database = Database(settings.database_url)
    try:
        with database.write() as s:
            assert s.scalar(text("SHOW jit")) == "off"
        with database.read() as s:
            assert s.scalar(text("SHOW jit")) == "off"
    finally:
        database.dispose()
    eng = create_engine(settings.database_url, poolclass=NullPool)
    with eng.connect() as c:
        assert c.execute(text("SHOW jit")).scalar() == "on"
    eng.dispose()
