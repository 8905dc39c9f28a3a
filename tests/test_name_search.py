"""Search by name, surname (王总) and the mobile's last four digits: within the user's scope only,
through keyed blind indexes (no plain name anywhere in the database)."""
from __future__ import annotations

import hashlib
import re
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from portal.audit.models import AuditEvent
from portal.cli import main
from portal.customers import names, search
from portal.customers import service as customers
from portal.customers.models import CustomerFile

from .browser import post, signed_in
from .factories import customer_input, stored_values

# The story's files: alice 王小明 …0000, 李娜 …0001, 张伟 …0002; charlie 刘洋 …0003,
# 陈静 …0004; frank 欧阳修 …0005; bob 王小明 …0006 (mobiles 1380013xxxx).


def found(client, q: str) -> list[str]:
    r = post(client, "/customers/search", {"q": q})
    assert r.status_code == 200, r.text[:300]
    return re.findall(r'<a href="/customers/([0-9a-f-]{36})">', r.text)


def test_alice_finds_her_client_by_full_name(client, story):
    signed_in(client, "alice")
    assert found(client, "王小明") == [story.files["alice"][0]]


def test_alices_search_never_finds_charlies_client_by_name(client, story):
    signed_in(client, "alice")
    assert found(client, "刘洋") == []
    assert found(client, "刘") == []
    signed_in(client, "charlie")
    assert found(client, "刘洋") == [story.files["charlie"][0]]


def test_the_same_name_on_a_colleagues_file_stays_out_of_alices_results(client, story):
    signed_in(client, "alice")
    assert story.files["bob"][0] not in found(client, "王小明")
    signed_in(client, "bob")  # bob leads alice's team: both 王小明 files are his to see
    assert set(found(client, "王小明")) == {story.files["alice"][0], story.files["bob"][0]}


def test_surname_search(client, story):
    signed_in(client, "alice")
    assert found(client, "王") == [story.files["alice"][0]]
    assert found(client, "李") == [story.files["alice"][1]]
    assert found(client, "赵") == []


@pytest.mark.parametrize("q", ["王总", "王经理", "王先生", "老王", "王 总"])
def test_a_surname_with_a_title_finds_the_surnames_files(client, story, q):
    signed_in(client, "alice")
    assert found(client, q.replace(" ", "")) == [story.files["alice"][0]]


def test_a_compound_surname_is_a_whole_surname(client, story):
    signed_in(client, "frank")
    assert found(client, "欧阳") == [story.files["frank"][0]]
    assert found(client, "欧阳总") == [story.files["frank"][0]]
    assert found(client, "欧") == []  # 欧阳修's surname is 欧阳, not 欧


def test_last_four_digits_of_the_mobile(client, story):
    signed_in(client, "alice")
    assert found(client, "0001") == [story.files["alice"][1]]
    assert found(client, "0003") == []  # charlie's client


def test_a_truncated_index_collision_is_not_a_result(client, db, vault, story):
    """The tail index is many-to-one: another ending with the same index value is filtered out
    by decrypting the mobile."""
    target = search.tail_index(vault, "0001")
    other = next(f"{n:04d}" for n in range(10000)
                 if f"{n:04d}" != "0001" and search.tail_index(vault, f"{n:04d}") == target)
    actor = story.actor(db, "alice")
    with db.write() as s:
        f = customers.create_file(s, vault, actor, customer_input(40, mobile=f"1391234{other}",
                                                                  id_number=None, birthday=None))
        fid = str(f.id)
    signed_in(client, "alice")
    assert found(client, "0001") == [story.files["alice"][1]]
    assert found(client, other) == [fid]


def test_a_name_search_is_audited_without_the_name(client, db, story):
    signed_in(client, "alice")
    found(client, "王总")
    with db.read() as s:
        entry = s.scalar(select(AuditEvent).where(AuditEvent.action == "customer.search")
                         .order_by(AuditEvent.seq.desc()).limit(1))
    assert entry.fields == "name" and entry.outcome == "allowed"
    assert "王" not in entry.detail + entry.reason + entry.object_id


def test_an_edit_of_the_name_moves_the_file_in_search(client, db, vault, story):
    signed_in(client, "alice")
    fid = story.files["alice"][2]
    r = post(client, f"/customers/{fid}/fields/name", {"value": "诸葛亮"}, headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert found(client, "张伟") == []
    assert found(client, "诸葛亮") == [fid] and found(client, "诸葛") == [fid]


def test_the_database_holds_no_plain_or_unkeyed_name(client, db, story):
    signed_in(client, "alice")
    found(client, "王小明")
    stored = b"\x00".join(stored_values(db))
    for name in ("王小明", "李娜", "欧阳修", "欧阳", "刘洋"):
        assert name.encode() not in stored
        # Not a plain hash either: the indexes are keyed.
        assert hashlib.sha256(name.encode()).hexdigest().encode() not in stored


def test_name_indexes_use_their_own_keys(vault):
    n = names.normalise("王小明")
    assert search.name_index(vault, n) != search.surname_index(vault, n)
    assert search.name_index(vault, n) != vault.blind_index("name", n)
    assert len(search.tail_index(vault, "1234")) <= 3  # 10 bits


def test_reindex_fills_the_indexes_of_older_files(client, db, settings, story):
    with db.write() as s:
        s.execute(update(CustomerFile).values(name_bidx=None, surname_bidx=None, mobile_tail_bidx=None))
    signed_in(client, "alice")
    assert found(client, "王小明") == []
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file)}
    result = CliRunner().invoke(main, ["customers", "reindex"], env=env)
    assert result.exit_code == 0, result.output
    assert "indexed 7 file(s)" in result.output
    assert found(client, "王小明") == [story.files["alice"][0]]
    assert found(client, "0001") == [story.files["alice"][1]]
    again = CliRunner().invoke(main, ["customers", "reindex"], env=env)
    assert "indexed 0 file(s)" in again.output


# ---------------------------------------------------------------- the rules

@pytest.mark.parametrize("name, surname", [("王小明", "王"), ("欧阳修", "欧阳"), ("司马光", "司马"),
                                           ("诸葛亮", "诸葛"), ("王", None), ("John Smith", "smith"),
                                           ("Ｗａｎｇ　Ｆｅｉ", "fei"), ("Madonna", None)])
def test_surname_of(name, surname):
    assert names.surname_of(names.normalise(name)) == surname


@pytest.mark.parametrize("q, full, surnames", [
    ("王建国", {"王建国"}, set()), ("王", {"王"}, {"王"}), ("王总", {"王总"}, {"王"}),
    ("李经理", {"李经理"}, {"李"}), ("欧阳", {"欧阳"}, {"欧阳"}), ("欧阳先生", {"欧阳先生", "欧阳"}, {"欧阳"}),
    ("王建国先生", {"王建国先生", "王建国"}, set()), ("小李", {"小李"}, {"李"}), ("1234", set(), set())])
def test_query_terms(q, full, surnames):
    assert names.query_terms(q) == (full, surnames)


def test_a_file_under_a_grant_is_found_by_every_kind_of_search_until_the_grant_ends(db, vault, story):
    """The grant arm of the scope finds its files by id among the grants (never by walking
    everyone's files of that surname), for each kind of search."""
    from datetime import timedelta

    from portal import clock
    from portal.access.models import AccessRequest
    from portal.customers import listing

    fid = uuid.UUID(story.files["charlie"][0])  # 刘洋 …0003
    alice = story.actor(db, "alice")

    def ids(q):
        with db.read() as s:
            return [str(r.id) for r in listing.read_page(s.connection(), vault, alice, q=q).rows]

    assert ids("刘") == []
    now = clock.now()
    with db.write() as s:
        f = s.get(CustomerFile, fid)
        grant = AccessRequest(requester_id=story.users["alice"], file_id=fid, file_no=f.file_no,
                              unit_path=f.unit_path, reason="a client asked for a colleague", scope="view",
                              hours_requested=1, created_at=now, status="approved",
                              expires_at=now + timedelta(hours=1))
        s.add(grant)
    for q in ("刘", "刘总", "刘洋", "0003", "13800130003", f.file_no):
        assert ids(q) == [str(fid)], q
    with db.write() as s:
        s.execute(update(AccessRequest).where(AccessRequest.file_id == fid)
                  .values(expires_at=now - timedelta(seconds=1)))
    for q in ("刘", "刘洋", "0003", "13800130003"):
        assert ids(q) == [], q
