"""The auditor's workspace beyond the log: alerts worth a look, and signed checkpoints of the chain
that catch entries cut off the end (which the chain alone cannot)."""
from __future__ import annotations

import base64
import dataclasses
import html
import re
import uuid
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar.testing import TestClient
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from portal import clock
from portal.access import service as access
from portal.accounts.actor import Actor
from portal.app import create_app
from portal.audit import service as audit
from portal.audit.chain import CHAINED, GENESIS, entry_hash
from portal.audit.checkpoints import (Signer, all_checkpoints, key_id_of, public_keys_of, signer_from,
                                      verify_checkpoints, write_checkpoint)
from portal.audit.models import AuditCheckpoint, AuditEvent
from portal.cli import main
from portal.db import Database
from portal.migrate import upgrade
from portal.vault import KeyRing

from .browser import post, signed_in
from .conftest import PG_URL, _pg_admin
from .pg import migrate, owner_engine

BASE = "http://testserver.local"
SHANGHAI = timezone(timedelta(hours=8))
# A Tuesday, 10:00 in Shanghai: working hours, and in the future (so cookies stay valid).
T0 = datetime(2030, 5, 7, 10, 0, tzinfo=SHANGHAI).astimezone(timezone.utc)


# ---------------------------------------------------------------- helpers

@contextmanager
def browser(app, username: str):
    with TestClient(app=app, base_url=BASE) as c:
        c.headers["Accept-Language"] = "en"
        signed_in(c, username)
        yield c


@pytest.fixture
def stack():
    with ExitStack() as st:
        yield st


def make_app(settings, **over):
    return create_app(dataclasses.replace(settings, **over))


def alert_rows(page: str) -> list[dict]:
    """The alerts table: kind, user, count and detail per row."""
    rows = []
    for m in re.finditer(r'<tr class="alert-(\w+)">(.*?)</tr>', page, re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", m.group(2), re.S)]
        rows.append({"kind": m.group(1), "actor": cells[2], "count": int(cells[3]), "detail": cells[4]})
    return rows


def alerts_seen_by_dave(app) -> tuple[str, list[dict]]:
    with browser(app, "dave") as c:
        r = c.get("/audit/alerts")
    assert r.status_code == 200
    return r.text, alert_rows(r.text)


def view(c, file_id: str) -> int:
    return c.get(f"/customers/{file_id}").status_code


def signed_db(settings, every: int = 5) -> Database:
    """Signing by count only (signing by time: tests/test_audit_checkpoint_time.py)."""
    ring = KeyRing.load(settings.key_file)
    return Database(settings.database_url, audit_signer=signer_from(ring, every=every, seconds=0))


@pytest.fixture
def sdb(settings):
    """The database with a checkpoint signer signing every 5 entries."""
    d = signed_db(settings)
    yield d
    d.dispose()


def head(db) -> tuple[int, str]:
    with db.read() as s:
        return tuple(s.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one())


def checkpoints(db) -> list[AuditCheckpoint]:
    with db.read() as s:
        return all_checkpoints(s)


def hashes(db) -> dict[int, str]:
    with db.read() as s:
        return dict(s.execute(select(AuditEvent.seq, AuditEvent.hash)).all())


def keys(settings):
    return public_keys_of(KeyRing.load(settings.key_file))


def check(db, settings):
    with db.read() as s:
        chain = audit.verify_chain(s)
        return chain, verify_checkpoints(s, keys(settings), chain.count)


def append(db, n: int, action: str = "test.entry") -> None:
    for i in range(n):
        with db.write() as s:
            audit.record(s, Actor.system("test"), action, detail=f"entry {i}")


def fill_to(db, seq: int) -> None:
    """Append entries until the head is at `seq`."""
    append(db, seq - head(db)[0])
    assert head(db)[0] == seq


def build(db, extra: int = 2) -> int:
    """Append until two checkpoints are signed past the story's entries and `extra` entries
    follow the last; returns the last checkpoint's entry."""
    last_cp = (head(db)[0] // 5 + 2) * 5
    fill_to(db, last_cp + extra)
    assert [cp.seq for cp in checkpoints(db)] == [last_cp - 5, last_cp]
    return last_cp


def raw(db, sql: str, **params) -> None:
    """A statement run with the owner's powers (an attacker who has them; the triggers still stand)."""
    with owner_engine(db).begin() as c:
        c.execute(text(sql), params)


def disable_guards(db) -> None:
    """What an attacker with database access would do first: switch the append-only triggers off."""
    with owner_engine(db).begin() as c:  # the owner's powers: the application role has none
        if db.sqlite:
            c.exec_driver_sql("DROP TRIGGER audit_event_no_update")
            c.exec_driver_sql("DROP TRIGGER audit_event_no_delete")
        else:
            c.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER USER")


def truncate_to(db, keep: int) -> None:
    """Cut the log after entry `keep` and make the head agree, so the chain alone looks intact."""
    disable_guards(db)
    last_hash = hashes(db)[keep]
    raw(db, "DELETE FROM audit_event WHERE seq > :k", k=keep)
    raw(db, "UPDATE audit_head SET seq = :k, hash = :h WHERE id = 1", k=keep, h=last_hash)


def rewrite_from(db, seq: int) -> None:
    """Change entry `seq` and recompute every hash after it, as a careful forger would."""
    disable_guards(db)
    with db.read() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.seq >= seq).order_by(AuditEvent.seq)))
    prev = events[0].prev_hash
    for i, ev in enumerate(events):
        values = {k: getattr(ev, k) for k in CHAINED}
        if i == 0:
            values["detail"] = "nothing to see here"
        h = entry_hash(values, prev)
        raw(db, "UPDATE audit_event SET detail = :d, prev_hash = :p, hash = :h WHERE seq = :s",
            d=values["detail"], p=prev, h=h, s=ev.seq)
        prev = h
    raw(db, "UPDATE audit_head SET hash = :h WHERE id = 1", h=prev)


def cli(settings, *args: str):
    result = CliRunner().invoke(main, list(args), env={
        "PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file),
        "PORTAL_DEBUG": "0"})
    assert "Traceback" not in result.output
    return result


# ---------------------------------------------------------------- alerts

def test_a_quiet_log_raises_no_alerts(app, story, clock_at):
    clock_at(T0)
    with browser(app, "alice") as c:
        assert view(c, story.files["alice"][0]) == 200
        assert post(c, "/customers/export.csv", {"purpose": "gift mailing"}).status_code == 200
    page, rows = alerts_seen_by_dave(app)
    assert rows == []
    assert "No alerts." in page


def test_many_files_viewed_in_an_hour(settings, db, story, clock_at):
    app = make_app(settings, alert_views_per_hour=2)
    clock_at(T0)
    with browser(app, "alice") as c:
        for i, fid in enumerate(story.files["alice"]):
            clock_at(T0 + timedelta(minutes=10 * i))
            assert view(c, fid) == 200
        assert view(c, story.files["alice"][0]) == 200  # the same file again counts once
    page, rows = alerts_seen_by_dave(app)
    assert [(r["kind"], r["actor"], r["count"]) for r in rows] == [("views_per_hour", "alice", 3)]
    assert "/audit?actor=alice&amp;action=customer.view" in page
    with db.read() as s:
        last = s.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert (last.action, last.actor_username, last.detail) == ("audit.alerts", "dave", "days=7 alerts=1")


def test_views_spread_over_hours_are_not_many_in_an_hour(settings, story, clock_at):
    app = make_app(settings, alert_views_per_hour=2)
    for i, fid in enumerate(story.files["alice"]):
        clock_at(T0 + timedelta(hours=i))
        with browser(app, "alice") as c:
            assert view(c, fid) == 200
    clock_at(T0 + timedelta(hours=3))
    assert alerts_seen_by_dave(app)[1] == []


def test_a_large_export(settings, story, clock_at):
    app = make_app(settings, alert_export_rows=2)
    clock_at(T0)
    with browser(app, "alice") as c:
        assert post(c, "/customers/export.csv", {"purpose": "gift mailing"}).status_code == 200
    with browser(app, "charlie") as c:  # 2 files: not over the line
        assert post(c, "/customers/export.csv", {"purpose": "gift mailing"}).status_code == 200
    _page, rows = alerts_seen_by_dave(app)
    assert [(r["kind"], r["actor"], r["count"]) for r in rows] == [("large_export", "alice", 3)]
    assert "delivered" in rows[0]["detail"]


def test_a_large_export_waiting_for_approval_is_an_alert_too(settings, story, clock_at):
    app = make_app(settings, alert_export_rows=2, export_approval_threshold=2)
    clock_at(T0)
    with browser(app, "alice") as c:
        assert post(c, "/customers/export.csv", {"purpose": "gift mailing"}).status_code == 303
    _page, rows = alerts_seen_by_dave(app)
    assert [(r["kind"], r["actor"], r["count"]) for r in rows] == [("large_export", "alice", 3)]
    assert "pending" in rows[0]["detail"]


def test_a_burst_of_refused_attempts(settings, db, story, clock_at):
    app = make_app(settings, alert_denied_burst=3)
    clock_at(T0)
    with browser(app, "charlie") as c:
        for i, fid in enumerate(story.files["alice"]):
            clock_at(T0 + timedelta(minutes=2 * i))
            assert view(c, fid) == 403
    page, rows = alerts_seen_by_dave(app)
    assert [(r["kind"], r["actor"], r["count"]) for r in rows] == [("denied_burst", "charlie", 3)]
    assert "/audit?actor=charlie&amp;outcome=denied" in page


def test_refusals_spread_out_are_not_a_burst(settings, story, clock_at):
    app = make_app(settings, alert_denied_burst=3)
    for i, fid in enumerate(story.files["alice"]):
        clock_at(T0 + timedelta(minutes=6 * i))  # 0, 6, 12 minutes: never 3 within 10
        with browser(app, "charlie") as c:
            assert view(c, fid) == 403
    assert alerts_seen_by_dave(app)[1] == []


def test_views_outside_working_hours(app, story, clock_at):
    late = datetime(2030, 5, 7, 23, 0, tzinfo=SHANGHAI).astimezone(timezone.utc)
    clock_at(late)
    with browser(app, "alice") as c:
        assert view(c, story.files["alice"][0]) == 200
        assert view(c, story.files["alice"][1]) == 200
    _page, rows = alerts_seen_by_dave(app)
    assert [(r["kind"], r["actor"], r["count"]) for r in rows] == [("off_hours", "alice", 2)]
    assert "2030-05-07" in rows[0]["detail"]  # the local day, though it is 15:00 UTC


def test_views_at_the_weekend(app, story, clock_at):
    saturday = datetime(2030, 5, 11, 10, 0, tzinfo=SHANGHAI).astimezone(timezone.utc)
    clock_at(saturday)
    with browser(app, "alice") as c:
        assert view(c, story.files["alice"][0]) == 200
    _page, rows = alerts_seen_by_dave(app)
    assert [(r["kind"], r["actor"]) for r in rows] == [("off_hours", "alice")]


def _grant(db, story, reason: str, reason_min: int = 20) -> int:
    with db.read() as s:
        from portal.customers.models import CustomerFile
        f = s.get(CustomerFile, uuid.UUID(story.files["alice"][0]))
        file_no = f.file_no
    with db.write() as s:
        r = access.request_access(s, story.actor(db, "charlie"), file_no, reason, hours=4, reason_min=reason_min)
    with db.write() as s:
        access.decide(s, story.actor(db, "bob"), r.id, True)
    return r.id


def test_views_under_a_grant_with_a_short_reason(app, db, story, clock_at):
    clock_at(T0)
    # Asked for while the minimum was lower (the setting since raised): allowed then, thin now.
    grant_id = _grant(db, story, "need it now", reason_min=5)
    with browser(app, "charlie") as c:
        assert view(c, story.files["alice"][0]) == 200
        assert view(c, story.files["alice"][0]) == 200
    _page, rows = alerts_seen_by_dave(app)
    assert [(r["kind"], r["actor"], r["count"]) for r in rows] == [("short_grant_reason", "charlie", 2)]
    assert f"grant #{grant_id}" in rows[0]["detail"] and "need it now" in rows[0]["detail"]


def test_views_under_a_grant_with_a_proper_reason_are_quiet(app, db, story, clock_at):
    clock_at(T0)
    _grant(db, story, "customer called about the banquet on Friday and asked for alice")
    with browser(app, "charlie") as c:
        assert view(c, story.files["alice"][0]) == 200
    assert alerts_seen_by_dave(app)[1] == []


def test_only_auditors_see_the_alerts(app, story):
    with browser(app, "alice") as c:
        assert c.get("/audit/alerts").status_code == 403
    with browser(app, "bob") as c:
        assert c.get("/audit/alerts").status_code == 403


def test_all_kinds_at_once_newest_first(settings, db, story, clock_at):
    app = make_app(settings, alert_views_per_hour=2, alert_export_rows=2, alert_denied_burst=3)
    clock_at(T0)
    grant_id = _grant(db, story, "need it now", reason_min=5)
    with browser(app, "alice") as c:
        for fid in story.files["alice"]:
            assert view(c, fid) == 200
        assert post(c, "/customers/export.csv", {"purpose": "gift mailing"}).status_code == 200
    clock_at(T0 + timedelta(minutes=20))
    with browser(app, "charlie") as c:
        assert view(c, story.files["alice"][0]) == 200  # under the grant
        for fid in story.files["alice"][1:] + story.files["bob"]:
            assert view(c, fid) == 403
    clock_at(datetime(2030, 5, 7, 22, 0, tzinfo=SHANGHAI).astimezone(timezone.utc))
    with browser(app, "bob") as c:
        assert view(c, story.files["bob"][0]) == 200
    _page, rows = alerts_seen_by_dave(app)
    kinds = {(r["kind"], r["actor"]) for r in rows}
    assert kinds == {("views_per_hour", "alice"), ("large_export", "alice"), ("denied_burst", "charlie"),
                     ("off_hours", "bob"), ("short_grant_reason", "charlie")}
    assert rows[0]["kind"] == "off_hours"  # the latest
    assert any(f"grant #{grant_id}" in r["detail"] for r in rows)


# ---------------------------------------------------------------- checkpoints

def test_a_checkpoint_is_signed_every_n_entries_and_verifies(settings, sdb, story):
    start = head(sdb)[0]
    assert checkpoints(sdb) == []
    append(sdb, 12)
    end = head(sdb)[0]
    assert end == start + 12
    cps = checkpoints(sdb)
    expected = [n for n in range(start + 1, end + 1) if n % 5 == 0]
    assert [cp.seq for cp in cps] == expected and len(expected) >= 2
    stored = hashes(sdb)
    ring = KeyRing.load(settings.key_file)
    kid = key_id_of(signer_from(ring).public_key)
    for cp in cps:
        assert cp.head_hash == stored[cp.seq] and cp.key_id == kid and cp.signature
    chain, report = check(sdb, settings)
    assert chain.ok and report.ok
    assert (report.checked, report.latest_seq) == (len(expected), expected[-1])


def test_the_app_signs_checkpoints_as_it_writes(settings, db, story):
    app = make_app(settings, audit_checkpoint_every=5, audit_checkpoint_seconds=0)
    start = head(db)[0]
    with browser(app, "alice") as c:
        for fid in story.files["alice"] * 3:
            assert view(c, fid) == 200
    end = head(db)[0]
    assert end - start >= 10
    cps = checkpoints(db)
    assert [cp.seq for cp in cps] == [n for n in range(start + 1, end + 1) if n % 5 == 0]
    chain, report = check(db, settings)
    assert chain.ok and report.ok and report.checked == len(cps)


def test_no_signer_no_checkpoints(db, story):
    append(db, 10)
    assert checkpoints(db) == []


def test_a_checkpoint_signed_by_another_key_is_flagged(settings, sdb, story):
    build(sdb)
    seq, h = head(sdb)
    with sdb.write() as s:
        write_checkpoint(s, Signer(Ed25519PrivateKey.generate()), seq, h)  # checkpoints are append-only
    chain, report = check(sdb, settings)
    assert chain.ok
    assert not report.ok and report.bad_seq == seq and "bad signature" in report.problem


def test_a_checkpoint_claiming_the_real_key_with_a_forged_signature_is_flagged(settings, sdb, story):
    last_cp = build(sdb, 0)
    good = checkpoints(sdb)[-1]
    forged = Ed25519PrivateKey.generate().sign(
        f"vip-portal-audit-checkpoint\x1f{last_cp}\x1f{good.head_hash}".encode())
    with sdb.write() as s:
        s.add(AuditCheckpoint(seq=last_cp, head_hash=good.head_hash, at=clock.now(), key_id=good.key_id,
                              signature=base64.b64encode(forged).decode()))
    _chain, report = check(sdb, settings)
    assert not report.ok and "bad signature" in report.problem
    # Nor does a valid signature count under a different number.
    with sdb.write() as s:
        s.add(AuditCheckpoint(seq=last_cp - 5, head_hash=good.head_hash, at=clock.now(),
                              key_id=good.key_id, signature=good.signature))
    _chain, report = check(sdb, settings)
    assert not report.ok and report.bad_seq == last_cp - 5


def test_an_entry_rewritten_with_the_chain_recomputed_is_caught_by_its_checkpoint(settings, sdb, story):
    last_cp = build(sdb)
    rewrite_from(sdb, last_cp - 3)
    chain, report = check(sdb, settings)
    assert chain.ok and chain.count == last_cp + 2  # the chain alone cannot tell
    assert not report.ok and report.bad_seq == last_cp
    assert f"entry {last_cp} differs from its signed checkpoint" in report.problem


def test_entries_cut_off_the_end_are_caught_by_the_checkpoints(settings, sdb, story):
    last_cp = build(sdb)
    truncate_to(sdb, last_cp - 3)
    chain, report = check(sdb, settings)
    assert chain.ok and chain.count == last_cp - 3  # the head was reset to match: the chain alone says ok
    assert not report.ok and report.bad_seq == last_cp
    assert "cut off" in report.problem and f"ends at {last_cp - 3}" in report.problem


def test_cli_verify_names_the_cut(settings, sdb, story):
    last_cp = build(sdb)
    ok = cli(settings, "audit", "verify")
    assert ok.exit_code == 0, ok.output
    assert f"audit chain intact: {last_cp + 2} entries" in ok.output
    assert f"2 signed checkpoint(s) up to entry {last_cp}" in ok.output
    truncate_to(sdb, last_cp - 3)
    r = cli(settings, "audit", "verify")
    assert r.exit_code == 1
    assert f"broken at entry {last_cp}" in r.output and "cut off" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_cli_verify_names_a_forged_checkpoint(settings, sdb, story):
    build(sdb)
    with sdb.write() as s:
        write_checkpoint(s, Signer(Ed25519PrivateKey.generate()))
    r = cli(settings, "audit", "verify")
    assert r.exit_code == 1 and "bad signature" in r.output


def test_cli_checkpoint_signs_the_head_now(settings, db, story):
    seq, h = head(db)
    r = cli(settings, "audit", "checkpoint")
    assert r.exit_code == 0, r.output
    assert f"signed checkpoint at entry {seq}: {h}" in r.output
    [cp] = checkpoints(db)
    assert (cp.seq, cp.head_hash) == (seq, h)
    last = max(hashes(db))
    with db.read() as s:
        e = s.get(AuditEvent, last)
    assert (e.action, e.actor_username, e.detail) == ("audit.checkpoint", "cli", f"seq={seq}")
    r = cli(settings, "audit", "verify")
    assert r.exit_code == 0 and "1 signed checkpoint(s)" in r.output


@pytest.mark.parametrize("sql", [
    "UPDATE audit_checkpoint SET head_hash = 'x'",
    "UPDATE audit_checkpoint SET seq = 1",
    "DELETE FROM audit_checkpoint",
])
def test_checkpoints_cannot_be_changed_or_deleted(settings, sdb, story, sql):
    build(sdb)
    before = [(cp.seq, cp.head_hash, cp.signature) for cp in checkpoints(sdb)]
    assert before
    with pytest.raises(DBAPIError):
        raw(sdb, sql)
    assert [(cp.seq, cp.head_hash, cp.signature) for cp in checkpoints(sdb)] == before


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only")
def test_postgresql_refuses_to_truncate_the_checkpoints(settings, sdb, story):
    build(sdb)
    with pytest.raises(DBAPIError):
        raw(sdb, "TRUNCATE audit_checkpoint")
    assert len(checkpoints(sdb)) == 2


def test_dave_signs_a_checkpoint_from_the_integrity_page(settings, db, story):
    app = make_app(settings, audit_checkpoint_seconds=0)  # no signing on time: only Dave's
    assert checkpoints(db) == []
    with browser(app, "dave") as c:
        page = c.get("/audit/integrity").text
        assert "0 checkpoint(s) verified." in page
        seq_before = head(db)[0]
        r = post(c, "/audit/checkpoint", from_page="/audit/integrity")
        assert r.status_code == 303 and r.headers["location"] == "/audit/integrity"
        [cp] = checkpoints(db)
        assert cp.seq == seq_before + 1  # the page view the form came from was recorded first
        page = c.get("/audit/integrity").text
    with db.read() as s:
        e = s.scalar(select(AuditEvent).where(AuditEvent.action == "audit.checkpoint"))
    assert (e.actor_username, e.detail, e.seq) == ("dave", f"seq={cp.seq}", cp.seq + 1)
    status = re.search(r'<p class="(\w+)" data-testid="chain-status">([^<]*)</p>', page)
    assert status and status.group(1) == "ok" and "Intact:" in status.group(2)
    assert "1 checkpoint(s) verified." in page
    assert f"Entry {cp.seq}" in page and cp.head_hash[:16] in page


def test_only_auditors_sign_checkpoints(settings, db, story):
    app = make_app(settings, audit_checkpoint_seconds=0)
    with browser(app, "alice") as c:
        assert post(c, "/audit/checkpoint").status_code == 403
        assert c.get("/audit/integrity").status_code == 403
    assert checkpoints(db) == []


def test_a_checkpoint_needs_the_csrf_token(settings, db, story):
    app = make_app(settings, audit_checkpoint_seconds=0)
    with browser(app, "dave") as c:
        assert c.post("/audit/checkpoint", data={}, follow_redirects=False).status_code == 403
    assert checkpoints(db) == []


def test_the_integrity_page_reports_entries_cut_off(settings, sdb, story):
    app = make_app(settings, audit_checkpoint_every=5, audit_checkpoint_seconds=0)
    last_cp = build(sdb)
    truncate_to(sdb, last_cp - 3)
    with browser(app, "dave") as c:
        page = c.get("/audit/integrity").text
    status = re.search(r'<p class="(\w+)" data-testid="chain-status">([^<]*)</p>', page)
    assert status and status.group(1) == "error"
    assert f"Broken at entry {last_cp}" in html.unescape(status.group(2)) and "cut off" in status.group(2)


# ---------------------------------------------------------------- a checkpoint of an empty log

@pytest.fixture
def fresh(tmp_path, settings):
    """A migrated database with nothing in it (and the test's key file)."""
    if PG_URL:
        name = f"portal_fresh_{uuid.uuid4().hex[:10]}"
        with _pg_admin(PG_URL).connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate(url)  # as the owner, then the application role's grants
    yield dataclasses.replace(settings, database_url=url)
    if PG_URL:
        with _pg_admin(PG_URL).connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_a_checkpoint_of_the_empty_log_does_not_break_verification(fresh):
    """`portal audit checkpoint` right after `portal db upgrade` signs entry 0 (the genesis)."""
    r = cli(fresh, "audit", "checkpoint")
    assert r.exit_code == 0 and f"entry 0: {GENESIS}" in r.output
    r = cli(fresh, "audit", "verify")
    assert r.exit_code == 0, r.output
    assert "1 signed checkpoint(s)" in r.output


def test_a_checkpoint_of_the_empty_log_must_name_the_genesis_hash(fresh):
    d = signed_db(fresh, every=0)
    try:
        with d.write() as s:
            write_checkpoint(s, d.audit_signer, 0, "f" * 64)
        append(d, 1)
        chain, report = check(d, fresh)
        assert chain.ok and not report.ok and report.bad_seq == 0
    finally:
        d.dispose()
