"""SQLite's query planner statistics (`Database.refresh_statistics`, run by `portal db upgrade`,
`portal jobs daily` and the bench's bulk loads). Without them SQLite guesses every table's size: at
1M files it walked each file in bob's scope to find the open complaints (123 ms); with them it
starts from the complaints (0.5 ms; BENCHMARKS.md). The plan itself only changes at that scale, so
this test checks that the statistics are gathered where they must be."""
from click.testing import CliRunner
from sqlalchemy import text

from portal.cli import main


def _stats(db) -> int:
    with db.read() as s:
        if not s.scalar(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")):
            return 0  # never analysed (the tests' template database is not)
        return s.scalar(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'customer_file'")) or 0


def test_statistics_are_gathered_on_sqlite_only(db, story):
    if not db.sqlite:
        assert db.refresh_statistics() is False  # PostgreSQL's autovacuum keeps its own
        return
    assert _stats(db) == 0
    assert db.refresh_statistics() is True
    assert _stats(db) > 0


def test_db_upgrade_gathers_them(db, settings, monkeypatch):
    if not db.sqlite:
        return
    monkeypatch.setenv("PORTAL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PORTAL_KEY_FILE", str(settings.key_file))
    assert _stats(db) == 0
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "planner statistics gathered" in result.output
    assert _stats(db) > 0
