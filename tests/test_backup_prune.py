"""Which backups `portal backup prune` keeps: the newest of each of the last N days, weeks and
months (in the portal's time zone), always the newest; a pure function, then the command."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from click.testing import CliRunner

from portal.backup import container, key as backup_key
from portal.backup.prune import Schedule, choose
from portal.cli import main

UTC = timezone.utc


def nightly(days: int, end=datetime(2026, 6, 30, 18, 0, tzinfo=UTC)):  # 02:00 in Shanghai
    return [(i, end - timedelta(days=i)) for i in range(days)]


def test_keep_daily_keeps_the_last_seven_days():
    kept = choose(nightly(30), Schedule(daily=7, weekly=0, monthly=0))
    assert sorted(kept) == list(range(7))
    assert kept[0] == ["newest", "daily"]


def test_only_the_newest_backup_of_a_day_counts_for_that_day():
    end = datetime(2026, 6, 30, 10, 0, tzinfo=UTC)
    backups = [("late", end), ("early", end - timedelta(hours=6)), ("yesterday", end - timedelta(days=1))]
    assert set(choose(backups, Schedule(daily=2, weekly=0, monthly=0))) == {"late", "yesterday"}


def test_days_without_a_backup_are_not_counted():
    backups = [(i, datetime(2026, 6, 30, 18, tzinfo=UTC) - timedelta(days=3 * i)) for i in range(10)]
    assert sorted(choose(backups, Schedule(daily=4, weekly=0, monthly=0))) == [0, 1, 2, 3]


def test_weeks_and_months_keep_the_newest_of_each():
    kept = choose(nightly(400), Schedule(daily=7, weekly=4, monthly=12))
    times = dict(nightly(400))
    weekly = [i for i, why in kept.items() if "weekly" in why]
    monthly = [i for i, why in kept.items() if "monthly" in why]
    assert len(weekly) == 4 and len(monthly) == 12
    shanghai = timezone(timedelta(hours=8))
    # Each weekly one is the newest backup of its ISO week (a Sunday, but for the current week).
    for i in weekly:
        local = times[i].astimezone(shanghai)
        assert i == 0 or local.isoweekday() == 7
    # Each monthly one is the last of its month (but for the current month), months all distinct.
    months = {(times[i].astimezone(shanghai).year, times[i].astimezone(shanghai).month) for i in monthly}
    assert len(months) == 12
    for i in monthly:
        local = times[i].astimezone(shanghai)
        assert i == 0 or (local + timedelta(days=1)).day == 1
    assert len(kept) == len(set(range(7)) | set(weekly) | set(monthly))


def test_the_day_is_the_portals_day_not_utcs():
    # 17:00 and 15:00 UTC on the same UTC day are different days in Shanghai (01:00 and 23:00).
    backups = [("a", datetime(2026, 6, 30, 17, tzinfo=UTC)), ("b", datetime(2026, 6, 30, 15, tzinfo=UTC))]
    assert set(choose(backups, Schedule(daily=2, weekly=0, monthly=0))) == {"a", "b"}
    assert set(choose(backups, Schedule(daily=2, weekly=0, monthly=0), tz="UTC")) == {"a"}


def test_the_newest_backup_is_always_kept():
    assert set(choose(nightly(5), Schedule(daily=0, weekly=0, monthly=0))) == {0}
    assert choose([], Schedule()) == {}


def test_prune_deletes_what_the_schedule_does_not_keep_and_dry_run_nothing(tmp_path):
    keyfile = tmp_path / "backup-key.json"
    k = backup_key.create(keyfile)
    out = tmp_path / "backups"
    out.mkdir()
    payload = tmp_path / "payload"
    payload.write_bytes(b"x")
    for i, at in nightly(20):
        manifest = {"created": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "database": "sqlite",
                    "audit": {"count": 0, "head_hash": "0" * 64}}
        container.write(out / f"portal-backup-{at:%Y%m%dT%H%M%SZ}.pbk", manifest, [("portal.sqlite3", payload)], k)
    (out / "portal-backup-junk.pbk").write_bytes(b"not a backup")
    env = {"PORTAL_BACKUP_DIR": str(out), "PORTAL_BACKUP_KEY_FILE": str(keyfile)}

    dry = CliRunner().invoke(main, ["backup", "prune", "--keep-daily", "3", "--keep-weekly", "2",
                                    "--keep-monthly", "0", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert len(list(out.glob("*.pbk"))) == 21
    real = CliRunner().invoke(main, ["backup", "prune", "--keep-daily", "3", "--keep-weekly", "2",
                                     "--keep-monthly", "0"], env=env)
    assert real.exit_code == 0, real.output
    left = sorted(p.name for p in out.glob("*.pbk"))
    # 3 days, plus the newest of last week (the newest of this week is already a day's).
    assert len(left) == 5 and "portal-backup-junk.pbk" in left
    assert "left alone" in real.output
    assert dry.output.count("would delete  ") == real.output.count("delete  ") == 16
