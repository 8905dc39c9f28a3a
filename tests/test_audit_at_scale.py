"""The auditor's log at millions of entries, without giving up a guarantee: a checkpoint is signed
only once the entries since the newest one check, the integrity page checks from the newest
checkpoint on a long log, counts are bounded, date ranges walk a seq window. (The figures are
in BENCHMARKS.md; these tests are about behaviour only.)"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlalchemy import func, select

from portal.audit import browse, incremental
from portal.audit import service as audit
from portal.audit.checkpoints import signer_from
from portal.audit.models import AuditEvent
from portal.vault import KeyRing

from .browser import post
from .test_audit_workspace import (T0, append, browser, build, checkpoints, cli, disable_guards, head,
                                   make_app, raw, sdb)  # noqa: F401  (sdb: a fixture)


def signer(settings):
    return signer_from(KeyRing.load(settings.key_file))


def tamper(db, seq: int) -> None:
    disable_guards(db)
    raw(db, "UPDATE audit_event SET detail = 'nothing to see here' WHERE seq = :s", s=seq)


def status(page: str) -> tuple[str, str]:
    m = re.search(r'<p class="(\w+)" data-testid="chain-status">([^<]*)</p>', page)
    return m.group(1), m.group(2)


def test_a_checkpoint_is_not_signed_over_an_entry_altered_since_the_newest_checkpoint(settings, sdb, story):
    last_cp = build(sdb, extra=3)
    tamper(sdb, last_cp + 2)
    before = [cp.seq for cp in checkpoints(sdb)]
    with pytest.raises(incremental.ChainBroken) as caught, sdb.write() as s:
        incremental.sign_checked(s, signer(settings))
    assert caught.value.check.bad_seq == last_cp + 2 and "altered" in caught.value.check.problem
    assert caught.value.check.since == last_cp  # checked from the newest checkpoint, not the first entry
    assert [cp.seq for cp in checkpoints(sdb)] == before  # nothing signed over it
    r = cli(settings, "jobs", "checkpoint")
    assert r.exit_code == 1 and f"broken at entry {last_cp + 2}" in r.output
    r = cli(settings, "audit", "checkpoint")
    assert r.exit_code == 1 and "no checkpoint signed" in r.output
    assert [cp.seq for cp in checkpoints(sdb)] == before


def test_a_clean_stretch_is_checked_from_the_newest_checkpoint_and_signed(settings, sdb, story):
    last_cp = build(sdb, extra=3)
    with sdb.write() as s:
        cp = incremental.sign_checked(s, signer(settings))
    assert cp.seq == head(sdb)[0] == last_cp + 3 and cp.head_hash == head(sdb)[1]
    with sdb.read() as s:
        check = incremental.verify_since_checkpoint(s, incremental.keys_of(signer(settings)))
    assert check.ok and (check.since, check.head, check.checked) == (cp.seq, cp.seq, 0)


def test_the_sign_button_refuses_a_broken_stretch_and_the_page_shows_where(settings, sdb, story, monkeypatch):
    db = sdb
    monkeypatch.setattr(incremental, "FULL_CHECK_ON_PAGE", 0)  # as on a long log
    app = make_app(settings, audit_checkpoint_every=5, audit_checkpoint_seconds=0)
    with browser(app, "dave") as c:
        append(db, 12)
        newest = checkpoints(db)[-1].seq
        page = c.get("/audit/integrity").text
        assert status(page)[0] == "ok" and f"checkpoint (entry {newest})" in status(page)[1]
        assert 'href="/audit/integrity?full=1"' in page
        bad = head(db)[0] - 1 if head(db)[0] - 1 > newest else head(db)[0]
        tamper(db, bad)
        signed = [cp.seq for cp in checkpoints(db)]
        r = post(c, "/audit/checkpoint", {})
        assert r.status_code in (200, 303)
        page = c.get("/audit/integrity").text
    assert [cp.seq for cp in checkpoints(db)] == signed
    kind, said = status(page)
    assert kind == "error" and f"Broken at entry {bad}." in said
    with db.read() as s:
        refused = s.scalars(audit.filtered(
            select(AuditEvent), audit.AuditFilter(action="audit.checkpoint", outcome="denied"))).all()
    assert len(refused) == 1 and "altered" in refused[0].detail


def test_an_entry_altered_before_the_newest_checkpoint_is_left_to_the_full_check(settings, sdb, story, monkeypatch):
    db = sdb
    monkeypatch.setattr(incremental, "FULL_CHECK_ON_PAGE", 0)
    app = make_app(settings, audit_checkpoint_every=5, audit_checkpoint_seconds=0)
    append(db, 12)
    tamper(db, 3)
    with browser(app, "dave") as c:
        quick = c.get("/audit/integrity").text
        full = c.get("/audit/integrity?full=1").text
    assert status(quick)[0] == "ok" and "since the newest signed checkpoint" in status(quick)[1]
    assert status(full) == ("error", "Broken at entry 3. entry 3 was altered")
    assert cli(settings, "audit", "verify").exit_code == 1


def test_the_count_stops_at_its_cap_and_the_page_says_more_than(app, db, story, monkeypatch):
    append(db, 30, action="test.many")
    with db.read() as s:
        assert browse.count_events(s, audit.AuditFilter(action="test.many"), cap=10) == (10, True)
        assert browse.count_events(s, audit.AuditFilter(action="test.many"), cap=30) == (30, False)
        rows = s.scalar(select(func.count()).select_from(AuditEvent))
        assert browse.count_events(s, audit.AuditFilter()) == (rows, False)
        assert browse.known_actions(s) == sorted(set(s.scalars(select(AuditEvent.action))))
    monkeypatch.setattr(browse, "COUNT_CAP", 10)
    with browser(app, "dave") as c:
        page = c.get("/audit?action=test.many").text
    assert "More than 10 entries match." in page


def test_a_date_range_finds_every_entry_in_it_even_after_the_clock_went_back(app, db, story, clock_at):
    for at in (T0, T0 + timedelta(days=2), T0 - timedelta(days=1), T0 + timedelta(days=3)):
        clock_at(at)
        append(db, 1, action="test.dated")
    clock_at(T0 + timedelta(days=4))
    params = {"action": "test.dated", "since": (T0 - timedelta(days=1)).date().isoformat(),
              "until": (T0 + timedelta(days=2)).date().isoformat()}
    f, errors = audit.parse_filter(params)
    assert not errors
    with db.read() as s:
        everything = [e.seq for e in audit.list_events(s, f, limit=100)]
        windowed = browse.with_seq_window(s, f)
        page = browse.page_of(s, windowed, limit=2)
        rest = browse.page_of(s, windowed, before=page.older, limit=2)
    assert len(everything) == 3  # the entry written after the clock went back is in the range
    assert [e.seq for e in page.events + rest.events] == everything


def test_a_long_unsigned_stretch_is_checked_by_the_sweep_not_in_a_request(settings, story, clock_at, monkeypatch):
    from portal.audit.checkpoints import sweep
    from portal.db import Database

    from .test_audit_checkpoint_time import timed_db

    monkeypatch.setattr(incremental, "APPEND_CHECK_MAX", 3)
    clock_at(T0)
    db: Database = timed_db(settings, seconds=60, every=0)
    try:
        assert checkpoints(db) == []  # the story's entries (more than 3) were never signed
        append(db, 1)
        assert checkpoints(db) == []  # too long a stretch to check while appending
        asked = []
        event.listen(db.engine, "before_cursor_execute",
                     lambda _c, _cur, sql, *_a: asked.append(sql) if "audit_checkpoint" in sql else None)
        append(db, 2)
        assert asked == []  # nor do the next appends of the interval ask again (the sweep will)
        tamper(db, head(db)[0] - 1)
        with pytest.raises(incremental.ChainBroken):
            sweep(db)  # checked from the first entry, outside the lock: refused
        assert checkpoints(db) == []
    finally:
        db.dispose()


def test_the_sweep_signs_a_long_clean_stretch_once_checked(settings, story, clock_at, monkeypatch):
    from portal.audit.checkpoints import sweep

    from .test_audit_checkpoint_time import timed_db

    monkeypatch.setattr(incremental, "APPEND_CHECK_MAX", 3)
    clock_at(T0)
    db = timed_db(settings, seconds=60, every=0)
    try:
        append(db, 1)
        assert checkpoints(db) == []
        cp = sweep(db)
        assert cp is not None and cp.seq == head(db)[0]
    finally:
        db.dispose()
