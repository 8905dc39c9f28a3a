"""Personal data: erasure by crypto-shredding (a leader approves; the customer's own key is
destroyed, and backups never hold it, so the database and a backup made before the erasure no
longer open their fields), the subject access report, correction requests linked to the edit that
answered them, retention, and moving old files to their own keys."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from portal.audit.models import AuditEvent
from portal.audit.service import verify_chain
from portal.backup import key as backup_key
from portal.backup.customer_keys import read_database, read_key_backup, write_key_backup
from portal.backup.service import create_backup, restore_backup
from portal.cli import main
from portal.customers import service as customers
from portal.customers.models import CustomerFile
from portal.customers.service import InvalidInput
from portal.db import Database, sqlite_path
from portal.membership.models import Membership, PointsEntryRow, StoredValueEntryRow
from portal.policy import PermissionDenied
from portal.privacy import erasure
from portal.privacy.models import CorrectionRequest, ErasureRequest
from portal.subject_keys import CustomerKey
from portal.vault import KeyRing, Vault, VaultError

from .browser import csrf_of, post, signed_in
from .factories import customer_input
from .test_backup import fresh_url  # noqa: F401  (a fixture)
from .test_key_rotation import cli
from .test_membership_service import at, buy


def ledger_sums(db) -> tuple[int, int, int]:
    with db.read() as s:
        return (s.scalar(select(func.coalesce(func.sum(PointsEntryRow.points), 0))),
                s.scalar(select(func.coalesce(func.sum(StoredValueEntryRow.amount_fen), 0))),
                s.scalar(select(func.count()).select_from(PointsEntryRow)))


def request_and_approve(db, story, fid, requester="alice", approver="bob") -> int:
    with db.write() as s:
        req = erasure.request_erasure(s, story.actor(db, requester), fid, "the customer asked us to")
    with db.write() as s:
        erasure.approve(s, story.actor(db, approver), req.id)
    return req.id


# ---------------------------------------------------------------- erasure

def test_an_erased_customer_is_unreadable_in_the_database_and_in_a_backup_made_before_the_erasure(
        settings, db, vault, story, clock_at, tmp_path, fresh_url):
    clock_at(at(2025, 3, 1))
    fid = uuid.UUID(story.files["alice"][0])
    other = uuid.UUID(story.files["alice"][1])
    alice = story.actor(db, "alice")
    buy(db, vault, alice, "R-1", 700, customer=str(fid))  # a member now, with ledger entries
    sums = ledger_sums(db)
    with db.read() as s:
        assert customers.current_input(vault, s.get(CustomerFile, fid)).name == "王小明"
        wrapped = bytes(s.get(CustomerKey, fid).key_ct)
    bkey = backup_key.create(tmp_path / "safe" / "backup-key.json")
    before = create_backup(settings.database_url, bkey, tmp_path / "backups")
    write_key_backup(settings.database_url, bkey, tmp_path / "key-backups")

    request_and_approve(db, story, fid)

    # The database: ciphertext without a key, no blind index, nothing else that names them.
    with db.read() as s:
        f = s.get(CustomerFile, fid)
        assert f.erased_at is not None and f.file_no == "755 00001"
        assert f.name_ct is not None and f.mobile_bidx is None and f.name_bidx is None
        assert s.get(CustomerKey, fid).key_ct is None
        assert customers.current_input(vault, f).name == ""  # nothing opens, nothing fails
        assert s.scalar(select(Membership.pin_hash).where(Membership.customer_id == fid)) is None
        assert customers.current_input(vault, s.get(CustomerFile, other)).name == "李娜"
        details = " ".join(e.detail + e.reason + e.fields for e in s.scalars(select(AuditEvent)))
        assert "王小明" not in details
    fresh = Vault(KeyRing.load(settings.key_file))  # another process: no key left to find
    with db.read() as s:
        assert fresh.decrypt(s.get(CustomerFile, fid).name_ct, table="customer_file", column="name",
                             row_id=fid) is None
    path = sqlite_path(settings.database_url)
    if path is not None:  # nor in the file's free space or its write-ahead log
        for suffix in ("", "-wal"):
            side = Path(str(path) + suffix)
            left = side.exists() and wrapped in side.read_bytes()
            assert not left, f"the destroyed key is still in {side.name}"

    # The next key backup rewrites the one made before the erasure without the key.
    write_key_backup(settings.database_url, bkey, tmp_path / "key-backups")
    for kb in (tmp_path / "key-backups").glob("*.pbk"):
        assert [r.key_ct for r in read_key_backup(kb, bkey)[1] if r.customer_id == fid] == [None]

    # The backup made before the erasure holds no customer key; restored with the keys there are,
    # the customer is erased there too, while every other value opens and every ledger balances.
    report = restore_backup(before.path, bkey, fresh_url, ring=KeyRing.load(settings.key_file),
                            keys=read_database(settings.database_url))
    assert report.ok, report.problems
    assert report.keys.erased_again == ["755 00001"] and report.checked_values and report.checked_accounts
    restored = Database(fresh_url)
    try:
        with restored.read() as s:
            f = s.get(CustomerFile, fid)
            assert f.erased_at is not None and f.name_bidx is None
            assert fresh.decrypt(f.name_ct, table="customer_file", column="name", row_id=fid) is None
            assert customers.current_input(fresh, s.get(CustomerFile, other)).name == "李娜"
            assert s.get(CustomerKey, fid).key_ct is None
        assert ledger_sums(restored) == sums  # and report.ok: every account equals its ledger
    finally:
        restored.dispose()
    for url in (settings.database_url, fresh_url):
        r = CliRunner().invoke(main, ["audit", "verify"], env={
            "PORTAL_DATABASE_URL": url, "PORTAL_KEY_FILE": str(settings.key_file), "PORTAL_DEBUG": "0"})
        assert r.exit_code == 0, r.output
    assert ledger_sums(db) == sums


def test_the_requester_never_approves_and_a_leader_outside_the_file_cannot(db, story):
    fid = uuid.UUID(story.files["alice"][0])
    with db.write() as s:
        req = erasure.request_erasure(s, story.actor(db, "bob"), fid, "customer left the country")
    with db.write() as s, pytest.raises(InvalidInput):
        erasure.approve(s, story.actor(db, "bob"), req.id)
    with db.write() as s, pytest.raises(PermissionDenied):
        erasure.approve(s, story.actor(db, "henry"), req.id)
    with db.write() as s, pytest.raises(PermissionDenied):
        erasure.request_erasure(s, story.actor(db, "charlie"), fid, "not my file at all")
    with db.write() as s:
        erasure.approve(s, story.actor(db, "grace"), req.id)  # the region's leader, above bob
    with db.read() as s:
        assert s.get(ErasureRequest, req.id).status == "approved"


def test_an_erased_file_shows_as_erased_in_lists_search_the_file_and_the_members_pages(
        client, db, vault, story, clock_at):
    clock_at(at(2025, 3, 1))
    fid = uuid.UUID(story.files["alice"][0])
    buy(db, vault, story.actor(db, "alice"), "R-2", 700, customer=str(fid))
    request_and_approve(db, story, fid)
    signed_in(client, "alice")
    page = client.get("/customers")
    assert page.status_code == 200 and 'data-testid="erased"' in page.text and "王*明" not in page.text
    found = post(client, "/customers/search", {"q": "755 00001"})
    assert found.status_code == 200 and 'data-testid="erased"' in found.text
    assert "755 00001" not in post(client, "/customers/search", {"q": "王小明"}).text
    card = client.get(f"/customers/{fid}")
    assert card.status_code == 200 and 'data-testid="erased"' in card.text and "13800130000" not in card.text
    for path in ("/members/birthdays", "/members/expiring", "/"):
        assert client.get(path).status_code == 200, path
    edit = post(client, f"/customers/{fid}/edit", {**{k: "" for k in customers.PERSONAL_FIELDS},
                                                  "name": "新名字", "gender": "M", "mobile": "13900139000",
                                                  "category": "individual"})
    assert edit.status_code == 400


def test_an_erasure_request_and_its_refusal_in_the_browser(client, db, story):
    fid = story.files["alice"][1]
    signed_in(client, "alice")
    bad = post(client, f"/customers/{fid}/privacy/erasure", {"reason": "x"})
    assert bad.status_code == 400 and 'data-error="reason"' in bad.text
    assert post(client, f"/customers/{fid}/privacy/erasure", {"reason": "the customer asked"}).status_code == 303
    signed_in(client, "bob")
    queue = client.get("/privacy/erasures")
    assert queue.status_code == 200 and "755 00002" in queue.text
    with db.read() as s:
        rid = s.scalar(select(ErasureRequest.id).where(ErasureRequest.customer_id == uuid.UUID(fid)))
    assert post(client, f"/privacy/erasures/{rid}/refuse", {"note": "under a legal hold"}).status_code == 303
    with db.read() as s:
        assert s.get(ErasureRequest, rid).status == "refused"
        assert s.get(CustomerFile, uuid.UUID(fid)).erased_at is None


# ---------------------------------------------------------------- correction

def test_a_correction_request_is_answered_by_an_edit_it_links_to(client, db, vault, story):
    fid = story.files["alice"][0]
    signed_in(client, "alice")
    client.headers["Accept-Language"] = "en"
    bad = post(client, f"/customers/{fid}/privacy/corrections", {"field_name": "mobile", "details": ""})
    assert bad.status_code == 400 and 'data-error="details"' in bad.text
    r = post(client, f"/customers/{fid}/privacy/corrections",
             {"field_name": "mobile", "details": "my number is now 13900139000"})
    assert r.status_code == 303
    page = client.get(f"/customers/{fid}/privacy")
    assert "my number is now 13900139000" in page.text
    with db.read() as s:
        req = s.scalar(select(CorrectionRequest).where(CorrectionRequest.customer_id == uuid.UUID(fid)))
        assert b"13900139000" not in bytes(req.details_ct)  # sealed with the customer's own key
    wrong = post(client, f"/privacy/corrections/{req.id}/answer", {"value": "12345"})
    assert wrong.status_code == 400 and 'data-error="value"' in wrong.text
    assert post(client, f"/privacy/corrections/{req.id}/answer", {"value": "13900139000"}).status_code == 303
    with db.read() as s:
        req = s.get(CorrectionRequest, req.id)
        edit = s.get(AuditEvent, req.answer_seq)
        assert req.status == "answered" and edit.action == "customer.edit" and "mobile" in edit.fields
        assert customers.current_input(vault, s.get(CustomerFile, uuid.UUID(fid))).mobile == "13900139000"
    assert f"audit entry {req.answer_seq}" in client.get(f"/customers/{fid}/privacy").text
    signed_in(client, "charlie")
    assert client.get(f"/customers/{fid}/privacy").status_code == 403


# ---------------------------------------------------------------- subject access report

def test_the_access_report_lists_the_file_and_who_opened_it_and_is_audited(client, db, story):
    fid = story.files["alice"][0]
    signed_in(client, "alice")
    client.get(f"/customers/{fid}")
    signed_in(client, "charlie")
    assert client.get(f"/customers/{fid}/access-report").status_code == 403
    for who in ("bob", "dave"):
        signed_in(client, who)
        client.headers["Accept-Language"] = "en"
        page = client.get(f"/customers/{fid}/access-report")
        assert page.status_code == 200, who
        assert "王小明" in page.text and "13800130000" in page.text
        rows = re.findall(r"<tr><td class=\"nowrap\">[^<]*</td><td>(\w+)</td><td>(\w+)</td><td>([\w.]+)</td>", page.text)
        assert ("alice", "salesperson", "customer.view") in rows
    client.headers["Accept-Language"] = "zh-CN"
    assert "查阅报告" in client.get(f"/customers/{fid}/access-report").text
    with db.read() as s:
        made = s.execute(select(AuditEvent.actor_username, AuditEvent.outcome)
                         .where(AuditEvent.action == "privacy.report")).all()
    assert set(made) == {("bob", "allowed"), ("dave", "allowed"), ("charlie", "denied")}


# ---------------------------------------------------------------- retention

def test_retention_proposes_a_lapsed_members_file_and_a_leader_approves(client, settings, db, vault, story,
                                                                       clock_at):
    clock_at(at(2025, 3, 1))
    fid = uuid.UUID(story.files["alice"][2])
    buy(db, vault, story.actor(db, "alice"), "R-3", 700, customer=str(fid))
    clock_at(None)
    signed_in(client, "erin")
    assert post(client, "/privacy/retention", {"days": "10", "effective_from": ""}).status_code == 400
    assert post(client, "/privacy/retention", {"days": "365", "note": "one year"}).status_code == 303
    with db.write() as s:
        s.execute(update(Membership).where(Membership.customer_id == fid)
                  .values(status="ended", updated_at=datetime.now(timezone.utc) - timedelta(days=400)))
    r = cli(settings, "jobs", "retention")
    assert r.exit_code == 0 and "755 00003" in r.output and "1 file(s)" in r.output, r.output
    assert "0 file(s)" in cli(settings, "jobs", "retention").output  # one waiting request per file
    with db.read() as s:
        req = s.scalar(select(ErasureRequest).where(ErasureRequest.customer_id == fid))
        assert req.origin == "retention" and req.requested_by_id is None
    with db.write() as s:
        erasure.approve(s, story.actor(db, "bob"), req.id)
    with db.read() as s:
        assert s.get(CustomerFile, fid).erased_at is not None


# ---------------------------------------------------------------- migration to per-customer keys

def test_keys_rotate_moves_files_under_a_ring_key_to_their_customers_own_keys(settings, db, vault, story):
    """A file from before per-customer keys (sealed under the ring key) still opens; rotation
    moves it to its own key in batches and says so."""
    with db.write() as s:
        f = customers.create_file(s, vault, story.actor(db, "alice"), customer_input(3))
        fid = f.id
        kid = vault.current_key()
        old = {f"{c}_ct": vault.encrypt(v, table="customer_file", column=c, row_id=fid, key_id=kid)
               for c, v in customer_input(3).personal().items()}
        s.execute(update(CustomerFile).where(CustomerFile.id == fid).values(key_id=kid, **old))
        s.execute(CustomerKey.__table__.delete().where(CustomerKey.customer_id == fid))
    with db.read() as s:
        assert customers.current_input(vault, s.get(CustomerFile, fid)).name == "刘洋"
    r = cli(settings, "keys", "rotate", "--batch", "2")
    assert r.exit_code == 0, r.output
    assert "customer_file: 1 row(s) re-encrypted" in r.output
    fresh = Vault(KeyRing.load(settings.key_file))
    with db.read() as s:
        f = s.get(CustomerFile, fid)
        assert Vault.subject_of(f.name_ct) == fid and f.key_id == 0
        assert customers.current_input(fresh, f).name == "刘洋"
    status = cli(settings, "keys", "status")
    assert status.exit_code == 0 and "own" in status.output, status.output


def test_a_file_not_yet_on_its_own_key_is_still_erased(db, vault, story):
    fid = uuid.UUID(story.files["charlie"][0])
    with db.write() as s:
        kid = vault.current_key()
        s.execute(update(CustomerFile).where(CustomerFile.id == fid).values(
            name_ct=vault.encrypt("张伟", table="customer_file", column="name", row_id=fid, key_id=kid)))
    request_and_approve(db, story, fid, requester="charlie", approver="grace")
    with db.read() as s:
        assert s.get(CustomerFile, fid).name_ct is None


def test_a_blob_sealed_for_one_customer_does_not_open_for_another(db, vault, story):
    a, b = (uuid.UUID(story.files["alice"][i]) for i in (0, 1))
    with db.read() as s:
        blob = s.get(CustomerFile, a).name_ct
        with pytest.raises(VaultError):
            vault.decrypt(blob, table="customer_file", column="name", row_id=b)
    with pytest.raises(VaultError):  # outside a transaction there is no key to read
        vault.decrypt(blob, table="customer_file", column="name", row_id=a)


def test_csrf_token_is_required_to_request_erasure(client, story):
    fid = story.files["alice"][0]
    signed_in(client, "alice")
    page = client.get(f"/customers/{fid}/privacy")
    assert csrf_of(page.text)
    r = client.post(f"/customers/{fid}/privacy/erasure", data={"reason": "the customer asked"})
    assert r.status_code == 403
