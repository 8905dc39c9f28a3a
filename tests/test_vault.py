"""Field encryption: AES-GCM bound to its row and column, blind indexes, key rotation, the key file."""
from __future__ import annotations

import base64
import os
import stat
import uuid

import pytest
from sqlalchemy import select

from .factories import stored_values
from portal.customers import service as customers
from portal.customers.models import CustomerFile
from portal.vault import KeyRing, Vault, VaultError

TABLE = "customer_file"


def seal(vault: Vault, value: str, *, column: str = "name", row_id=None):
    row_id = row_id or uuid.uuid4()
    return vault.encrypt(value, table=TABLE, column=column, row_id=row_id), row_id


def open_(vault: Vault, blob, *, column: str = "name", row_id) -> str | None:
    return vault.decrypt(blob, table=TABLE, column=column, row_id=row_id)


# ---------------------------------------------------------------- encrypt / decrypt

@pytest.mark.parametrize("value", ["王小明", "", "13800138000", "x" * 2000, "混合 text 🙂\n第二行"])
def test_a_value_comes_back_as_it_went_in(vault, value):
    blob, rid = seal(vault, value)
    assert open_(vault, blob, row_id=rid) == value


def test_nothing_stays_nothing(vault):
    assert vault.encrypt(None, table=TABLE, column="notes", row_id=1) is None
    assert vault.decrypt(None, table=TABLE, column="notes", row_id=1) is None


def test_the_blob_carries_version_key_id_and_a_fresh_nonce(vault):
    a, rid = seal(vault, "王小明")
    b = vault.encrypt("王小明", table=TABLE, column="name", row_id=rid)
    assert a[0] == 1 and Vault.key_id_of(a) == vault.active_key_id
    assert a[3:15] != b[3:15]  # a random 96-bit nonce each time
    assert a != b
    assert "王小明".encode() not in a
    assert len(a) == 3 + 12 + len("王小明".encode()) + 16  # header, nonce, ciphertext, GCM tag


def test_a_blob_moved_to_another_row_does_not_decrypt(vault):
    blob, rid = seal(vault, "王小明")
    with pytest.raises(VaultError):
        open_(vault, blob, row_id=uuid.uuid4())


def test_a_blob_moved_to_another_column_does_not_decrypt(vault):
    blob, rid = seal(vault, "13800138000", column="mobile")
    with pytest.raises(VaultError):
        open_(vault, blob, column="notes", row_id=rid)
    with pytest.raises(VaultError):
        vault.decrypt(blob, table="other_table", column="mobile", row_id=rid)


def test_a_blob_copied_between_files_in_the_database_does_not_decrypt(db, vault, story):
    alices, charlies = uuid.UUID(story.files["alice"][0]), uuid.UUID(story.files["charlie"][0])
    with db.write() as s:
        a, c = s.get(CustomerFile, alices), s.get(CustomerFile, charlies)
        c.mobile_ct = a.mobile_ct      # someone with database access swaps a number in
        a.notes_ct = a.mobile_ct       # or moves a value to another column of the same file
    with db.read() as s:
        c, a = s.get(CustomerFile, charlies), s.get(CustomerFile, alices)
        with pytest.raises(VaultError):
            customers._open(vault, c, ("mobile",))
        with pytest.raises(VaultError):
            customers._open(vault, a, ("notes",))
        assert customers._open(vault, a, ("mobile",))["mobile"]  # the original still opens


@pytest.mark.parametrize("where", ["ciphertext", "tag", "nonce"])
def test_a_tampered_blob_does_not_decrypt(vault, where):
    blob, rid = seal(vault, "王小明")
    pos = {"ciphertext": 16, "tag": len(blob) - 1, "nonce": 5}[where]
    bad = bytearray(blob)
    bad[pos] ^= 0x01
    with pytest.raises(VaultError):
        open_(vault, bytes(bad), row_id=rid)


def test_a_truncated_blob_does_not_decrypt(vault):
    blob, rid = seal(vault, "王小明")
    with pytest.raises(VaultError):
        open_(vault, blob[:-4], row_id=rid)


def test_an_unknown_version_or_key_does_not_decrypt(vault):
    blob, rid = seal(vault, "王小明")
    with pytest.raises(VaultError):
        open_(vault, b"\x02" + blob[1:], row_id=rid)
    with pytest.raises(VaultError):
        open_(vault, blob[:1] + (999).to_bytes(2, "big") + blob[3:], row_id=rid)


# ---------------------------------------------------------------- blind indexes

def test_the_blind_index_is_deterministic(vault):
    assert vault.blind_index("mobile", "13800138000") == vault.blind_index("mobile", "13800138000")
    assert vault.blind_index("mobile", "13800138000") != vault.blind_index("mobile", "13800138001")
    assert vault.blind_index("mobile", "13800138000") != vault.blind_index("id_number", "13800138000")
    assert "13800138000" not in vault.blind_index("mobile", "13800138000")


def test_the_blind_index_depends_on_the_index_key(vault, tmp_path):
    other = Vault(KeyRing.load_or_create(tmp_path / "other-keys.json"))
    assert other.blind_index("mobile", "13800138000") != vault.blind_index("mobile", "13800138000")


def test_the_blind_index_survives_data_key_rotation(vault, settings):
    before = vault.blind_index("mobile", "13800138000")
    vault.ring.add_key()
    assert Vault(KeyRing.load(settings.key_file)).blind_index("mobile", "13800138000") == before


# ---------------------------------------------------------------- rotation

def test_a_new_key_is_used_for_new_writes_and_old_blobs_still_open(vault, settings):
    old_blob, rid = seal(vault, "王小明")
    old_kid = vault.active_key_id
    new_kid = vault.ring.add_key()
    vault.reload()
    assert new_kid != old_kid and vault.active_key_id == new_kid
    new_blob = vault.encrypt("李娜", table=TABLE, column="name", row_id=rid)
    assert Vault.key_id_of(new_blob) == new_kid and Vault.key_id_of(old_blob) == old_kid
    assert open_(vault, old_blob, row_id=rid) == "王小明"
    assert open_(vault, new_blob, row_id=rid) == "李娜"


def test_another_process_picks_up_a_new_key_by_itself(vault, settings):
    other_process = Vault(KeyRing.load(settings.key_file))  # loaded before the rotation
    vault.ring.add_key()
    vault.reload()
    blob, rid = seal(vault, "王小明")
    assert open_(other_process, blob, row_id=rid) == "王小明"


def test_a_retired_key_no_longer_opens_its_blobs(vault, settings):
    old_blob, rid = seal(vault, "王小明")
    old_kid = vault.active_key_id
    with pytest.raises(ValueError):
        vault.ring.retire(old_kid)  # never the active key
    vault.ring.add_key()
    vault.ring.retire(old_kid)
    fresh = Vault(KeyRing.load(settings.key_file))
    assert old_kid not in fresh.ring.data_keys and old_kid in fresh.ring.retired
    with pytest.raises(VaultError):
        open_(fresh, old_blob, row_id=rid)


def test_rotation_rewraps_the_customers_keys_and_their_files_still_open_after_retiring(db, vault, story):
    """Files are sealed with each customer's own key; rotating the ring re-wraps those keys."""
    from portal import models
    from portal.encrypted_columns import SUBJECT_KEY, keys_in_use, reencrypt_all, registry
    from portal.subject_keys import CustomerKey

    old_kid = vault.active_key_id
    with db.read() as s:
        before = {f.id: customers.current_input(vault, f) for f in s.scalars(select(CustomerFile))}
        assert {Vault.key_id_of(f.name_ct) for f in s.scalars(select(CustomerFile))} == {SUBJECT_KEY}
    new_kid = vault.ring.add_key()
    vault.reload()
    reencrypt_all(db.write, vault, registry(models.metadata), new_kid, batch=3)
    with db.read() as s:
        assert keys_in_use(s, registry(models.metadata)) == {new_kid}
        assert {Vault.key_id_of(k) for k in s.scalars(select(CustomerKey.key_ct))} == {new_kid}
    vault.ring.retire(old_kid)
    fresh = Vault(KeyRing.load(vault.ring.path))
    with db.read() as s:
        after = {f.id: customers.current_input(fresh, f) for f in s.scalars(select(CustomerFile))}
    assert after == before


# ---------------------------------------------------------------- the key file

def test_the_key_file_is_created_readable_by_its_owner_only(tmp_path):
    old_umask = os.umask(0)  # even under a careless umask
    try:
        ring = KeyRing.load_or_create(tmp_path / "var" / "keys.json")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(ring.path.stat().st_mode) == 0o600
    ring.add_key()
    assert stat.S_IMODE(ring.path.stat().st_mode) == 0o600
    assert not list(ring.path.parent.glob("*.tmp"))  # written atomically, no leftovers


def test_the_key_file_is_loaded_not_replaced(tmp_path):
    a = KeyRing.load_or_create(tmp_path / "keys.json")
    b = KeyRing.load_or_create(tmp_path / "keys.json")
    assert a.data_keys == b.data_keys and a.index_key == b.index_key and a.secret_key == b.secret_key


def _key_material(ring: KeyRing) -> list[bytes]:
    secrets_ = [*ring.data_keys.values(), ring.index_key, ring.secret_key]
    forms = []
    for k in secrets_:
        forms += [k, base64.b64encode(k), k.hex().encode(), base64.urlsafe_b64encode(k)]
    return forms




def test_key_material_never_reaches_the_database(client, db, vault, settings, story):
    from .browser import post, signed_in

    vault.ring.add_key()  # a rotation, so more than one data key exists
    signed_in(client, "alice")
    r = post(client, "/customers/new", {"name": "钥匙测试", "gender": "M", "mobile": "13911112222",
                                        "category": "individual"})
    assert r.status_code == 303
    client.get(r.headers["location"])
    ring = KeyRing.load(settings.key_file)
    stored = stored_values(db)
    blob = b"\x00".join(stored)
    for material in _key_material(ring):
        assert material not in blob
    if db.sqlite:
        path = db.engine.url.database
        for suffix in ("", "-wal"):
            if os.path.exists(path + suffix):
                raw = open(path + suffix, "rb").read()
                for material in _key_material(ring):
                    assert material not in raw


def test_key_material_never_reaches_the_logs(client, vault, settings, story, caplog):
    import logging

    from .browser import post, signed_in

    caplog.set_level(logging.DEBUG)
    signed_in(client, "alice")
    client.get(f"/customers/{story.files['alice'][0]}")
    post(client, "/customers/export.csv", {"purpose": "log test"})
    vault.ring.add_key()
    vault.reload()
    logged = caplog.text.encode("utf-8")
    for material in _key_material(KeyRing.load(settings.key_file)):
        assert material not in logged
