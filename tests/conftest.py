"""Fixtures: a migrated database with the story data (SQLite, or PostgreSQL when
PORTAL_TEST_DATABASE_URL is set), copied fresh for every test; an app and a browser-like client."""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from portal import clock
from portal.accounts import passwords
from portal.config import Settings
from portal.db import Database
from portal.migrate import upgrade
from portal.vault import KeyRing, Vault

from .factories import build_story
from .pg import PG_URL, admin_engine, migrate

# Real argon2id, cheap parameters: the suite hashes hundreds of passwords.
passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
passwords._DUMMY = passwords._hasher.hash("dummy-password-for-timing")


def _pg_admin(url: str = ""):
    """The owner role on the `postgres` database (creates and drops the tests' databases)."""
    return admin_engine()


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """Build the story database once; tests get copies."""
    base = tmp_path_factory.mktemp("template")
    key_file = base / "keys.json"
    if PG_URL:
        name = f"portal_tpl_{uuid.uuid4().hex[:8]}"
        admin = _pg_admin(PG_URL)
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{base / 'portal.db'}"
    migrate(url)  # as the owner; then the application role's grants (PostgreSQL)
    db = Database(url)  # the story is written as the application role
    vault = Vault(KeyRing.load_or_create(key_file))
    story = build_story(db, vault)
    db.dispose()
    if not PG_URL:
        # Fold the WAL into the main file so a plain copy is complete.
        eng = create_engine(url)
        with eng.connect() as c:
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        eng.dispose()
    yield {"url": url, "key_file": key_file, "story": story, "dir": base}
    if PG_URL:
        with _pg_admin(PG_URL).connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))


@pytest.fixture
def settings(template, tmp_path) -> Settings:
    key_file = tmp_path / "keys.json"
    shutil.copy(template["key_file"], key_file)
    os.chmod(key_file, 0o600)
    if PG_URL:
        name = f"portal_t_{uuid.uuid4().hex[:10]}"
        with _pg_admin(PG_URL).connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template["url"]).database}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    else:
        shutil.copy(Path(template["dir"]) / "portal.db", tmp_path / "portal.db")
        url = f"sqlite:///{tmp_path / 'portal.db'}"
    yield Settings(database_url=url, key_file=key_file)
    if PG_URL:
        with _pg_admin(PG_URL).connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def story(template):
    return template["story"]


@pytest.fixture
def db(settings):
    d = Database(settings.database_url)
    yield d
    d.dispose()


@pytest.fixture
def vault(settings):
    return Vault(KeyRing.load(settings.key_file))


# Building the Litestar app registers ~330 routes (about half a second): the suite builds one
# app per kind of settings and gives each test its own database, key file and vault in the
# app's state, which is all a request reads (tests of create_app itself call it directly).
_APPS: dict = {}


@pytest.fixture
def app(settings):
    import dataclasses

    from portal.app import app_state, create_app
    shape = repr(dataclasses.replace(settings, database_url="", key_file=Path()))
    app = _APPS.get(shape)
    if app is None:
        app = _APPS[shape] = create_app(settings)
    else:
        app.state.update(app_state(settings))
    yield app
    app.state.db.dispose()


@pytest.fixture
def client(app):
    from litestar.testing import TestClient
    with TestClient(app=app, base_url="http://testserver.local") as c:
        yield c


@pytest.fixture
def clock_at():
    """Freeze time: clock_at(datetime) — reset afterwards."""
    yield clock.set_now
    clock.set_now(None)
