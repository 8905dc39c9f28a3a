"""Key rotation covers every encrypted column of every table (customer files, second-factor
secrets, and whatever comes next): after `portal keys rotate` retires the old key and the
servers restart, leaders, auditors and administrators still sign in with their second factor."""
from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.types import LargeBinary

from portal import models
from portal.accounts import service as accounts
from portal.accounts.models import User, WebSession
from portal.audit.models import AuditEvent
from portal.cli import integrity, main
from portal.customers import service as customers
from portal.encrypted_columns import is_binary, key_counts, registry
from portal.vault import KeyRing, Vault

from .browser import csrf_of, sign_in, signed_in
from .factories import PASSWORD, totp_secret
from .test_mfa import BASE, CODES_RE, SECRET_RE, answer, code_now, sign_out

REGISTRY = registry(models.metadata)
REGISTERED = {(et.name, c.name) for et in REGISTRY for c in et.columns}


@pytest.fixture(autouse=True)
def _no_wait(monkeypatch):
    monkeypatch.setattr(integrity, "FOLLOW_SECONDS", 0.0)


def cli(settings, *args: str):
    result = CliRunner().invoke(main, list(args), env={
        "PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file),
        "PORTAL_DEBUG": "0"})
    assert "Traceback" not in result.output, result.output
    return result


def open_browser(settings) -> TestClient:
    """A browser on a freshly started server process (its own app, vault and key file read)."""
    from portal.app import create_app

    c = TestClient(app=create_app(settings), base_url=BASE)
    c.__enter__()
    c.headers["Accept-Language"] = "en"
    return c


def enrol_new_leader(settings, db, username: str) -> tuple[str, list[str]]:
    with db.write() as s:
        accounts.add_user(s, username, "leader", "755A", PASSWORD, display_name=username.title())
    c = open_browser(settings)
    try:
        sign_in(c, username)
        page = c.get("/account/2fa")
        secret = SECRET_RE.search(page.text).group(1)
        r = c.post("/account/2fa", data={"code": code_now(secret), "_csrf": csrf_of(page.text)},
                   follow_redirects=False)
        assert r.status_code == 200
        return secret, CODES_RE.findall(r.text)
    finally:
        c.__exit__(None, None, None)


# ---------------------------------------------------------------- the registry

def test_the_registry_holds_customer_files_and_second_factor_secrets():
    assert ("user_account", "totp_secret_ct") in REGISTERED
    assert {("customer_file", f"{f}_ct") for f in customers.PERSONAL_FIELDS} <= REGISTERED


def test_every_binary_column_in_the_database_is_registered_ciphertext_or_says_why_not(settings):
    """A table (from any migration) with a binary column the registry misses fails here: rotation
    would skip it and retiring a key would make it unreadable."""
    engine = create_engine(settings.database_url)
    try:
        insp = inspect(engine)
        binary = {(t, c["name"]) for t in insp.get_table_names() for c in insp.get_columns(t)
                  if isinstance(c["type"], LargeBinary)}
    finally:
        engine.dispose()
    exempt = {(t.name, c.name) for t in models.metadata.tables.values() for c in t.columns
              if is_binary(c) and c.info.get("not_ciphertext")}
    assert binary, "the schema has encrypted columns"
    assert binary - exempt == REGISTERED


def test_every_sealed_value_in_the_database_lies_in_a_registered_column(db, vault, story):
    """Whatever table a later change seals values into, under whatever column name: every value
    that opens as a vault blob under the key ring must sit in a registered column."""
    ring_keys = set(vault.ring.data_keys)
    found = set()
    with db.read() as s:
        for table in models.metadata.sorted_tables:
            for row in s.execute(select(table)).mappings():
                for name, value in row.items():
                    if isinstance(value, (bytes, memoryview)) and len(value) >= 31 \
                            and bytes(value)[0] == 1 and Vault.key_id_of(value) in ring_keys:
                        found.add((table.name, name))
    assert ("user_account", "totp_secret_ct") in found and ("customer_file", "name_ct") in found
    assert found <= REGISTERED


# ---------------------------------------------------------------- rotate, status, retire

def test_rotation_keeps_second_factors_working(settings, db, story):
    secret, codes = enrol_new_leader(settings, db, "nina")
    r = cli(settings, "keys", "rotate")
    assert r.exit_code == 0, r.output
    assert "retired key(s) 1" in r.output
    assert "user_account" in r.output and "customer_file" in r.output
    ring = KeyRing.load(settings.key_file)
    assert 1 not in ring.data_keys and ring.active == 2
    with db.read() as s:
        for u in s.scalars(select(User).where(User.totp_secret_ct.is_not(None))):
            assert Vault.key_id_of(u.totp_secret_ct) == 2

    # Restart: a new server process reads the key file afresh.
    c = open_browser(settings)
    try:
        signed_in(c, "bob")  # the story's leader, with a TOTP code
        assert c.get("/approvals").status_code == 200
        sign_out(c)

        assert sign_in(c, "nina").headers["location"].startswith("/login/totp")
        assert answer(c, codes[0]).status_code == 303  # a recovery code
        assert c.get("/approvals").status_code == 200
        sign_out(c)

        sign_in(c, "nina")
        assert answer(c, code_now(secret, 1)).status_code == 303  # and the authenticator app
    finally:
        c.__exit__(None, None, None)
    with db.read() as s:
        seen = [e.detail for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action == "auth.second_factor", AuditEvent.outcome == "allowed",
            AuditEvent.actor_username == "nina"))]
    assert seen == ["recovery code", "totp"]


def test_status_counts_second_factor_secrets_and_retire_keeps_the_key_they_use(settings, db, vault, story):
    with db.read() as s:
        enrolled = len(list(s.scalars(select(User.id).where(User.totp_secret_ct.is_not(None)))))
    assert enrolled >= 3
    # The old way: a new key and only customer files re-encrypted.
    vault.ring.add_key()
    vault.reload()
    with db.write() as s:
        while customers.reencrypt_batch(s, vault):
            pass
    with db.read() as s:
        counts = key_counts(s, REGISTRY)
    assert counts["user_account"] == {1: enrolled} and set(counts["customer_file"]) == {2}

    status = cli(settings, "keys", "status")
    assert status.exit_code == 0, status.output
    lines = status.output.splitlines()
    assert lines[1].split() == ["key", "state", "customer_file", "member_contact", "outbox_message", "user_account"]
    assert lines[3].split()[:2] == ["1", "held"] and lines[3].split()[-1] == str(enrolled)

    r = cli(settings, "keys", "retire")
    assert r.exit_code == 0 and "no unused keys to retire" in r.output
    assert 1 in KeyRing.load(settings.key_file).data_keys
    c = open_browser(settings)  # the key still held, second factors still open
    try:
        signed_in(c, "bob")
    finally:
        c.__exit__(None, None, None)


def test_a_failed_key_is_named_by_table_and_row_not_by_content(settings, db, story):
    with db.write() as s:
        bob = s.scalar(select(User).where(User.username == "bob"))
        bob.totp_secret_ct = bytes(bob.totp_secret_ct[:-1]) + bytes([bob.totp_secret_ct[-1] ^ 1])
        bob_id = bob.id
    r = cli(settings, "keys", "rotate")
    assert r.exit_code == 1
    assert f"user_account.totp_secret_ct of row {bob_id}" in r.output
    assert 1 in KeyRing.load(settings.key_file).data_keys  # nothing retired


# ---------------------------------------------------------------- reset-2fa

def test_reset_2fa_makes_the_user_enrol_again_and_is_audited(settings, db, story):
    c = open_browser(settings)
    try:
        signed_in(c, "bob")
        r = cli(settings, "user", "reset-2fa", "Bob")
        assert r.exit_code == 0, r.output
        assert "reset the second factor of bob" in r.output
        with db.read() as s:
            bob = s.scalar(select(User).where(User.username == "bob"))
            assert bob.totp_secret_ct is None and bob.totp_enabled_at is None
            assert s.scalar(select(WebSession).where(WebSession.user_id == bob.id)) is None
            last = s.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()))
        assert (last.action, last.actor_username, last.object_id) == ("mfa.reset", "cli", "bob")
        assert c.get("/approvals", follow_redirects=False).status_code in (302, 303)  # signed out
        r = sign_in(c, "bob")
        assert r.headers["location"].startswith("/account/2fa")  # enrols again
    finally:
        c.__exit__(None, None, None)


def test_reset_2fa_of_an_unknown_user_is_refused(settings, story):
    r = cli(settings, "user", "reset-2fa", f"nobody-{uuid.uuid4().hex[:6]}")
    assert r.exit_code == 2 and "no user" in r.output


def test_reset_2fa_has_help():
    r = CliRunner().invoke(main, ["user", "reset-2fa", "--help"])
    assert r.exit_code == 0 and "next sign-in" in r.output
