"""audit_day, the audit analytics' summary caught up from the log: after a seeded mix of entries
(days, hours, weekends, users, outcomes, entries without an actor) with catch-ups at random points,
the summary equals one counted from the whole log, and the report from it (summary plus the live
tail) equals the report from the log alone, for several periods and working hours."""
from __future__ import annotations

import importlib.util
import random
from datetime import date, datetime, timedelta, timezone

from pathlib import Path

from sqlalchemy import select, text

from portal import clock
from portal.audit import service as audit
from portal.reports import audit_days, audit_stats
from portal.reports.filters import Period, ReportFilter, month_period
from portal.reports.models import audit_day, audit_day_head, audit_file_day, audit_view_day

ACTIONS = ("customer.view", "customer.view", "customer.view", "customer.list", "customer.export",
           "report.export", "access.approve", "auth.login")


def _summary(s) -> dict:
    return {tuple(r[:4]): tuple(r[4:]) for r in s.execute(select(audit_day)).all() if any(r[4:])}


def _play(db, story, seed: int) -> None:
    rnd = random.Random(seed)
    users = ("alice", "bob", "charlie", "dave", "frank")
    t = datetime(2025, 11, 20, 1, tzinfo=timezone.utc)
    try:
        for step in range(160):
            t += timedelta(minutes=rnd.choice((7, 50, 200, 600)))
            clock.set_now(t)
            who = rnd.choice(users)
            with db.write() as s:
                audit.record(s, None if rnd.random() < 0.05 else story.actor(db, who), rnd.choice(ACTIONS),
                             "denied" if rnd.random() < 0.15 else "allowed", object_type="customer",
                             object_id=f"755 {rnd.randint(1, 30):05d}")
            if rnd.random() < 0.08:
                with db.write() as s:
                    audit_days.catch_up(s, limit=rnd.choice((None, 5, 40)))
        clock.set_now(datetime(2025, 12, 29, 3, tzinfo=timezone.utc))
        for i in range(14):  # charlie's burst of files, summarised in part (a file in both parts)
            with db.write() as s:
                audit.record(s, story.actor(db, "charlie"), "customer.view", object_type="customer",
                             object_id=f"755 9{i % 12:04d}")
            if i == 6:
                with db.write() as s:
                    audit_days.catch_up(s)
    finally:
        clock.set_now(None)


def test_the_summary_equals_the_log_and_the_report_equals_the_live_one(db, story):
    _play(db, story, seed=13)
    filters = [ReportFilter(month_period(2025, 11)), ReportFilter(month_period(2025, 12)),
               ReportFilter(Period("custom", date(2025, 11, 29), date(2025, 12, 2))),
               ReportFilter(Period("year", date(2025, 1, 1), date(2025, 12, 31)))]
    hours = [audit_stats.Unusual(), audit_stats.Unusual(work_start_hour=10, work_end_hour=17, denials=2)]

    def reports():
        with db.read() as s:
            return [audit_stats.audit_stats(s, f, u) for f in filters for u in hours]

    with db.read() as s:
        assert 0 < audit_days.summary_seq(s) < audit_days.head_seq(s)  # summarised in part, a live tail left
    mixed = reports()
    with db.write() as s:
        audit_days.catch_up(s)
    with db.read() as s:
        kept = _summary(s)
        assert audit_days.summary_seq(s) == audit_days.head_seq(s)
        assert _file_days(s) == _count_per_day(_views(s))  # kept up by increments at each catch-up
    caught_up = reports()
    with db.write() as s:  # from the whole log at once; then nothing summarised: all live
        audit_days.rebuild(s)
        assert _summary(s) == kept
        s.execute(audit_day.delete())
        s.execute(audit_view_day.delete())
        s.execute(audit_file_day.delete())
        s.execute(audit_day_head.delete())
    live = reports()
    for a, b, c in zip(mixed, caught_up, live):
        for ta, tb, tc in zip(a.tables, b.tables, c.tables):
            assert ta.rows == tb.rows == tc.rows, ta.key
        assert [ch.series for ch in a.charts] == [ch.series for ch in c.charts]
    assert any(r["views"] for r in live[0].table("days").rows)
    assert any(r["kind"] == "Views outside working hours" for r in live[3].table("unusual").rows)
    many = [r for r in live[2].table("unusual").rows if r["kind"] == "Many more files than usual"]
    assert [(r["user"], r["count"]) for r in many] == [("charlie", 12)]


def test_the_page_catches_up_only_a_long_tail(db, story, monkeypatch):
    with db.write() as s:
        audit_days.catch_up(s)
    with db.write() as s:
        audit.record(s, story.actor(db, "alice"), "customer.view", object_type="customer", object_id="755 00001")
    assert audit_days.catch_up_if_behind(db) == 0
    monkeypatch.setattr(audit_days, "CATCH_UP_AT", 0)
    assert audit_days.catch_up_if_behind(db) == 1
    with db.read() as s:
        assert audit_days.summary_seq(s) == audit_days.head_seq(s)


def _views(s) -> set:
    return set(s.execute(select(audit_view_day)).all())


def _file_days(s) -> dict:
    return {(u, d): n for u, d, n in s.execute(select(audit_file_day)).all()}


def _count_per_day(views: set) -> dict:
    out: dict = {}
    for user, day, _file in views:
        out[user, day] = out.get((user, day), 0) + 1
    return out


def _migration(name: str):
    spec = importlib.util.spec_from_file_location(name[:4], Path(__file__).parents[1] / "migrations" / "versions" / name)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def test_the_migrations_backfill_counts_as_the_catch_up_does(db, story):
    _play(db, story, seed=5)
    with db.write() as s:
        audit_days.rebuild(s)
        kept, views = _summary(s), _views(s)
        s.execute(audit_day.delete())
        s.execute(audit_view_day.delete())
        s.execute(audit_day_head.update().values(seq=audit_days.head_seq(s)))
        m = _migration("0030_audit_day.py")
        dialect = s.get_bind().dialect.name
        s.execute(text(m._backfill_sql(dialect)))
        s.execute(text(m._view_days_sql(dialect)))
        assert _summary(s) == kept and _views(s) == views and views
        files = _file_days(s)
        s.execute(audit_file_day.delete())
        s.execute(text(_migration("0033_audit_file_day.py").BACKFILL_SQL))
        assert _file_days(s) == files and files == _count_per_day(views)


def test_the_page_shows_this_months_figures_from_the_summary_and_the_tail(client, db, story):
    from .browser import signed_in
    for i in range(3):
        with db.write() as s:
            audit.record(s, story.actor(db, "alice"), "customer.view", object_type="customer", object_id=f"755 0000{i}")
        if i == 0:
            with db.write() as s:
                audit_days.catch_up(s)
    f = ReportFilter(Period("month", *(lambda d: (d.replace(day=1), d))(clock.now().astimezone(timezone(timedelta(hours=8))).date())))
    with db.read() as s:
        rep = audit_stats.audit_stats(s, f)
    figures = [v for t in rep.tables for r in t.rows for k, v in r.items() if k in ("entries", "views", "count")]
    assert figures and all(type(v) is int for v in figures)  # not Decimal (PostgreSQL's sums): JSON for the charts
    signed_in(client, "dave")
    r = client.get("/reports/audit")
    assert r.status_code == 200 and "data-chart" in r.text
