"""Export control: a stated purpose, leader approval above a size, one download within 24 hours,
and the auditor's trace of a leaked CSV back to the export that produced it."""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import html
import io
import re
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from portal.app import create_app
from portal.audit.models import AuditEvent
from portal.customers import service as customers
from portal.customers.models import CustomerFile
from portal.exports import service as exports
from portal.exports.models import ExportRecord
from portal.inbox.models import Notice

from .browser import download_export, post, signed_in, start_export, token
from .concurrency import race
from .factories import customer_input

BASE = "http://testserver.local"
# A Tuesday, 10:00 in Shanghai: working hours, and in the future (so cookies stay valid).
T0 = datetime(2030, 5, 7, 2, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------- helpers

@pytest.fixture
def app2(settings):
    """The app with a threshold of 2 files: alice's 3 files need a leader's approval."""
    return create_app(dataclasses.replace(settings, export_approval_threshold=2))


@contextmanager
def browser(app, username: str | None = None):
    with TestClient(app=app, base_url=BASE) as c:
        c.headers["Accept-Language"] = "en"
        if username:
            signed_in(c, username)
        yield c


class People:
    """One signed-in browser per user and app, kept for the test: a leader's second factor
    accepts each time step's code once, so signing in again and again would be refused."""

    def __init__(self):
        self._stack = ExitStack()
        self._clients: dict[tuple[int, str], TestClient] = {}

    def __call__(self, app, username: str, *, fresh: bool = False) -> TestClient:
        key = (id(app), username)
        if fresh or key not in self._clients:
            self._clients[key] = self._stack.enter_context(browser(app, username))
        return self._clients[key]

    @contextmanager
    def browser(self, app, username: str, *, fresh: bool = False):
        yield self(app, username, fresh=fresh)

    def close(self):
        self._stack.close()


@pytest.fixture
def people():
    p = People()
    yield p
    p.close()


def records(db) -> list[ExportRecord]:
    with db.read() as s:
        return list(s.scalars(select(ExportRecord).order_by(ExportRecord.id)))


def record(db, export_id: int) -> ExportRecord:
    with db.read() as s:
        return s.get(ExportRecord, export_id)


def entries(db, action: str, **where) -> list[AuditEvent]:
    q = select(AuditEvent).where(AuditEvent.action == action)
    for k, v in where.items():
        q = q.where(getattr(AuditEvent, k) == v)
    with db.read() as s:
        return list(s.scalars(q.order_by(AuditEvent.seq)))


def file_nos_of(db, story, *owners: str) -> set[str]:
    ids = [i for o in owners for i in story.files[o]]
    with db.read() as s:
        return {f.file_no for f in s.scalars(select(CustomerFile)) if str(f.id) in ids}


def text_of(r) -> str:
    return html.unescape(r.text)


def request_export(c, purpose: str = "quarterly gift mailing"):
    return start_export(c, purpose)


def pending_export(people, app, db, username: str = "alice", purpose: str = "year-end gala invitations") -> int:
    with people.browser(app, username) as c:
        r = request_export(c, purpose)
        assert r.status_code == 303, r.text[:300]
    rec = records(db)[-1]
    assert r.headers["location"] == f"/exports?requested={rec.id}"
    assert rec.status == "pending" and rec.actor_username == username
    return rec.id


def decide(people, app, username: str, export_id: int, verdict: str = "approve", note: str = "", **kw):
    with people.browser(app, username) as c:
        return post(c, f"/exports/{export_id}/{verdict}", {"note": note}, from_page="/exports", **kw)


def csv_rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


# ---------------------------------------------------------------- purpose

@pytest.mark.parametrize("params", [{}, {"purpose": ""}, {"purpose": "ab"}, {"purpose": "  a   b "}])
def test_an_export_without_a_real_purpose_is_refused_and_nothing_is_recorded(people, app, db, story, params):
    with people.browser(app, "alice") as c:
        before = len(entries(db, "customer.export"))
        r = post(c, "/customers/export.csv", params, from_page="/exports")
    assert r.status_code == 400
    assert "text/html" in r.headers["content-type"]
    assert "State the purpose of the export" in text_of(r)
    assert 'data-error-for="purpose"' in r.text
    assert records(db) == []
    assert len(entries(db, "customer.export")) == before == 0
    assert entries(db, "customer.export_request") == []


# ---------------------------------------------------------------- small exports

def test_a_small_export_is_delivered_at_once_with_its_fingerprint(people, app, db, story):
    with people.browser(app, "alice") as c:
        r = request_export(c, "  quarterly   gift mailing ")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    digest = hashlib.sha256(r.content).hexdigest()
    assert r.headers["x-export-sha256"] == digest
    rows = csv_rows(r.content)
    assert rows[0][0] == "file_no" and len(rows) == 1 + 3
    assert {row[0] for row in rows[1:]} == file_nos_of(db, story, "alice")

    [rec] = records(db)
    assert (rec.status, rec.rows, rec.sha256, rec.actor_username, rec.purpose) == (
        "delivered", 3, digest, "alice", "quarterly gift mailing")
    assert set(rec.file_nos.split(",")) == file_nos_of(db, story, "alice")
    assert rec.delivered_at is not None and rec.download_until is None

    [e] = entries(db, "customer.export")
    assert (e.actor_username, e.outcome, e.reason) == ("alice", "allowed", "quarterly gift mailing")
    assert "rows=3" in e.detail and f"sha256={digest}" in e.detail and f"export={rec.id}" in e.detail
    assert "name" in e.fields.split(",")
    # Small exports wait for nobody: no request entry, no notices.
    assert entries(db, "customer.export_request") == []


def test_the_threshold_counts_files_not_requests(people, settings, db, story):
    """Exactly at the threshold is still small; one over waits."""
    app3 = create_app(dataclasses.replace(settings, export_approval_threshold=3))
    with people.browser(app3, "alice") as c:
        assert request_export(c).status_code == 200
    assert records(db)[-1].status == "delivered"


def test_exported_cells_cannot_become_spreadsheet_formulas(people, app, db, vault, story):
    alice = story.actor(db, "alice")
    with db.write() as s:
        customers.create_file(s, vault, alice, customer_input(
            40, notes='=HYPERLINK("http://evil.example","x")', address="+1+1 Shenzhen",
            employer="@SUM(A1:A9)", position="-2+3"))
    with people.browser(app, "alice") as c:
        r = request_export(c)
    assert r.status_code == 200
    rows = csv_rows(r.content)
    header = rows[0]
    evil = next(row for row in rows[1:] if "HYPERLINK" in row[header.index("notes")])
    assert evil[header.index("notes")] == '\'=HYPERLINK("http://evil.example","x")'
    assert evil[header.index("address")] == "'+1+1 Shenzhen"
    assert evil[header.index("employer")] == "'@SUM(A1:A9)"
    assert evil[header.index("position")] == "'-2+3"
    for row in rows[1:]:
        for cell in row:
            assert not cell or cell[0] not in "=+-@\t\r"


# ---------------------------------------------------------------- large exports: approval

def test_a_large_export_waits_for_a_leader_and_bob_is_told(people, app2, db, story):
    with people.browser(app2, "alice") as c:
        r = request_export(c, "year-end gala invitations")
        assert r.status_code == 303 and "x-export-sha256" not in r.headers
        r = c.get(r.headers["location"])
    assert "text/html" in r.headers["content-type"]
    page = text_of(r)
    assert "a leader must approve it first" in page and "3 files" in page
    assert 'data-testid="export-notice"' in r.text

    [rec] = records(db)
    assert (rec.status, rec.rows, rec.sha256, rec.file_nos, rec.purpose) == (
        "pending", 3, "", "", "year-end gala invitations")
    assert rec.unit_path and rec.download_until is None and rec.delivered_at is None
    # Nothing was delivered: no customer.export entry, but the request is on record.
    assert entries(db, "customer.export") == []
    [req] = entries(db, "customer.export_request")
    assert (req.actor_username, req.object_id, req.reason) == ("alice", str(rec.id), "year-end gala invitations")
    assert "rows=3" in req.detail and "threshold=2" in req.detail

    with db.read() as s:
        told = {n.user_id for n in s.scalars(select(Notice).where(Notice.kind == "export.to_decide"))}
    assert story.users["bob"] in told
    assert story.users["grace"] in told  # leads the whole region
    assert not told & {story.users[u] for u in ("alice", "henry", "charlie", "dave")}

    # Bob sees it waiting on his exports page; alice sees it as hers, without a download link.
    with people.browser(app2, "bob") as c:
        page = c.get("/exports").text
    assert 'data-testid="exports-to-decide"' in page and f"/exports/{rec.id}/approve" in page
    with people.browser(app2, "alice") as c:
        page = c.get("/exports").text
    assert 'data-testid="exports-to-decide"' not in page
    assert f"/exports/{rec.id}/download" not in page


def test_alice_cannot_approve_her_own_export(people, app2, db, story):
    export_id = pending_export(people, app2, db)
    r = decide(people, app2, "alice", export_id)
    assert r.status_code == 403
    assert record(db, export_id).status == "pending"
    [e] = entries(db, "export.decide", outcome="denied")
    assert e.actor_username == "alice"


def test_a_leader_cannot_approve_his_own_export_but_the_leader_above_can(people, app2, db, story):
    export_id = pending_export(people, app2, db, "bob")
    assert record(db, export_id).rows == 4  # his own file and his team's
    r = decide(people, app2, "bob", export_id)
    assert r.status_code == 403
    assert record(db, export_id).status == "pending"
    [e] = entries(db, "export.decide", outcome="denied")
    assert (e.actor_username, e.object_id) == ("bob", str(export_id))
    with people.browser(app2, "bob") as c:
        assert f"/exports/{export_id}/approve" not in c.get("/exports").text
    assert decide(people, app2, "grace", export_id).status_code == 303
    assert record(db, export_id).status == "approved"


@pytest.mark.parametrize("who", ["charlie", "henry"])
def test_others_cannot_approve_and_the_attempt_is_recorded(people, app2, db, story, who):
    export_id = pending_export(people, app2, db)
    r = decide(people, app2, who, export_id)
    assert r.status_code == 403
    assert "Access denied" in r.text
    rec = record(db, export_id)
    assert rec.status == "pending" and rec.decided_by_id is None
    [e] = entries(db, "export.decide", outcome="denied")
    assert e.actor_username == who
    if who == "henry":  # past the route gate, refused on this export
        assert e.object_id == str(export_id)
    assert entries(db, "export.approve") == []


def test_bob_approves_and_alice_downloads_once(people, app2, db, story, clock_at):
    clock_at(T0)
    export_id = pending_export(people, app2, db)
    clock_at(T0 + timedelta(minutes=5))
    r = decide(people, app2, "bob", export_id)
    assert r.status_code == 303 and r.headers["location"] == "/exports"
    rec = record(db, export_id)
    assert rec.status == "approved" and rec.decided_by_id == story.users["bob"]
    assert rec.download_until == T0 + timedelta(minutes=5, hours=24)
    [e] = entries(db, "export.approve")
    assert (e.actor_username, e.object_id) == ("bob", str(export_id))
    assert "rows=3" in e.detail and "exporter=alice" in e.detail
    with db.read() as s:
        told = list(s.scalars(select(Notice).where(Notice.kind == "export.decided")))
    assert [n.user_id for n in told] == [story.users["alice"]]

    clock_at(T0 + timedelta(hours=20))
    with people.browser(app2, "alice", fresh=True) as c:  # the old session has long expired
        assert f'action="/exports/{export_id}/download"' in c.get("/exports").text
        r = download_export(c, export_id)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert f"customers-export-{export_id}.csv" in r.headers["content-disposition"]
        digest = hashlib.sha256(r.content).hexdigest()
        assert r.headers["x-export-sha256"] == digest
        assert len(csv_rows(r.content)) == 1 + 3
        rec = record(db, export_id)
        assert (rec.status, rec.sha256, rec.rows) == ("downloaded", digest, 3)
        assert set(rec.file_nos.split(",")) == file_nos_of(db, story, "alice")
        assert rec.delivered_at == T0 + timedelta(hours=20)
        [e] = entries(db, "customer.export")
        assert f"sha256={digest}" in e.detail and f"export={export_id}" in e.detail
        assert e.reason == "year-end gala invitations"

        again = download_export(c, export_id)
        assert 400 <= again.status_code < 500
        assert "text/csv" not in again.headers["content-type"]
        assert "not approved for download" in text_of(again)
        assert len(entries(db, "customer.export", outcome="allowed")) == 1
        [refused] = entries(db, "customer.export", outcome="denied")
        assert (refused.actor_username, refused.object_id) == ("alice", str(export_id))
        assert record(db, export_id).status == "downloaded"


def test_bob_approves_through_htmx_and_gets_the_fragment(people, app2, db, story):
    export_id = pending_export(people, app2, db)
    with people.browser(app2, "bob") as c:
        r = c.post(f"/exports/{export_id}/approve", data={"_csrf": token(c, "/exports")},
                   headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 200
    assert "<html" not in r.text.lower()
    assert f"/exports/{export_id}/approve" not in r.text  # no longer waiting
    assert record(db, export_id).status == "approved"


def test_a_decided_export_cannot_be_decided_again(people, app2, db, story):
    export_id = pending_export(people, app2, db)
    assert decide(people, app2, "bob", export_id).status_code == 303
    r = decide(people, app2, "grace", export_id, "deny", "changed my mind")
    assert r.status_code == 400 and "already been decided" in text_of(r)
    assert record(db, export_id).status == "approved"


def test_the_download_window_closes_after_24_hours(people, app2, db, story, clock_at):
    clock_at(T0)
    export_id = pending_export(people, app2, db)
    assert decide(people, app2, "bob", export_id).status_code == 303
    clock_at(T0 + timedelta(hours=24, minutes=1))
    with people.browser(app2, "alice", fresh=True) as c:
        r = download_export(c, export_id)
    assert r.status_code == 410
    assert "24 hours" in text_of(r)
    assert "x-export-sha256" not in r.headers
    rec = record(db, export_id)
    assert rec.status == "approved" and rec.sha256 == "" and rec.delivered_at is None
    assert entries(db, "customer.export", outcome="allowed") == []
    [refused] = entries(db, "customer.export", outcome="denied")
    assert "24 hours" in refused.reason


def test_a_refusal_needs_a_reason(people, app2, db, story):
    export_id = pending_export(people, app2, db)
    r = decide(people, app2, "bob", export_id, "deny", "  no ")
    assert r.status_code == 400
    assert "Give a reason for the refusal" in text_of(r)
    c = people(app2, "bob")
    r = c.post(f"/exports/{export_id}/deny", data={"_csrf": token(c, "/exports"), "note": ""},
               headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 400 and "<html" not in r.text.lower()
    assert "Give a reason for the refusal" in text_of(r)  # the fragment htmx swaps in says why
    assert record(db, export_id).status == "pending"
    assert entries(db, "export.deny") == []

    r = decide(people, app2, "bob", export_id, "deny", "not needed for the gala")
    assert r.status_code == 303
    rec = record(db, export_id)
    assert (rec.status, rec.decision_note, rec.download_until) == ("denied", "not needed for the gala", None)
    [e] = entries(db, "export.deny")
    assert (e.actor_username, e.reason) == ("bob", "not needed for the gala")
    with people.browser(app2, "alice") as c:
        page = text_of(c.get("/exports"))
        assert "not needed for the gala" in page
        r = download_export(c, export_id)
    assert 400 <= r.status_code < 500 and "text/csv" not in r.headers["content-type"]
    assert entries(db, "customer.export", outcome="allowed") == []


def test_an_unknown_verdict_or_export_is_refused(people, app2, db, story):
    export_id = pending_export(people, app2, db)
    assert decide(people, app2, "bob", export_id, "maybe").status_code == 400
    assert decide(people, app2, "bob", export_id + 999).status_code == 404
    assert record(db, export_id).status == "pending"


@pytest.mark.parametrize("who", ["charlie", "bob"])
def test_nobody_else_can_download_alices_export(people, app2, db, story, who):
    export_id = pending_export(people, app2, db)
    assert decide(people, app2, "grace", export_id).status_code == 303
    with people.browser(app2, who) as c:
        r = download_export(c, export_id)
    assert r.status_code == 403
    assert "text/csv" not in r.headers["content-type"]
    [e] = entries(db, "customer.export", outcome="denied")
    assert (e.actor_username, e.object_id) == (who, str(export_id))
    rec = record(db, export_id)
    assert rec.status == "approved" and rec.sha256 == ""
    # Alice still can.
    with people.browser(app2, "alice") as c:
        assert download_export(c, export_id).status_code == 200


def test_auditors_and_customer_service_cannot_export(people, app, db, story):
    with people.browser(app, "dave") as c:
        assert request_export(c).status_code == 403
    assert records(db) == []


# ---------------------------------------------------------------- once means once (issue 9, finding 4)



def test_once_only_export_downloads_exactly_once_under_concurrency(db, vault, story):
    """Ten simultaneous downloads of one approved export (SQLite, and PostgreSQL with
    PORTAL_TEST_DATABASE_URL, where each request runs in its own transaction): one delivers."""
    alice = story.actor(db, "alice")
    with db.write() as s:
        export_id = exports.start_export(s, vault, alice, "year-end gala invitations", threshold=2).record.id
    with db.write() as s:
        exports.decide(s, story.actor(db, "bob"), export_id, True)

    def download(_i):
        with db.write() as s:
            return exports.download(s, vault, alice, export_id).export.sha256

    results = race(10, download)
    delivered = [r for kind, r in results if kind == "ok"]
    refused = [r for kind, r in results if kind == "error"]
    assert len(delivered) == 1, results
    assert all(isinstance(e, exports.InvalidExport) for e in refused), refused
    assert all("not approved for download" in str(e) for e in refused)
    rec = record(db, export_id)
    assert (rec.status, rec.sha256, rec.rows, rec.rows_delivered) == ("downloaded", delivered[0], 3, 3)
    [e] = entries(db, "customer.export", outcome="allowed")
    assert f"export={export_id}" in e.detail and f"sha256={delivered[0]}" in e.detail


def test_two_leaders_deciding_at_once_decide_once(db, vault, story):
    alice = story.actor(db, "alice")
    with db.write() as s:
        export_id = exports.start_export(s, vault, alice, "year-end gala invitations", threshold=2).record.id
    deciders = [story.actor(db, "bob"), story.actor(db, "grace")] * 3

    def decide_(i):
        with db.write() as s:
            return exports.decide(s, deciders[i], export_id, i % 2 == 0, "not needed for the gala").status

    results = race(len(deciders), decide_)
    decided = [r for kind, r in results if kind == "ok"]
    assert len(decided) == 1, results
    assert record(db, export_id).status == decided[0]
    assert len(entries(db, "export.approve") + entries(db, "export.deny")) == 1


# ---------------------------------------------------------------- the export that was approved (finding 8)

def test_an_approved_export_delivers_the_files_approved_not_those_added_since(people, app2, db, vault, story):
    export_id = pending_export(people, app2, db)
    approved = file_nos_of(db, story, "alice")
    alice = story.actor(db, "alice")
    with db.write() as s:  # two new clients after the request, before the approval
        for n in (41, 42):
            customers.create_file(s, vault, alice, customer_input(n))
    assert decide(people, app2, "bob", export_id).status_code == 303
    with people.browser(app2, "alice") as c:
        r = download_export(c, export_id)
    assert r.status_code == 200
    rows = csv_rows(r.content)
    assert len(rows) == 1 + 3 and {row[0] for row in rows[1:]} == approved
    assert r.headers["x-export-left-out"] == "0"
    rec = record(db, export_id)
    assert (rec.rows, rec.rows_delivered) == (3, 3)
    assert set(rec.file_nos.split(",")) == approved
    [e] = entries(db, "customer.export", outcome="allowed")
    assert "rows=3 " in e.detail and "requested=3 left_out=0" in e.detail


def test_a_file_that_left_the_exporters_scope_is_left_out_and_the_shortfall_shown(people, app2, db, vault, story):
    export_id = pending_export(people, app2, db)
    assert decide(people, app2, "bob", export_id).status_code == 303
    moved = story.files["alice"][0]
    with db.write() as s:  # bob takes one of alice's clients over before she downloads
        moved_no = customers.reassign_file(s, story.actor(db, "bob"), moved, "bob", "alice moves to VIP events").file_no
    with people.browser(app2, "alice") as c:
        page = text_of(c.get("/exports"))
        assert "2 of 3 still yours to export: the download will leave 1 out" in page
        r = download_export(c, export_id)
        assert r.status_code == 200
        assert r.headers["x-export-left-out"] == "1"
        rows = csv_rows(r.content)
        assert len(rows) == 1 + 2 and moved_no not in {row[0] for row in rows[1:]}
        page = text_of(c.get("/exports"))
        assert "2 of 3 delivered: 1 no longer yours to export were left out" in page
    rec = record(db, export_id)
    assert (rec.status, rec.rows, rec.rows_delivered) == ("downloaded", 3, 2)
    assert moved_no not in rec.file_nos.split(",")
    [e] = entries(db, "customer.export", outcome="allowed")
    assert "rows=2 " in e.detail and "requested=3 left_out=1" in e.detail


# ---------------------------------------------------------------- no side effects on a GET (finding 9)

def test_a_get_neither_starts_an_export_nor_uses_up_a_download(people, app, app2, db, story):
    export_id = pending_export(people, app2, db)
    assert decide(people, app2, "bob", export_id).status_code == 303
    for a in (app, app2):  # small (delivered at once) and large (waits for a leader)
        with people.browser(a, "alice") as c:
            r = c.get("/customers/export.csv", params={"purpose": "a link on another site"})
            assert r.status_code == 405 and "text/csv" not in r.headers["content-type"]
            r = c.get(f"/exports/{export_id}/download")
            assert r.status_code == 405 and "text/csv" not in r.headers["content-type"]
    [rec] = records(db)
    assert (rec.id, rec.status, rec.sha256, rec.delivered_at) == (export_id, "approved", "", None)
    assert entries(db, "customer.export") == []
    assert len(entries(db, "customer.export_request")) == 1
    with people.browser(app2, "alice") as c:  # the download is still there to be had, once
        assert download_export(c, export_id).status_code == 200


def test_starting_or_downloading_an_export_needs_the_csrf_token(people, app, app2, db, story):
    export_id = pending_export(people, app2, db)
    assert decide(people, app2, "bob", export_id).status_code == 303
    with people.browser(app, "alice") as c:
        for data in ({"purpose": "forged from another site"}, {"purpose": "forged", "_csrf": "forged-token"}):
            r = c.post("/customers/export.csv", data=data, follow_redirects=False)
            assert r.status_code == 403 and "Form expired" in r.text
            r = c.post(f"/exports/{export_id}/download", data=data, follow_redirects=False)
            assert r.status_code == 403 and "text/csv" not in r.headers["content-type"]
    assert [r.id for r in records(db)] == [export_id]
    assert record(db, export_id).status == "approved"
    assert entries(db, "customer.export") == []


# ---------------------------------------------------------------- tracing a leak

def exported(people, app, username: str, purpose: str = "quarterly gift mailing") -> bytes:
    with people.browser(app, username) as c:
        r = request_export(c, purpose)
        assert r.status_code == 200, r.text[:300]
        return r.content


def trace_upload(c, content: bytes, name: str = "leak.csv", csrf: bool = True):
    data = {"_csrf": token(c, "/audit/trace")} if csrf else {}
    return c.post("/audit/trace", data=data, files={"file": (name, content, "text/csv")},
                  follow_redirects=False)


def result_rows(page: str) -> list[tuple[str, str, str]]:
    """(export id, user, match cell) per row of the trace result."""
    section = page.split('data-testid="trace-result"', 1)[1]
    return [(m.group(1), m.group(2), re.sub(r"<[^>]+>", "", m.group(3)).strip())
            for m in re.finditer(r"<td>#(\d+)</td>\s*<td><a [^>]*>([^<]+)</a></td>.*?"
                                 r"<td>([^\n]*?)</td>\s*</tr>", section, re.S)]


def test_the_exact_leaked_bytes_name_their_export(people, app, db, story):
    leak = exported(people, app, "alice")
    exported(people, app, "charlie", "charlie's own mailing")
    [alice_rec, _charlie_rec] = records(db)
    with people.browser(app, "dave") as c:
        assert c.get("/audit/trace").status_code == 200
        r = trace_upload(c, leak, "found-on-a-usb-stick.csv")
    assert r.status_code == 200
    page = html.unescape(r.text)
    assert result_rows(page) == [(str(alice_rec.id), "alice", "exact (same bytes)")]
    assert "quarterly gift mailing" in page

    [e] = entries(db, "audit.trace")
    assert (e.actor_username, e.object_id, e.outcome) == ("dave", str(alice_rec.id), "allowed")
    assert hashlib.sha256(leak).hexdigest() in e.detail and "exact" in e.detail
    assert "found-on-a-usb-stick.csv" in e.detail

    with db.write() as s:
        [m] = exports.trace(s, story.actor(db, "dave"), leak)
    assert (m.record.id, m.exact, m.overlap, m.leaked_rows, m.score) == (alice_rec.id, True, 3, 3, 1.0)


def test_an_edited_copy_is_traced_to_the_best_matching_export(people, app, db, story):
    exported(people, app, "alice", "alice's mailing")      # alice's 3 files
    exported(people, app, "charlie", "charlie's mailing")  # charlie's 2 files: a distractor
    leak = exported(people, app, "bob", "team review")     # alice's 3 and bob's 1
    alice_rec, charlie_rec, bob_rec = records(db)
    assert bob_rec.rows == 4

    # The leaker drops one of alice's rows, changes a name, and saves without the BOM.
    rows = csv_rows(leak)
    header, body = rows[0], rows[1:]
    alice_nos = file_nos_of(db, story, "alice")
    dropped = next(r for r in body if r[0] in alice_nos)
    kept = [r for r in body if r is not dropped]
    kept[0][header.index("name")] = "某某某"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *kept])
    edited = buf.getvalue().encode("utf-8")
    assert hashlib.sha256(edited).hexdigest() != bob_rec.sha256

    with people.browser(app, "dave") as c:
        r = trace_upload(c, edited, "edited.csv")
    assert r.status_code == 200
    found = result_rows(html.unescape(r.text))
    assert found[0] == (str(bob_rec.id), "bob", "3 of 3 rows (100%)")
    assert found[1] == (str(alice_rec.id), "alice", "2 of 3 rows (67%)")
    assert str(charlie_rec.id) not in {f[0] for f in found}

    with db.write() as s:
        matches = exports.trace(s, story.actor(db, "dave"), edited)
    best = matches[0]
    assert (best.record.id, best.exact, best.overlap, best.leaked_rows, best.score) == (
        bob_rec.id, False, 3, 3, 1.0)
    assert [(m.record.id, m.overlap) for m in matches] == [(bob_rec.id, 3), (alice_rec.id, 2)]

    [e, _] = entries(db, "audit.trace")
    assert e.object_id.split(",")[0] == str(bob_rec.id)
    assert hashlib.sha256(edited).hexdigest() in e.detail and "rows_with_file_numbers=3" in e.detail


def test_a_few_rows_pasted_without_header_still_match(people, app, db, story):
    leak = exported(people, app, "alice")
    [rec] = records(db)
    one_row = csv_rows(leak)[2]
    buf = io.StringIO()
    csv.writer(buf).writerow(one_row)
    with db.write() as s:
        [m] = exports.trace(s, story.actor(db, "dave"), buf.getvalue().encode())
    assert (m.record.id, m.exact, m.overlap, m.leaked_rows) == (rec.id, False, 1, 1)


@pytest.mark.parametrize("content", [
    b"a,b,c\r\n1,2,3\r\nhello,world,!\r\n",
    "file_no,name\r\n999 00001,张三\r\n".encode("utf-8"),
])
def test_an_unrelated_csv_matches_nothing(people, app, db, story, content):
    exported(people, app, "alice")
    with people.browser(app, "dave") as c:
        r = trace_upload(c, content, "other.csv")
    assert r.status_code == 200
    assert "No export matches this file." in html.unescape(r.text)
    [e] = entries(db, "audit.trace")
    assert e.object_id == "" and hashlib.sha256(content).hexdigest() in e.detail


def test_only_auditors_reach_the_trace(people, app, db, story):
    leak = exported(people, app, "alice")
    with people.browser(app, "alice") as c:
        assert c.get("/audit/trace").status_code == 403
        r = c.post("/audit/trace", data={"_csrf": token(c, "/exports")},
                   files={"file": ("leak.csv", leak, "text/csv")}, follow_redirects=False)
        assert r.status_code == 403
    with people.browser(app, "bob") as c:
        assert c.get("/audit/trace").status_code == 403
    assert entries(db, "audit.trace") == []
    assert {e.actor_username for e in entries(db, "audit.view", outcome="denied")} == {"alice", "bob"}


def test_a_trace_upload_without_the_csrf_token_is_refused(people, app, db, story):
    leak = exported(people, app, "alice")
    with people.browser(app, "dave") as c:
        r = trace_upload(c, leak, csrf=False)
        assert r.status_code == 403
        assert "Form expired" in r.text
        r = c.post("/audit/trace", data={"_csrf": "forged-token"},
                   files={"file": ("leak.csv", leak, "text/csv")}, follow_redirects=False)
        assert r.status_code == 403
    assert entries(db, "audit.trace") == []


def test_a_trace_without_a_file_asks_for_one(people, app, db, story):
    with people.browser(app, "dave") as c:
        r = c.post("/audit/trace", data={"_csrf": token(c, "/audit/trace"), "file": "not-a-file"},
                   files={"other": ("x.txt", b"x", "text/plain")}, follow_redirects=False)
        assert r.status_code == 400 and "Choose a CSV file" in html.unescape(r.text)
        r = trace_upload(c, b"", "empty.csv")
        assert r.status_code == 400
    assert entries(db, "audit.trace") == []
