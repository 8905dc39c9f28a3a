"""`portal doctor` finds what is dangerous; `portal serve` will not start in production until fixed."""
from __future__ import annotations

import dataclasses
from datetime import timedelta, timezone

from click.testing import CliRunner

from portal import doctor
from portal.cli import main

from .factories import PASSWORD
from .pg import APP_ROLE, PG_URL


def run(settings, *args, **env):
    base = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file),
            "PORTAL_DEMO_PASSWORD": "", "PORTAL_ENV": "", "PORTAL_TRUST_PROXY": "0", "PORTAL_DEBUG": "0"}
    return CliRunner().invoke(main, list(args), env={**base, **env})


def levels(settings, name: str) -> set[str]:
    return {f.level for f in doctor.run(settings) if f.check == name}


def test_a_key_file_others_can_read_is_dangerous(settings, story):
    assert levels(settings, "key file") == {"ok"}
    settings.key_file.chmod(0o644)
    r = run(settings, "doctor")
    assert r.exit_code == 1
    assert f"DANGER   key file: {settings.key_file} is readable by others (mode 0644)" in r.output


def test_demo_accounts_with_the_demo_password_are_dangerous(settings, story):
    # The story's alice, bob, ... are demo user names; say their password is the demo one.
    r = run(settings, "doctor", PORTAL_DEMO_PASSWORD=PASSWORD)
    assert r.exit_code == 1 and "sign in with the demo password: alice, bob" in r.output
    r = run(settings, "doctor", "--quiet", PORTAL_DEMO_PASSWORD="another-demo-password")
    assert "demo password" not in r.output


def test_production_without_a_trusted_proxy_would_send_cookies_without_secure(settings, story):
    assert levels(dataclasses.replace(settings, env="production"), "proxy and cookies") == {"danger"}
    assert levels(dataclasses.replace(settings, env="production", trust_proxy=True), "proxy and cookies") == {"ok"}


def test_audit_entries_left_unsigned_for_a_day_are_dangerous(settings, story, clock_at):
    # A minute after the story's newest entry (the story is made once per test session, which
    # may have begun long ago) nothing is old yet; two days later it is.
    from sqlalchemy import func, select

    from portal.audit.models import AuditEvent
    from portal.db import Database
    db = Database(settings.database_url)
    with db.read() as s:
        newest = s.scalar(select(func.max(AuditEvent.at)))
    db.dispose()
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=timezone.utc)
    clock_at(newest + timedelta(minutes=1))
    assert levels(settings, "audit checkpoint") == {"ok"}
    clock_at(newest + timedelta(days=2))
    assert levels(settings, "audit checkpoint") == {"danger"}
    r = run(settings, "jobs", "checkpoint")
    assert r.exit_code == 0
    assert levels(settings, "audit checkpoint") == {"ok"}


def test_the_database_role_is_checked_on_postgresql(settings, story):
    # SQLite: no roles; the suite's application role: fine; a superuser or the owner: a warning
    # (a danger in production).
    expected = set() if not PG_URL else {"ok"} if APP_ROLE else {"warning"}
    assert levels(settings, "database role") == expected


def test_serve_refuses_to_start_in_production_while_the_doctor_finds_danger(settings, story):
    settings.key_file.chmod(0o644)
    r = run(settings, "serve", "--port", "1", PORTAL_ENV="production", PORTAL_TRUST_PROXY="1")
    assert r.exit_code == 1
    assert "refusing to start with PORTAL_ENV=production" in r.output and "key file" in r.output
    assert "serving on" not in r.output
