"""The audit log: an unbroken hash chain the database will not let anyone edit, that finds
tampering when someone gets round that, and the auditor's pages over it."""
from __future__ import annotations

import csv
import dataclasses
import html
import io
import re
import threading
import uuid
from datetime import datetime, timezone

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from portal.accounts.actor import Actor
from portal.app import create_app
from portal.audit import service as audit
from portal.audit.chain import GENESIS, entry_hash
from portal.audit.models import AuditEvent
from portal.customers.models import CustomerFile
from portal.db import Database
from portal.migrate import upgrade

from .browser import post, signed_in
from .conftest import PG_URL, _pg_admin
from .pg import migrate, owner_engine
from .factories import customer_input

BASE = "http://testserver.local"
pg_only = pytest.mark.skipif(not PG_URL, reason="PostgreSQL only")


@pytest.fixture
def fresh_db(tmp_path):
    """A migrated database with nothing in it: the chain starts at the genesis hash."""
    if PG_URL:
        name = f"portal_fresh_{uuid.uuid4().hex[:10]}"
        with _pg_admin(PG_URL).connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate(url)  # as the owner, then the application role's grants
    d = Database(url)
    yield d
    d.dispose()
    if PG_URL:
        with _pg_admin(PG_URL).connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def verify(db) -> audit.ChainReport:
    with db.read() as s:
        return audit.verify_chain(s)


def count(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent))


def disable_guards(db) -> None:
    """What an attacker with database access would do first: switch the append-only triggers off."""
    with owner_engine(db).begin() as c:  # the owner's powers: the application role has none
        if db.sqlite:
            c.exec_driver_sql("DROP TRIGGER audit_event_no_update")
            c.exec_driver_sql("DROP TRIGGER audit_event_no_delete")
        else:
            c.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER USER")


def raw(db, sql: str, **params) -> None:
    """A statement run with the owner's powers (an attacker who has them; the triggers still stand)."""
    with owner_engine(db).begin() as c:
        c.execute(text(sql), params)


# ---------------------------------------------------------------- the chain

def test_a_fresh_log_verifies_and_each_entry_follows_the_last(fresh_db):
    report = verify(fresh_db)
    assert (report.ok, report.count, report.head_hash) == (True, 0, GENESIS)
    with fresh_db.write() as s:
        for n in range(3):
            audit.record(s, Actor.system(), "test.entry", detail=f"entry {n}")
    report = verify(fresh_db)
    assert report.ok and report.count == 3
    with fresh_db.read() as s:
        events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert report.head_hash == events[-1].hash


def test_an_entry_records_who_what_which_fields_outcome_and_when(fresh_db, clock_at):
    at = datetime(2030, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    clock_at(at)
    who = Actor(user_id=7, username="alice", role="salesperson", client_addr="203.0.113.9")
    with fresh_db.write() as s:
        audit.record(s, who, "customer.view", object_type="customer", object_id="755 00001",
                     fields=["name", "mobile"], reason="call back", detail="GET /customers/x")
    with fresh_db.read() as s:
        e = s.scalar(select(AuditEvent))
    assert (e.actor_id, e.actor_username, e.actor_role, e.action, e.object_id, e.fields, e.outcome,
            e.reason, e.client_addr, e.at) == (7, "alice", "salesperson", "customer.view", "755 00001",
                                               "name,mobile", "allowed", "call back", "203.0.113.9", at)


def test_a_rolled_back_use_case_leaves_no_entry_and_no_gap(fresh_db):
    with pytest.raises(RuntimeError):
        with fresh_db.write() as s:
            audit.record(s, Actor.system(), "test.doomed")
            raise RuntimeError("use case failed")
    with fresh_db.write() as s:
        audit.record(s, Actor.system(), "test.kept")
    report = verify(fresh_db)
    assert report.ok and report.count == 1


@pytest.mark.parametrize("sql", [
    "UPDATE audit_event SET detail = 'rewritten' WHERE seq = 1",
    "UPDATE audit_event SET outcome = 'allowed'",
    "DELETE FROM audit_event WHERE seq = 1",
    "DELETE FROM audit_event",
    "DELETE FROM audit_head",
])
def test_the_database_refuses_to_change_or_delete_entries(db, story, sql):
    before = verify(db)
    assert before.ok
    with pytest.raises(DBAPIError):
        raw(db, sql)
    after = verify(db)
    assert after.ok and after.count == before.count and after.head_hash == before.head_hash


@pg_only
@pytest.mark.parametrize("table", ["audit_event", "audit_head"])
def test_postgresql_refuses_to_truncate_the_log(db, story, table):
    before = verify(db)
    with pytest.raises(DBAPIError):
        raw(db, f"TRUNCATE {table}")
    assert verify(db).count == before.count


def test_verify_finds_a_changed_entry(db, story):
    disable_guards(db)
    raw(db, "UPDATE audit_event SET detail = 'nothing to see' WHERE seq = 5")
    report = verify(db)
    assert not report.ok and report.first_bad_seq == 5 and "altered" in report.problem


def test_verify_finds_a_changed_outcome(db, story):
    disable_guards(db)
    raw(db, "UPDATE audit_event SET outcome = 'denied' WHERE seq = 3")
    report = verify(db)
    assert not report.ok and report.first_bad_seq == 3


def test_verify_finds_a_deleted_entry(db, story):
    disable_guards(db)
    raw(db, "DELETE FROM audit_event WHERE seq = 5")
    report = verify(db)
    assert not report.ok and report.first_bad_seq == 5 and "missing" in report.problem


def test_verify_finds_the_last_entry_deleted(db, story):
    disable_guards(db)
    last = count(db)
    raw(db, "DELETE FROM audit_event WHERE seq = :n", n=last)
    report = verify(db)
    assert not report.ok and "head" in report.problem


def _forge(db, seq: int, prev_hash: str) -> None:
    """Insert a well-formed entry with a correct hash, as a careful forger would."""
    values = dict(seq=seq, at=datetime(2030, 1, 1, tzinfo=timezone.utc), actor_id=None,
                  actor_username="system", actor_role="system", action="customer.export",
                  object_type="customer", object_id="", fields="", outcome="allowed",
                  reason="", detail="forged", grant_id=None, client_addr="")
    h = entry_hash(values, prev_hash)
    with db.write() as s:
        s.add(AuditEvent(**values, prev_hash=prev_hash, hash=h))


def test_verify_finds_an_entry_appended_behind_the_heads_back(db, story):
    head = verify(db)
    _forge(db, head.count + 1, head.head_hash)  # chains perfectly onto the last entry
    report = verify(db)
    assert not report.ok and "head" in report.problem


def test_verify_finds_an_entry_inserted_in_the_middle(db, story):
    disable_guards(db)
    last = count(db)
    for seq in range(last, 4, -1):  # make room at 5, from the top down so numbers never collide
        raw(db, "UPDATE audit_event SET seq = seq + 1 WHERE seq = :s", s=seq)
    with db.read() as s:
        prev = s.scalar(select(AuditEvent.hash).where(AuditEvent.seq == 4))
    _forge(db, 5, prev)
    raw(db, "UPDATE audit_head SET seq = seq + 1")
    report = verify(db)
    assert not report.ok and report.first_bad_seq == 6


def test_verify_finds_reordered_entries(db, story):
    disable_guards(db)
    raw(db, "UPDATE audit_event SET seq = -1 WHERE seq = 5")
    raw(db, "UPDATE audit_event SET seq = 5 WHERE seq = 6")
    raw(db, "UPDATE audit_event SET seq = 6 WHERE seq = -1")
    report = verify(db)
    assert not report.ok and report.first_bad_seq == 5 and "follow" in report.problem


def test_concurrent_appends_form_one_unbroken_chain(db, story):
    before = verify(db)
    assert before.ok
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(25):
                with db.write() as s:
                    audit.record(s, Actor.system(f"worker{n}"), "test.concurrent", detail=f"{n}/{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    report = verify(db)
    assert report.ok, report.problem
    assert report.count == before.count + 8 * 25
    with db.read() as s:
        details = set(s.scalars(select(AuditEvent.detail).where(AuditEvent.action == "test.concurrent")))
    assert details == {f"{n}/{i}" for n in range(8) for i in range(25)}


def test_entries_appended_in_their_own_transaction_join_the_same_chain(db, story):
    """append_committed (a page's short write after its snapshot read) and record (inside a use
    case's transaction) racing from many threads still leave one unbroken line."""
    before = verify(db)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(15):
                if n % 2:
                    e = audit.append_committed(db, Actor.system(f"w{n}"), "test.concurrent", detail=f"{n}/{i}")
                    assert e.seq > before.count and len(e.hash) == 64
                else:
                    with db.write() as s:
                        audit.record(s, Actor.system(f"w{n}"), "test.concurrent", detail=f"{n}/{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    report = verify(db)
    assert report.ok, report.problem
    assert report.count == before.count + 6 * 15


def test_append_committed_is_committed_when_it_returns(fresh_db):
    e = audit.append_committed(fresh_db, Actor(user_id=7, username="alice", role="salesperson"),
                               "customer.list", object_type="customer", fields=["name"])
    other = Database(fresh_db.url)  # another process, as it were
    try:
        with other.read() as s:
            row = s.scalar(select(AuditEvent).where(AuditEvent.seq == e.seq))
        assert (row.action, row.actor_username, row.fields, row.hash) == ("customer.list", "alice", "name", e.hash)
    finally:
        other.dispose()
    assert verify(fresh_db).ok


# ---------------------------------------------------------------- the auditor's pages

ROW_RE = re.compile(r'<tr class="(allowed|denied)">(.*?)</tr>', re.S)
CELL_RE = re.compile(r"<td[^>]*>(.*?)</td>", re.S)
COLUMNS = ("seq", "when", "user", "role", "what", "action", "object", "fields", "outcome", "detail", "addr")


def rows(page: str) -> list[dict[str, str]]:
    out = []
    for _outcome, body in ROW_RE.findall(page):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in CELL_RE.findall(body)]
        row = dict(zip(COLUMNS, cells))
        row["outcome"] = _outcome
        out.append(row)
    return out


def _activity(app, story, db, vault_unused=None):
    """alice opens and searches her files; charlie tries to open one of hers."""
    with TestClient(app=app, base_url=BASE) as alice:
        signed_in(alice, "alice")
        assert alice.get(f"/customers/{story.files['alice'][0]}").status_code == 200
        assert post(alice, "/customers/search", {"q": "13800130001"}).status_code == 200
    with TestClient(app=app, base_url=BASE) as charlie:
        signed_in(charlie, "charlie")
        assert charlie.get(f"/customers/{story.files['alice'][0]}").status_code == 403


def _file_no(db, file_id: str) -> str:
    with db.read() as s:
        return s.get(CustomerFile, uuid.UUID(file_id)).file_no


def test_dave_filters_the_log_by_user(app, client, db, story):
    _activity(app, story, db)
    signed_in(client, "dave")
    found = rows(client.get("/audit", params={"actor": "alice"}).text)
    assert found and {r["user"] for r in found} == {"alice"}
    assert {"customer.view", "customer.search", "auth.sign_in"} <= {r["action"] for r in found}


def test_dave_filters_the_log_by_file(app, client, db, story):
    _activity(app, story, db)
    file_no = _file_no(db, story.files["alice"][0])
    signed_in(client, "dave")
    for typed in (file_no, file_no.replace(" ", "")):
        found = rows(client.get("/audit", params={"file": typed}).text)
        assert {r["object"] for r in found} == {file_no}
        assert {("alice", "customer.view", "allowed"), ("charlie", "customer.view", "denied"),
                ("alice", "customer.create", "allowed")} <= {(r["user"], r["action"], r["outcome"])
                                                             for r in found}


def test_dave_filters_the_log_by_outcome(app, client, db, story):
    _activity(app, story, db)
    signed_in(client, "dave")
    denied = rows(client.get("/audit", params={"outcome": "denied"}).text)
    assert denied and {r["outcome"] for r in denied} == {"denied"}
    assert ("charlie", "customer.view") in {(r["user"], r["action"]) for r in denied}
    allowed = rows(client.get("/audit", params={"outcome": "allowed"}).text)
    assert allowed and {r["outcome"] for r in allowed} == {"allowed"}


def test_dave_filters_the_log_by_date(app, client, db, story, clock_at):
    # Local (Asia/Shanghai) calendar days: 2030-01-10 20:00 UTC is already 11 January there.
    clock_at(datetime(2030, 1, 10, 20, 0, tzinfo=timezone.utc))
    with db.write() as s:
        audit.record(s, Actor.system(), "test.january")
    clock_at(datetime(2030, 2, 10, 3, 0, tzinfo=timezone.utc))
    with db.write() as s:
        audit.record(s, Actor.system(), "test.february")
    signed_in(client, "dave")
    jan = rows(client.get("/audit", params={"since": "2030-01-11", "until": "2030-01-11"}).text)
    assert [r["action"] for r in jan] == ["test.january"]
    assert jan[0]["when"].startswith("2030-01-11 04:00")
    assert rows(client.get("/audit", params={"since": "2030-01-01", "until": "2030-01-10"}).text) == []
    feb = rows(client.get("/audit", params={"since": "2030-02-01"}).text)
    assert "test.february" in {r["action"] for r in feb} and "test.january" not in {r["action"] for r in feb}
    assert {r["when"][:7] for r in feb} == {"2030-02"}


def test_a_malformed_date_is_a_400_with_a_message(client, story):
    signed_in(client, "dave")
    r = client.get("/audit", params={"since": "last tuesday"})
    assert r.status_code == 400
    assert 'role="alert"' in r.text


def test_the_log_pages_backwards_with_before(settings, db, story):
    app = create_app(dataclasses.replace(settings, page_size=5))
    with TestClient(app=app, base_url=BASE) as c:
        signed_in(c, "dave")
        seen: list[int] = []
        url = "/audit"
        for _ in range(4):
            page = c.get(url).text
            found = [int(r["seq"]) for r in rows(page)]
            assert len(found) == 5
            assert found == sorted(found, reverse=True)
            assert not seen or max(found) < min(seen)
            seen += found
            m = re.search(r'href="(/audit\?[^"]*before=\d+)"', page)
            assert m
            url = html.unescape(m.group(1))
        assert len(set(seen)) == 20
        assert seen == list(range(seen[0], seen[0] - 20, -1))  # nothing skipped between pages


def test_paging_keeps_the_filter(settings, db, story):
    app = create_app(dataclasses.replace(settings, page_size=2))
    with TestClient(app=app, base_url=BASE) as c:
        signed_in(c, "dave")
        page = c.get("/audit", params={"action": "user.create"}).text
        first = rows(page)
        nxt = html.unescape(re.search(r'href="(/audit\?[^"]*before=\d+)"', page).group(1))
        assert "action=user.create" in nxt
        second = rows(c.get(nxt).text)
        assert {r["action"] for r in first + second} == {"user.create"}
        assert max(int(r["seq"]) for r in second) < min(int(r["seq"]) for r in first)


def test_the_audit_export_is_audited_and_holds_no_personal_values(app, client, db, vault, story):
    _activity(app, story, db)
    signed_in(client, "dave")
    r = client.get("/audit/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    body = r.content.decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(body)))
    assert table[0][:3] == ["seq", "at_utc", "actor"]
    assert any(row[4] == "customer.view" for row in table[1:])
    personal = []
    for n in range(7):
        c = customer_input(n)
        personal += [c.name, c.mobile, c.id_number, c.address, c.employer, c.notes]
    for value in personal:
        assert value not in body, value
    with db.read() as s:
        last = s.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert (last.actor_username, last.action, last.outcome) == ("dave", "audit.export", "allowed")
    assert f"rows={len(table) - 1}" in last.detail


def test_the_audit_page_holds_no_personal_values(app, client, db, story):
    _activity(app, story, db)
    signed_in(client, "dave")
    page = client.get("/audit").text
    for n in range(7):
        c = customer_input(n)
        for value in (c.name, c.mobile, c.id_number):
            assert value not in page, value


def test_the_integrity_page_says_intact(client, db, story):
    signed_in(client, "dave")
    page = client.get("/audit/integrity").text
    status = re.search(r'<p class="(\w+)" data-testid="chain-status">', page)
    assert status and status.group(1) == "ok"
    with db.read() as s:
        last = s.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert last.action == "audit.verify" and last.actor_username == "dave"  # checking is recorded
    assert last.prev_hash in page  # the head it checked, just before its own entry


def test_the_integrity_page_says_broken_after_tampering(client, db, story):
    disable_guards(db)
    raw(db, "UPDATE audit_event SET detail = 'nothing to see' WHERE seq = 5")
    signed_in(client, "dave")
    page = client.get("/audit/integrity").text
    status = re.search(r'<p class="(\w+)" data-testid="chain-status">', page)
    assert status and status.group(1) == "error"
    assert "5" in page
