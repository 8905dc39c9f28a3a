"""Read, then audit, then show (audit/deferred.py): a page's reads in a read transaction, its audit
entries appended and committed after it, each on its own; nothing appended when the reads fail;
nothing but audit entries may be written in it; and no page shown on a GET holds a write
transaction while it reads (on SQLite: the one writer lock)."""
from __future__ import annotations

import ast
import pathlib

import pytest
from sqlalchemy import func, select

from portal import clock
from portal.accounts.actor import Actor
from portal.audit import service as audit
from portal.audit.deferred import WroteInARead, read_then_audit
from portal.audit.models import AuditEvent
from portal.db import Database
from portal.inbox.models import Notice

from .browser import signed_in

ROBOT = Actor.system("test")
VIEWS = pathlib.Path(__file__).resolve().parents[1] / "src" / "portal" / "views"
# View functions other than POST handlers that open a write transaction, and why (each one
# reviewed: everything else a page shows is read in a snapshot and audited after).
WRITING_VIEWS = {
    ("account.py", "second_factor_page"): "keeps the pending second-factor secret shown for enrolment",
    ("audit_log.py", "export_audit"): "records the export itself (export_record) with its entry",
    ("api_errors.py", "_on_denied"): "records a refused API call (and its throttling window)",
    ("api_errors.py", "_recorded"): "records a refused API call (and its throttling window)",
    ("card_refusal.py", "refuse_card_quietly"): "records a refused card step (and its throttling window)",
    ("credit_pages.py", "_run"): "the credit forms' POST handlers' transaction",
    ("membership.py", "_step"): "the membership forms' POST handlers' transaction",
}


def _entries(db) -> list[tuple[str, str]]:
    with db.read() as s:
        return [tuple(r) for r in s.execute(select(AuditEvent.action, AuditEvent.detail).order_by(AuditEvent.seq))]


def test_entries_are_appended_after_the_reads_in_order_and_the_chain_holds(db):
    before = _entries(db)
    with read_then_audit(db) as s:
        audit.record(s, ROBOT, "test.first", detail="one")
        assert _entries(db) == before  # kept, not written, while the page reads
        audit.record(s, ROBOT, "test.second", detail="two")
    assert _entries(db)[len(before):] == [("test.first", "one"), ("test.second", "two")]
    with db.read() as s:
        assert audit.verify_chain(s).ok


def test_a_pages_entries_are_committed_in_one_short_write_transaction(db, monkeypatch):
    opened = []
    raw_write = db.raw_write

    def counted():
        opened.append(1)
        return raw_write()

    monkeypatch.setattr(db, "raw_write", counted)
    before = _entries(db)
    with read_then_audit(db) as s:
        for n in range(3):
            audit.record(s, ROBOT, "test.batch", detail=str(n))
    assert opened == [1]
    assert _entries(db)[len(before):] == [("test.batch", "0"), ("test.batch", "1"), ("test.batch", "2")]
    with db.read() as s:
        assert audit.verify_chain(s).ok


def test_reads_that_fail_leave_no_entry(db):
    before = _entries(db)
    with pytest.raises(LookupError):
        with read_then_audit(db) as s:
            audit.record(s, ROBOT, "test.read", detail="never")
            raise LookupError("no such file")
    assert _entries(db) == before


def test_nothing_but_audit_entries_may_be_written(db):
    before = _entries(db)
    with pytest.raises(WroteInARead):
        with read_then_audit(db) as s:
            audit.record(s, ROBOT, "test.read")
            s.add(Notice(user_id=1, kind="test", message="written in a read", created_at=clock.now()))
            s.flush()
    assert _entries(db) == before
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Notice).where(Notice.kind == "test")) == 0


def test_an_entry_that_cannot_be_written_raises_before_anything_is_shown(db, monkeypatch):
    def full(*_args, **_kwargs):
        raise RuntimeError("the audit log is full")

    monkeypatch.setattr("portal.audit.deferred.append_all_committed", full)
    shown = []
    with pytest.raises(RuntimeError):
        with read_then_audit(db) as s:
            audit.record(s, ROBOT, "test.read")
        shown.append("the page")
    assert not shown


def _views_writing():
    """(file, function) of every function in portal/views, other than the POST, PUT, PATCH and
    DELETE handlers, that opens Database.write() or connect_write()."""
    found = set()
    for path in sorted(VIEWS.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            verbs = {getattr(d.func, "id", "") for d in node.decorator_list if isinstance(d, ast.Call)}
            if verbs & {"post", "put", "patch", "delete"}:
                continue
            if any(isinstance(n, ast.Attribute) and n.attr in ("write", "connect_write")
                   and isinstance(n.value, ast.Attribute) and n.value.attr == "db" for n in ast.walk(node)):
                found.add((path.name, node.name))
    return found


def test_pages_read_in_a_snapshot_unless_they_really_write():
    """Every page reads in a read transaction (read_then_audit, or db.read() and append_committed):
    the view functions still opening a write transaction are the reviewed few."""
    assert _views_writing() == set(WRITING_VIEWS)


@pytest.mark.parametrize("user, path, action", [
    ("bob", "/complaints", "complaint.view"),
    ("bob", "/visits", "visit.view"),
    ("bob", "/receivables", "receivable.board"),
    ("bob", "/members/expiring", "member.lists"),
    ("alice", "/members/birthdays", "member.lists"),
    ("dave", "/audit", "audit.view"),
    ("dave", "/audit/alerts", "audit.alerts"),
    ("bob", "/reports/overview", "report.view"),
])
def test_audited_pages_hold_no_write_transaction_while_they_read(client, db, story, monkeypatch, user, path,
                                                                   action):
    signed_in(client, user)
    opened = []
    write = Database.write

    def spy(self):
        opened.append(path)
        return write(self)

    monkeypatch.setattr(Database, "write", spy)
    before = len(_entries(db))
    r = client.get(path)
    assert r.status_code == 200, r.text[:300]
    assert not opened
    assert action in [a for a, _ in _entries(db)[before:]]
