"""Members by tier over time: each member counted in the tier held at each month's end (not
today's tier), within the policy's scope, small groups suppressed; the programme writes the
tier history in the same transaction as each change, and migration 0026 rebuilds the same rows
from the member's history."""
from __future__ import annotations

import importlib.util
import uuid
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.membership import jobs, members
from portal.membership.models import Membership, TierChange
from portal.reports import overview
from portal.reports.filters import Period, ReportFilter
from portal.reports.tiers import month_end_counts

from .report_fixture import build_book

YEAR_2025 = ReportFilter(Period("year", date(2025, 1, 1), date(2025, 12, 31)))
TODAY = date(2026, 6, 1)


@pytest.fixture
def book(db, story):
    return build_book(db, story)


def counts(db, story, user, f=YEAR_2025, today=TODAY):
    with db.read() as s:
        return {r["month"]: r for r in month_end_counts(s, story.actor(db, user), f, today)}


def test_members_are_counted_in_the_tier_they_held_at_each_months_end(db, story, book):
    got = counts(db, story, "grace")  # region 755: A1-A3, C1, C2, B1
    tiers = {m: (r["regular"], r["silver"], r["gold"], r["platinum"], r["active"], r["ended"]) for m, r in got.items()}
    assert tiers["2025-01"] == (2, 0, 0, 0, 2, 0)  # A3 (since 2024), A1
    assert tiers["2025-03"] == (2, 0, 1, 0, 3, 0)  # A1 gold from 5 March
    assert tiers["2025-06"] == (3, 1, 1, 0, 5, 0)  # C1 silver from 1 June
    assert tiers["2025-08"] == (3, 2, 1, 0, 6, 0)  # B1 joined, A2 silver
    assert tiers["2025-10"] == tiers["2025-12"] == (4, 1, 1, 0, 6, 0)  # C1 back to regular
    assert len(got) == 12
    with db.read() as s:  # the last month's end is today's tiers
        now = dict(s.execute(select(Membership.tier, func.count()).where(Membership.id.in_(
            [book[k] for k in ("A1", "A2", "A3", "C1", "C2", "B1")])).group_by(Membership.tier)).all())
    assert now == {"regular": 4, "silver": 1, "gold": 1}


def test_an_end_and_a_restart_show_in_their_months(db, story, book):
    got = counts(db, story, "alice", ReportFilter(Period("year", date(2024, 1, 1), date(2024, 12, 31))))
    assert [(got[m]["regular"], got[m]["ended"]) for m in ("2024-02", "2024-03", "2024-05", "2024-06")] == \
        [(1, 0), (0, 1), (0, 1), (1, 0)]


def test_a_tier_filter_counts_who_held_the_tier_then(db, story, book):
    got = counts(db, story, "grace", replace(YEAR_2025, tier="silver"))
    # C1 is regular today but was silver from June to September; A2 is silver from August.
    assert [got[m]["silver"] for m in ("2025-05", "2025-06", "2025-08", "2025-10")] == [0, 1, 2, 1]


def test_months_after_today_are_not_shown(db, story, book):
    got = counts(db, story, "grace", today=date(2025, 6, 15))
    assert list(got)[-1] == "2025-06" and got["2025-06"]["silver"] == 1


def test_the_overview_table_suppresses_small_groups_and_keeps_the_scope(db, story, book, clock_at):
    clock_at(datetime(2026, 6, 1, 4, tzinfo=timezone.utc))
    with db.read() as s:
        grace = overview.overview(s, story.actor(db, "grace"), YEAR_2025)
        alice = overview.overview(s, story.actor(db, "alice"), YEAR_2025)
        erin = overview.overview(s, story.actor(db, "erin"), YEAR_2025)
    dec = {r["month"]: r for r in grace.table("tiers_over_time").rows}["2025-12"]
    assert dec == {"month": "2025-12", "regular": 4, "silver": None, "gold": None, "platinum": 0,
                   "active": 6, "ended": 0}
    chart = next(c for c in grace.charts if c.key == "tiers_over_time")
    assert chart.kind == "stack" and chart.categories[-1] == "2025-12"
    assert dict(chart.series)["regular"][-1] == 4
    # alice's own members only (A1-A3): charlie's C1 was never silver for her.
    june = {r["month"]: r for r in alice.table("tiers_over_time").rows}["2025-06"]
    assert june["silver"] == 0 and june["active"] == 3
    assert all(r["active"] == 0 for r in erin.table("tiers_over_time").rows)  # an admin: no customer figures


# ---------------------------------------------------------------- the history the programme writes

def _history(db, membership_id):
    with db.read() as s:
        return [(r.changed_on, r.from_tier, r.to_tier, r.cause) for r in s.scalars(
            select(TierChange).where(TierChange.membership_id == membership_id).order_by(TierChange.id))]


def test_joining_tier_changes_the_end_and_a_restart_are_written_with_them(db, vault, story, clock_at):
    fid = uuid.UUID(story.files["alice"][0])
    clock_at(datetime(2026, 3, 10, 4, tzinfo=timezone.utc))
    with db.write() as s:
        m = members.enrol(s, story.actor(db, "alice"), fid, cause="application")
        mid = m.id
    with db.write() as s:
        members.set_tier(s, story.actor(db, "bob"), fid, tier="gold", reason="key account of the region")
    clock_at(datetime(2028, 3, 10, 4, tzinfo=timezone.utc))
    assert jobs.run_daily(db, date(2028, 3, 10)).ended == 1  # 24 months without a purchase
    clock_at(datetime(2028, 4, 1, 4, tzinfo=timezone.utc))
    with db.write() as s:
        members.enrol(s, story.actor(db, "alice"), fid, cause="application")
    want = [(date(2026, 3, 10), "", "regular", "application"), (date(2026, 3, 10), "regular", "gold", "manual"),
            (date(2028, 3, 10), "gold", "ended", "no_purchase"), (date(2028, 4, 1), "ended", "regular", "application")]
    assert _history(db, mid) == want
    # Migration 0026 rebuilds the same rows from the member's history (member_event).
    path = Path(__file__).resolve().parents[1] / "migrations" / "versions" / "0026_tier_history.py"
    spec = importlib.util.spec_from_file_location("tier_history_migration", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with db.engine.connect() as conn:
        rebuilt = [(r["changed_on"], r["from_tier"], r["to_tier"], r["cause"])
                   for r in migration._history(conn) if r["membership_id"] == mid]
    assert rebuilt == want
