"""The one module behind every versioned setting (portal.versions): the version in force, the
checks of a new version's start, and two saves of the same day at once."""
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select

from portal import versions
from portal.credit.models import CreditTermsVersion
from portal.customers.service import InvalidInput
from portal.privacy.models import RetentionVersion

NOW = datetime(2026, 3, 10, 8, 0, tzinfo=timezone.utc)


def _retention(day: date, days: int) -> RetentionVersion:
    return RetentionVersion(effective_from=day, lapsed_member_days=days, note="test", created_at=NOW)


def test_the_version_in_force_is_the_latest_started_and_coming_ones_wait(db):
    with db.write() as s:
        for day, days in ((date(2026, 1, 1), 400), (date(2026, 3, 1), 500), (date(2026, 6, 1), 600)):
            versions.add(s, _retention(day, days))
    with db.read() as s:
        assert versions.in_force(s, RetentionVersion, date(2025, 12, 31)) is None  # the defaults apply
        assert versions.in_force(s, RetentionVersion, date(2026, 3, 1)).lapsed_member_days == 500
        assert versions.in_force(s, RetentionVersion, date(2026, 5, 31)).lapsed_member_days == 500
        assert [v.lapsed_member_days for v in versions.newest_first(s, RetentionVersion)] == [600, 500, 400]


def test_a_new_version_starts_today_or_later_on_a_day_without_one(db):
    with db.write() as s:
        versions.add(s, _retention(date(2026, 3, 12), 400))
    with db.read() as s:
        errors: dict[str, str] = {}
        versions.check_start(s, RetentionVersion, date(2026, 3, 9), date(2026, 3, 10), errors)
        assert errors == {"effective_from": versions.IN_THE_PAST}
        errors = {}
        versions.check_start(s, RetentionVersion, date(2026, 3, 12), date(2026, 3, 10), errors)
        assert errors == {"effective_from": versions.DAY_TAKEN}
        errors = {}
        versions.check_start(s, RetentionVersion, date(2026, 3, 10), date(2026, 3, 10), errors)
        assert errors == {}


def test_a_second_save_of_the_same_day_is_refused_at_the_field_and_the_transaction_goes_on(db):
    """What two administrators saving the same day at once come to: the unique index refuses the
    second (the check before it saw no version yet); nothing of it is written, the rest commits."""
    with db.write() as s:
        versions.add(s, _retention(date(2026, 4, 1), 400))
        with pytest.raises(InvalidInput) as exc:
            versions.add(s, _retention(date(2026, 4, 1), 900))
        assert exc.value.errors == {"effective_from": versions.DAY_TAKEN}
        versions.add(s, CreditTermsVersion(effective_from=date(2026, 4, 1), body="{}", note="test",
                                           created_at=NOW))
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(RetentionVersion)) == 1
        assert s.scalar(select(func.count()).select_from(CreditTermsVersion)) == 1
