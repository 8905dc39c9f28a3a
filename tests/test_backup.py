"""Backups (`portal backup`): made while the portal writes, restored whole into a fresh database on
SQLite and PostgreSQL (whichever the suite runs on), sealed so that neither a flipped byte nor
the wrong key goes unnoticed, and refused where a restore could overwrite data."""
from __future__ import annotations

import os
import stat
import threading
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from portal.audit import service as audit
from portal.backup import container, key as backup_key
from portal.backup.checks import decrypt_everything
from portal.backup.customer_keys import read_database
from portal.backup.container import BackupError
from portal.backup.service import create_backup, restore_backup, verify_backup
from portal.backup.snapshot import SnapshotError, figures_of
from portal.cli import main
from portal.db import Database
from portal.membership import members, points, purchases
from portal.membership.models import CardAccount, PointsEntryRow, StoredValueEntryRow
from portal.membership.outcomes import PurchaseRequest
from portal.membership.rules import PurchaseLine
from portal.vault import KeyRing

PG_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")


@pytest.fixture
def bkey(tmp_path):
    return backup_key.create(tmp_path / "keys" / "backup-key.json")


@pytest.fixture
def fresh_url(tmp_path):
    """An empty database to restore into: a new SQLite path, or a new PostgreSQL database."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'restored' / 'portal.db'}"
        return
    # A restore builds the schema, so it runs as the owner role (as `portal db upgrade` does).
    from .pg import admin_engine, as_owner, create_database
    url = create_database("portal_r")
    name = make_url(url).database
    yield as_owner(url)
    admin = admin_engine()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def backup_of(settings, bkey, tmp_path):
    return create_backup(settings.database_url, bkey, tmp_path / "backups",
                         key_files=(settings.key_file, tmp_path / "keys" / "backup-key.json"))


def ledgers_that_do_not_balance(url):
    db = Database(url)
    try:
        with db.read() as s:
            pts = dict(s.execute(select(PointsEntryRow.account_id, func.sum(PointsEntryRow.points))
                                 .group_by(PointsEntryRow.account_id)).all())
            fen = dict(s.execute(select(StoredValueEntryRow.account_id, func.sum(StoredValueEntryRow.amount_fen))
                                 .group_by(StoredValueEntryRow.account_id)).all())
            accounts = s.execute(select(CardAccount.id, CardAccount.points_balance,
                                        CardAccount.stored_value_fen)).all()
    finally:
        db.dispose()
    assert accounts and pts and fen
    return [a for a, p, v in accounts if (p, v) != (pts.get(a, 0), fen.get(a, 0))]


# ---------------------------------------------------------------- the whole round, under load

def test_a_backup_made_while_alice_sells_restores_whole(db, vault, story, settings, bkey, tmp_path, fresh_url):
    alice = story.actor(db, "alice")
    with db.write() as s:
        m = members.enrol(s, alice, uuid.UUID(story.files["alice"][0]), cause="application")
        number = members.current_card(s, members.primary_account(s, m).id).number
    writes = 0
    stop = threading.Event()
    failed: list[BaseException] = []

    def alice_sells() -> None:
        nonlocal writes
        try:
            while not stop.is_set():
                with db.write() as s:
                    if writes % 2:
                        points.recharge_stored_value(s, alice, number, 5_000)
                    else:
                        purchases.record_purchase(s, vault, alice, PurchaseRequest(
                            receipt_no=f"R{writes:05d}", lines=(PurchaseLine("茅台", 1, 12_800),),
                            payment_method="cash", card_number=number))
                writes += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failed.append(exc)

    writer = threading.Thread(target=alice_sells)
    writer.start()
    try:
        while writes < 3 and not failed:
            threading.Event().wait(0.01)
        made = backup_of(settings, bkey, tmp_path)
        during = writes
        while writes < during + 3 and not failed:
            threading.Event().wait(0.01)
    finally:
        stop.set()
        writer.join(60)
    assert not failed, failed
    manifest = made.manifest

    # The live log went on past the backup's head; the backup is what it was at one moment.
    with db.read() as s:
        live = audit.verify_chain(s)
    assert live.ok and live.count > manifest["audit"]["count"]
    assert manifest["database"] == ("postgresql" if PG_URL else "sqlite")
    assert manifest["schema_revision"] and manifest["files"][0]["sha256"]
    assert stat.S_IMODE(made.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(made.path.parent.stat().st_mode) == 0o700

    report = restore_backup(made.path, bkey, fresh_url, ring=KeyRing.load(settings.key_file),
                            keys=read_database(settings.database_url))
    assert report.ok, report.problems
    assert report.checked_values and report.checked_accounts and report.keys.copied

    # Checked here again, independently of the restore's own report:
    restored = Database(fresh_url)
    try:
        with restored.read() as s:
            chain = audit.verify_chain(s)
            opened = decrypt_everything(s, vault)
        with pytest.raises(Exception):  # the restored log is still append-only
            with restored.write() as s:
                s.execute(text("UPDATE audit_event SET reason = 'x' WHERE seq = 1"))
    finally:
        restored.dispose()
    assert chain.ok
    assert (chain.count, chain.head_hash) == (manifest["audit"]["count"], manifest["audit"]["head_hash"])
    assert opened.values > 50 and not opened.failures
    assert ledgers_that_do_not_balance(fresh_url) == []
    assert figures_of(fresh_url)[3] == manifest["tables"]


# ---------------------------------------------------------------- sealed

def flipped(path: Path, at: int) -> Path:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    out = path.with_name(f"flipped-{at}.pbk")
    out.write_bytes(bytes(data))
    return out


def test_a_flipped_byte_anywhere_fails_verify(settings, bkey, tmp_path):
    made = backup_of(settings, bkey, tmp_path)
    verify_backup(made.path, bkey)
    body = container.read_header(made.path).body_offset
    size = made.path.stat().st_size
    for at in (len(container.MAGIC) + 20, body + 2, body + 100, size // 2, size - 1):
        with pytest.raises(BackupError):
            verify_backup(flipped(made.path, at), bkey)
    cut = made.path.with_name("cut.pbk")
    cut.write_bytes(made.path.read_bytes()[:-17])
    with pytest.raises(BackupError, match="truncated"):
        verify_backup(cut, bkey)
    longer = made.path.with_name("longer.pbk")
    longer.write_bytes(made.path.read_bytes() + b"\0")
    with pytest.raises(BackupError, match="after its last file"):
        verify_backup(longer, bkey)


def test_neither_the_wrong_backup_key_nor_the_data_key_opens_a_backup(settings, bkey, tmp_path, fresh_url):
    made = backup_of(settings, bkey, tmp_path)
    other = backup_key.create(tmp_path / "other-key.json")
    with pytest.raises(BackupError, match=f"sealed with backup key {bkey.key_id}"):
        verify_backup(made.path, other)
    # The data key in place of the backup key, even with the manifest's key id forged to match:
    data_key = KeyRing.load(settings.key_file).data_keys[1]

    class Forged(backup_key.BackupKey):
        key_id = property(lambda self: bkey.key_id)

    forged = Forged(data_key)
    with pytest.raises(BackupError, match="authentication tag"):
        verify_backup(made.path, forged)
    with pytest.raises(BackupError):
        restore_backup(made.path, other, fresh_url)


def test_the_backup_key_file_is_private_and_never_replaced(tmp_path):
    path = tmp_path / "k" / "backup-key.json"
    k = backup_key.create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(backup_key.BackupKeyError, match="never overwritten"):
        backup_key.create(path)
    assert backup_key.load(path) == k


def test_a_backup_directory_holding_a_key_is_refused(settings, bkey, tmp_path):
    with pytest.raises(BackupError, match="inside the backup directory"):
        create_backup(settings.database_url, bkey, settings.key_file.parent,
                      key_files=(settings.key_file,))
    assert not list(settings.key_file.parent.glob("*.pbk"))


# ---------------------------------------------------------------- restore refuses, and reports

def test_restore_refuses_a_database_that_is_not_empty(settings, bkey, tmp_path):
    made = backup_of(settings, bkey, tmp_path)
    before = figures_of(settings.database_url)
    with pytest.raises(SnapshotError, match="not empty"):
        restore_backup(made.path, bkey, settings.database_url)
    assert figures_of(settings.database_url) == before


def test_a_restore_that_loses_entries_is_reported_and_exits_non_zero(settings, bkey, tmp_path, fresh_url,
                                                                    monkeypatch):
    """A backup whose database holds fewer audit entries than its manifest promised."""
    from portal.backup import snapshot
    work = tmp_path / "work"
    work.mkdir()
    snap = snapshot.take(settings.database_url, work)
    manifest = {"created": "2026-03-01T01:00:00.000000Z", "database": snap.kind,
                "schema_revision": snap.schema_revision,
                "audit": {"count": snap.audit_count + 2, "head_hash": "f" * 64}, "tables": snap.tables}
    short = tmp_path / "short.pbk"
    container.write(short, manifest, snap.files, bkey)
    report = restore_backup(short, bkey, fresh_url)
    assert any("2 lost" in p for p in report.problems), report.problems

    if not PG_URL:  # the command says so and fails (SQLite: a second fresh file is free)
        again = f"sqlite:///{tmp_path / 'again.db'}"
        r = CliRunner().invoke(main, ["backup", "restore", str(short), "--to", again,
                                      "--keys-from", settings.database_url], env={
            "PORTAL_BACKUP_KEY_FILE": str(tmp_path / "keys" / "backup-key.json"),
            "PORTAL_KEY_FILE": str(settings.key_file), "PORTAL_DATABASE_URL": settings.database_url})
        assert r.exit_code == 1
        assert "2 lost" in r.output and "fails 1 check" in r.output


# ---------------------------------------------------------------- the command line

def test_the_backup_commands_round_trip(settings, tmp_path, fresh_url):
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file),
           "PORTAL_BACKUP_KEY_FILE": str(tmp_path / "safe" / "backup-key.json"),
           "PORTAL_BACKUP_DIR": str(tmp_path / "backups"),
           "PORTAL_KEY_BACKUP_DIR": str(tmp_path / "key-backups")}

    def run(*args):
        r = CliRunner().invoke(main, list(args), env=env)
        assert "Traceback" not in r.output
        return r

    assert run("backup", "init-key").exit_code == 0
    created = run("backup", "create")
    assert created.exit_code == 0, created.output
    (path,) = (tmp_path / "backups").glob("portal-backup-*.pbk")
    verified = run("backup", "verify", str(path))
    assert verified.exit_code == 0 and "backup intact" in verified.output
    for _ in range(3):  # a key backup per run; the newest two are kept
        keys = run("backup", "keys", "--keep", "2")
        assert keys.exit_code == 0, keys.output
    key_backups = sorted((tmp_path / "key-backups").glob("portal-keys-*.pbk"))
    assert len(key_backups) == 2 and "deleted portal-keys-" in keys.output
    assert run("backup", "verify", str(key_backups[-1])).exit_code == 0
    no_keys = run("backup", "restore", str(path), "--to", fresh_url)
    assert no_keys.exit_code != 0 and "--keys-from URL" in no_keys.output
    swapped = run("backup", "restore", str(key_backups[-1]), "--to", fresh_url, "--keys", str(path))
    assert swapped.exit_code == 1 and "is not a key backup" in swapped.output
    restored = run("backup", "restore", str(path), "--to", fresh_url, "--keys", str(key_backups[-1]))
    assert restored.exit_code == 0, restored.output
    assert "restore verified" in restored.output and "customer keys from portal-keys-" in restored.output
    again = run("backup", "restore", str(path), "--to", fresh_url, "--keys-from", settings.database_url)
    assert again.exit_code == 1 and "not empty" in again.output
    assert run("backup", "prune", "--dry-run").exit_code == 0
    assert path.exists()
    # Creating the backups, and copying the keys out, were audited in the live database.
    db = Database(settings.database_url)
    try:
        with db.read() as s:
            counts = dict(s.execute(text("SELECT action, count(*) FROM audit_event WHERE action LIKE 'backup.%' "
                                         "GROUP BY action")).all())
    finally:
        db.dispose()
    assert counts == {"backup.create": 1, "backup.keys": 3}  # not for the refused restore
    for args in (["backup", "--help"], ["backup", "create", "--help"], ["backup", "prune", "--help"],
                 ["backup", "keys", "--help"]):
        assert run(*args).exit_code == 0


def test_no_key_travels_in_a_backup(settings, bkey, tmp_path, fresh_url):
    """Only the database is copied, and without the customers' own keys: neither the data key
    file's secrets, nor the backup key, nor any customer's (wrapped) key is in the decrypted
    contents, and a restore given no keys has none."""
    import base64
    made = backup_of(settings, bkey, tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()
    _, files = container.extract(made.path, bkey, plain)
    contents = b"".join(p.read_bytes() for p in files)
    ring = KeyRing.load(settings.key_file)
    secrets_ = [*ring.data_keys.values(), ring.index_key, ring.secret_key, ring.signing_key, bkey.key]
    for secret in secrets_:
        assert secret not in contents and base64.b64encode(secret) not in contents
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    wrapped = [r.key_ct for r in read_database(settings.database_url) if r.key_ct is not None]
    assert wrapped and made.manifest["customer_keys"] == {"excluded": True, "rows": len(wrapped)}
    if not PG_URL:  # (a pg_dump is compressed: the restore below shows it holds no key)
        assert not any(w in contents for w in wrapped)

    report = restore_backup(made.path, bkey, fresh_url)
    assert any("no customer keys given" in p for p in report.problems)
    assert figures_of(fresh_url)[3] == made.manifest["tables"]
    engine = create_engine(fresh_url)
    try:
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM customer_key")).scalar() == 0
    finally:
        engine.dispose()
