"""Checkpoints signed on time as well as count: entries cut off the end of the audit log are
caught once they are a minute or so old, even in a log far from its next 1,000th entry, and of
several processes at most one signs."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from datetime import timedelta

from click.testing import CliRunner
from litestar.testing import TestClient
from sqlalchemy import text

from portal import clock
from portal.accounts.actor import Actor
from portal.app import create_app
from portal.audit import service as audit
from portal.audit.checkpoints import newest_checkpoint, sign_if_moved, signer_from, sweep
from portal.cli import main
from portal.db import Database
from portal.vault import KeyRing

from .test_audit_workspace import T0, check, checkpoints, head, truncate_to
from .test_membership_concurrency import race, unexpected

THREADS = 8


def timed_db(settings, seconds: int = 60, every: int = 1000) -> Database:
    """A database as the app opens it: signing every 1,000 entries and once a minute."""
    ring = KeyRing.load(settings.key_file)
    return Database(settings.database_url, audit_signer=signer_from(ring, every=every, seconds=seconds))


def append(db, n: int = 1) -> int:
    for i in range(n):
        with db.write() as s:
            audit.record(s, Actor.system("test"), "test.entry", detail=f"entry {i}")
    return head(db)[0]


def at(seconds: float) -> None:
    clock.set_now(T0 + timedelta(seconds=seconds))


def cli(settings, *args: str):
    return CliRunner().invoke(main, list(args), env={
        "PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file),
        "PORTAL_DEBUG": "0"})


def test_a_log_without_checkpoints_is_signed_at_its_next_append(settings, story, clock_at):
    clock_at(T0)
    db = timed_db(settings)
    try:
        assert checkpoints(db) == []  # the story, like a fresh demo, has none
        seq = append(db)
        assert [cp.seq for cp in checkpoints(db)] == [seq]
    finally:
        db.dispose()


def test_an_entry_appended_in_its_own_transaction_is_signed_when_due(settings, story, clock_at):
    clock_at(T0)
    db = timed_db(settings, every=3)
    try:
        first = audit.append_committed(db, Actor.system("test"), "test.entry").seq
        assert [cp.seq for cp in checkpoints(db)] == [first]  # none yet: due at once
        seqs = [audit.append_committed(db, Actor.system("test"), "test.entry").seq for _ in range(4)]
        assert [cp.seq for cp in checkpoints(db)] == [first] + [s for s in seqs if s % 3 == 0]
        chain, report = check(db, settings)
        assert chain.ok and report.ok
    finally:
        db.dispose()


def test_entries_appended_together_sign_the_one_that_is_due(settings, story, clock_at):
    # One transaction for a page's entries; when one of them is due to sign the head, they are all
    # appended again on the checkpoint's path, each signed where due.
    clock_at(T0)
    db = timed_db(settings, every=3)
    try:
        first = audit.append_committed(db, Actor.system("test"), "test.entry").seq
        done = audit.append_all_committed(db, [(Actor.system("test"), "test.entry", audit.ALLOWED, {"detail": str(n)})
                                               for n in range(4)])
        seqs = [a.seq for a in done]
        assert seqs == list(range(first + 1, first + 5))
        assert [cp.seq for cp in checkpoints(db)] == [first] + [s for s in seqs if s % 3 == 0]
        chain, report = check(db, settings)
        assert chain.ok and report.ok
    finally:
        db.dispose()


def test_truncation_after_a_time_based_checkpoint_is_detected(settings, story, clock_at):
    clock_at(T0)
    db = timed_db(settings)
    try:
        first = append(db)
        at(10)
        append(db, 3)
        at(59)
        append(db)
        assert [cp.seq for cp in checkpoints(db)] == [first]  # at most one a minute
        at(70)
        signed = append(db)  # a minute on: this append signs the head
        at(75)
        end = append(db, 2)
        assert [cp.seq for cp in checkpoints(db)] == [first, signed] and end == signed + 2
        chain, report = check(db, settings)
        assert chain.ok and report.ok

        truncate_to(db, signed - 2)  # the newest entries cut off, the head moved back to match
        chain, report = check(db, settings)
        assert chain.ok  # the chain alone cannot tell
        assert not report.ok and report.bad_seq == signed and "cut off" in report.problem
    finally:
        db.dispose()


def test_a_quiet_logs_last_entries_are_signed_by_the_sweep(settings, story, clock_at):
    clock_at(T0)
    db = timed_db(settings)
    try:
        first = append(db)
        at(5)
        last = append(db, 2)  # then nothing more is appended
        at(30)
        assert sweep(db) is None  # the newest checkpoint is not a minute old yet
        at(61)
        cp = sweep(db)
        assert cp is not None and cp.seq == last
        at(200)
        assert sweep(db) is None  # the head has not moved since
        assert [c.seq for c in checkpoints(db)] == [first, last]
    finally:
        db.dispose()


def test_simultaneous_appends_sign_one_checkpoint(settings, story, clock_at):
    clock_at(T0)  # no checkpoint yet: every appender finds one due
    dbs = [timed_db(settings) for _ in range(THREADS)]  # one process each, as it were
    try:
        results = race(THREADS, lambda i: append(dbs[i]))
        assert not unexpected(results)
        assert len(checkpoints(dbs[0])) == 1
        at(61)
        results = race(THREADS, lambda i: append(dbs[i]))  # due again: still one signs
        assert not unexpected(results)
        assert len(checkpoints(dbs[0])) == 2
        chain, report = check(dbs[0], settings)
        assert chain.ok and report.ok
    finally:
        for d in dbs:
            d.dispose()


def test_simultaneous_sweeps_sign_one_checkpoint(settings, story, clock_at):
    clock_at(T0)
    dbs = [timed_db(settings) for _ in range(THREADS)]
    try:
        append(dbs[0])
        at(5)
        append(dbs[0], 3)
        at(90)
        results = race(THREADS, lambda i: sweep(dbs[i]))
        assert not unexpected(results)
        assert sum(1 for _, cp in results if cp is not None) == 1
        assert len(checkpoints(dbs[0])) == 2
    finally:
        for d in dbs:
            d.dispose()


JOB = """
import sys, time
from click.testing import CliRunner
from portal.cli import main
start = float(sys.argv[1])
time.sleep(max(0.0, start - time.time()))
r = CliRunner().invoke(main, ["jobs", "checkpoint"])
print(r.output.strip())
sys.exit(r.exit_code)
"""


def test_jobs_checkpoint_from_several_processes_signs_once(settings, story):
    db = Database(settings.database_url)  # no signer: entries nobody has signed yet
    try:
        append(db, 3)
        seq = head(db)[0]
        env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file),
               "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
        start = time.time() + 3
        procs = [subprocess.Popen([sys.executable, "-c", JOB, str(start)], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err[-2000:]
            outs.append(out.strip())
        assert sorted(o.startswith("signed checkpoint") for o in outs) == [False, False, False, True]
        assert [cp.seq for cp in checkpoints(db)] == [seq]
    finally:
        db.dispose()


def test_jobs_checkpoint_signs_only_when_the_head_moved(settings, story):
    db = Database(settings.database_url)
    try:
        append(db)
        r = cli(settings, "jobs", "checkpoint")
        assert r.exit_code == 0 and f"signed checkpoint at entry {head(db)[0]}" in r.output
        r = cli(settings, "jobs", "checkpoint")
        assert r.exit_code == 0 and "nothing to sign" in r.output
        assert head(db)[0] == checkpoints(db)[-1].seq  # the job writes no audit entry of its own
    finally:
        db.dispose()


def test_the_server_signs_a_quiet_log_by_itself(settings, story):
    app = create_app(dataclasses.replace(settings, audit_checkpoint_seconds=1))
    other = Database(settings.database_url)  # entries written elsewhere, unsigned
    try:
        with TestClient(app=app, base_url="http://testserver.local"):
            seq = append(other, 2)
            deadline = time.time() + 10
            while time.time() < deadline and not any(cp.seq == seq for cp in checkpoints(other)):
                time.sleep(0.2)
            assert [cp.seq for cp in checkpoints(other)][-1:] == [seq]
    finally:
        other.dispose()


def test_audit_verify_says_how_old_the_newest_checkpoint_is(settings, story, clock_at):
    r = cli(settings, "audit", "verify")
    assert r.exit_code == 0 and "no signed checkpoint yet" in r.output
    clock_at(T0)
    db = timed_db(settings)
    try:
        signed = append(db)
        append(db, 2)
    finally:
        db.dispose()
    at(5 * 60 + 7)
    r = cli(settings, "audit", "verify")
    assert r.exit_code == 0, r.output
    assert f"newest signed 5 min ago, at entry {signed}; 2 entries after it not yet signed" in r.output


def test_a_checkpoint_dated_ahead_of_the_clock_does_not_stop_the_signing(settings, story, clock_at):
    clock_at(T0 + timedelta(days=1))
    db = timed_db(settings)
    try:
        append(db)
        clock_at(T0)  # the clock was set back a day
        seq = append(db)
        assert checkpoints(db)[-1].seq == seq
        with db.write() as s:
            assert sign_if_moved(s, db.audit_signer) is None
            assert newest_checkpoint(s).seq == seq
            assert s.execute(text("SELECT seq FROM audit_head")).scalar() == seq
    finally:
        db.dispose()
