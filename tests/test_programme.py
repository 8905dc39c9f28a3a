"""Programme settings: JSON form, the administrator's form in yuan and 折, versions by effective
date, audited append-only saves, and the pages (who may read, who may edit)."""
from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from portal import clock
from portal.audit.models import AuditEvent
from portal.customers.rules import InvalidField
from portal.customers.service import InvalidInput
from portal.membership import programme
from portal.membership.models import ProgrammeVersion
from portal.membership.rules import programme_today
from portal.membership.settings import (
    DEFAULT_SETTINGS,
    CardType,
    ProgrammeSettings,
    RedemptionItem,
    settings_from_json,
    settings_to_json,
)

from .browser import csrf_of, signed_in

# 2025-06-10 10:00 in Shanghai.
NOON = datetime(2025, 6, 10, 2, 0, tzinfo=timezone.utc)
TODAY = date(2025, 6, 10)


@pytest.fixture
def at_noon(clock_at):
    clock_at(NOON)
    return NOON


def _form(**over) -> dict[str, str]:
    values = programme.form_values(DEFAULT_SETTINGS)
    values.update(over)
    return values


# ---------------------------------------------------------------------------
# Settings value and JSON
# ---------------------------------------------------------------------------


def test_default_card_types_are_the_seed_five_and_an_anonymous_gift_card():
    assert [c.code for c in DEFAULT_SETTINGS.card_types] == [
        "standard", "dining", "cosmetics", "co-branded", "family", "gift"]
    assert DEFAULT_SETTINGS.card_type("dining") == CardType("dining", "Dining card", "service")
    assert DEFAULT_SETTINGS.card_type("dining").named and not DEFAULT_SETTINGS.card_type("gift").named


def test_unknown_card_type_is_a_field_error():
    with pytest.raises(InvalidField) as exc:
        DEFAULT_SETTINGS.card_type("gold-plated")
    assert exc.value.field == "card_type" and exc.value.code == "card_type.unknown"


@pytest.mark.parametrize("code, kind", [("Dining", "service"), ("", "tier"), ("a" * 33, "tier"),
                                        ("dining", "premium")])
def test_card_type_refuses_bad_codes_and_kinds(code, kind):
    with pytest.raises(ValueError):
        CardType(code, "Name", kind)


def test_settings_need_distinct_card_types_and_at_least_one():
    with pytest.raises(ValueError):
        dataclasses.replace(DEFAULT_SETTINGS, card_types=())
    with pytest.raises(ValueError):
        dataclasses.replace(DEFAULT_SETTINGS, card_types=(CardType("a", "A"), CardType("a", "B")))


def test_json_round_trip_of_defaults_and_of_an_edited_version():
    assert settings_from_json(settings_to_json(DEFAULT_SETTINGS)) == DEFAULT_SETTINGS
    edited = dataclasses.replace(
        DEFAULT_SETTINGS, effective_from=date(2026, 2, 28), silver_discount_per_mille=900,
        redemption_months=(3, 8), discount_group_buy=False,
        catalogue=(RedemptionItem("tea", "Tea set ¥288", 2_880, 28_800),),
        card_types=(CardType("standard", "标准卡", "tier"),))
    text = settings_to_json(edited)
    assert settings_from_json(text) == edited
    body = json.loads(text)
    assert list(body) == sorted(body)
    assert body["effective_from"] == "2026-02-28"
    assert body["catalogue"] == [{"code": "tea", "name": "Tea set ¥288", "points": 2880, "value_fen": 28800}]
    assert body["redemption_months"] == [3, 8]
    assert settings_to_json(edited) == text  # stable


def test_old_json_without_new_fields_loads_with_defaults_and_unknown_keys_are_ignored():
    body = json.loads(settings_to_json(dataclasses.replace(DEFAULT_SETTINGS, gold_points=60_000)))
    del body["card_types"], body["missed_points_claim_days"]
    body["a_field_from_the_future"] = 42
    body["catalogue"][0]["colour"] = "red"
    loaded = settings_from_json(json.dumps(body))
    assert loaded.gold_points == 60_000
    assert loaded.card_types == DEFAULT_SETTINGS.card_types
    assert loaded.missed_points_claim_days == 30
    assert loaded.catalogue == DEFAULT_SETTINGS.catalogue


def test_json_that_breaks_the_rules_is_refused():
    body = json.loads(settings_to_json(DEFAULT_SETTINGS))
    body["silver_points"] = 99_999_999
    with pytest.raises(ValueError):
        settings_from_json(json.dumps(body))
    with pytest.raises(ValueError):
        settings_from_json("[]")


# ---------------------------------------------------------------------------
# The form: yuan, 折, months, lines
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw, fen", [("680", 68_000), ("680.5", 68_050), ("680.50", 68_050),
                                      ("0.1", 10), ("0.2", 20), ("0.01", 1), ("¥1,000.00", 100_000),
                                      ("６８０", 68_000), (" 12.34 ", 1_234), ("0", 0)])
def test_yuan_become_exact_fen(raw, fen):
    assert programme.fen_from_yuan(raw) == fen


def test_point_one_plus_point_two_yuan_is_exactly_thirty_fen():
    assert programme.fen_from_yuan("0.1") + programme.fen_from_yuan("0.2") == 30
    assert programme.fen_from_yuan("0.3") == 30


@pytest.mark.parametrize("raw", ["", "abc", "-5", "1.234", "1e3", "1.", ".5", "12,34.5.6", "nan"])
def test_not_amounts(raw):
    assert programme.fen_from_yuan(raw) is None


@pytest.mark.parametrize("raw, per_mille", [("9.5", 950), ("8.8", 880), ("10", 1000), ("7.5", 750),
                                            ("8.85", 885), ("0", 0), ("9.5折", 950), ("9", 900)])
def test_zhe_become_per_mille(raw, per_mille):
    assert programme.per_mille_from_zhe(raw) == per_mille


@pytest.mark.parametrize("raw", ["95", "10.5", "11", "-1", "9.555", "", "nine"])
def test_not_discounts(raw):
    assert programme.per_mille_from_zhe(raw) is None


@pytest.mark.parametrize("per_mille, text", [(950, "9.5"), (1000, "10"), (885, "8.85"), (0, "0"), (880, "8.8")])
def test_zhe_text(per_mille, text):
    assert programme.zhe_text(per_mille) == text


def test_form_values_read_back_to_the_same_settings():
    edited = dataclasses.replace(DEFAULT_SETTINGS, effective_from=date(2026, 1, 1), redemption_months=(3, 8),
                                 frozen_spend_counts=True, join_single_purchase_fen=68_050)
    assert programme.settings_from_form(programme.form_values(edited), DEFAULT_SETTINGS) == edited


def test_form_parses_every_kind_of_figure():
    form = _form(effective_from="2025-07-01", join_single_purchase_fen="880.5", silver_discount_per_mille="9",
                 gold_points="60000", redemption_months="8, 3", frozen_spend_counts="on",
                 catalogue="gift-100 | ¥100 gift | 1000 | 100.00\ntea | Tea set | 2,880 | 288\n\n",
                 card_types="standard | Standard card | tier\ndining | Dining card | service")
    del form["discount_group_buy"]  # an unticked box is not sent
    s = programme.settings_from_form(form, DEFAULT_SETTINGS)
    assert s.effective_from == date(2025, 7, 1)
    assert s.join_single_purchase_fen == 88_050
    assert s.silver_discount_per_mille == 900
    assert s.gold_points == 60_000
    assert s.redemption_months == (3, 8)
    assert s.frozen_spend_counts is True and s.discount_group_buy is False
    assert s.catalogue == (RedemptionItem("gift-100", "¥100 gift", 1_000, 10_000),
                           RedemptionItem("tea", "Tea set", 2_880, 28_800))
    assert [c.code for c in s.card_types] == ["standard", "dining"]


def test_form_fields_left_out_keep_the_base_values():
    base = dataclasses.replace(DEFAULT_SETTINGS, gold_points=70_000)
    ticked = {"discount_group_buy": "on", "tier_points_accumulated": "on", "group_buy_counts_toward_tiers": "on"}
    s = programme.settings_from_form({"effective_from": "2025-07-01", **ticked}, base)
    assert s == dataclasses.replace(base, effective_from=date(2025, 7, 1))


def test_every_bad_field_is_reported_at_once():
    form = _form(effective_from="next week", join_cumulative_fen="1,000.005", gold_discount_per_mille="88",
                 silver_points="ten", tier_window_months="0", redemption_months="3,13",
                 catalogue="gift | ¥100 gift | 0 | 100", card_types="")
    with pytest.raises(InvalidInput) as exc:
        programme.settings_from_form(form, DEFAULT_SETTINGS)
    assert set(exc.value.errors) == {"effective_from", "join_cumulative_fen", "gold_discount_per_mille",
                                     "silver_points", "tier_window_months", "redemption_months",
                                     "catalogue", "card_types"}
    assert all(isinstance(m, str) and m for m in exc.value.errors.values())


@pytest.mark.parametrize("catalogue", ["gift-100 | ¥100 gift | 1000", "Gift | x | 1 | 1",
                                       "a | x | 1 | 1\na | y | 2 | 2", "a |  | 1 | 1", "a | x | 1 | 1.234"])
def test_bad_catalogue_lines(catalogue):
    with pytest.raises(InvalidInput) as exc:
        programme.settings_from_form(_form(catalogue=catalogue), DEFAULT_SETTINGS)
    assert set(exc.value.errors) == {"catalogue"}


@pytest.mark.parametrize("card_types", ["standard | Standard", "std | Std | premium",
                                        "a | A | tier\na | B | family", "   \n  "])
def test_bad_card_type_lines(card_types):
    with pytest.raises(InvalidInput) as exc:
        programme.settings_from_form(_form(card_types=card_types), DEFAULT_SETTINGS)
    assert set(exc.value.errors) == {"card_types"}


def test_silver_above_gold_is_a_field_error():
    with pytest.raises(InvalidInput) as exc:
        programme.settings_from_form(_form(silver_spend_fen="60000"), DEFAULT_SETTINGS)
    assert set(exc.value.errors) == {"silver_spend_fen"}


# ---------------------------------------------------------------------------
# The store: versions by date, audited saves
# ---------------------------------------------------------------------------


def _save(db, story, day: date, note: str = "Spring promotion", user: str = "erin", **figures):
    actor = story.actor(db, user)
    with db.write() as s:
        return programme.save_version(
            s, actor, dataclasses.replace(DEFAULT_SETTINGS, effective_from=day, **figures), note)


def _version_count(db) -> int:
    with db.read() as s:
        return s.execute(select(func.count()).select_from(ProgrammeVersion)).scalar_one()


def test_no_stored_version_means_the_defaults(db, at_noon):
    with db.read() as s:
        assert programme.settings_on(s, TODAY) == DEFAULT_SETTINGS
        assert programme.current_settings(s) == DEFAULT_SETTINGS
        assert programme.versions(s) == []


def test_settings_on_picks_the_latest_version_on_or_before_the_day(db, story, at_noon):
    _save(db, story, TODAY, silver_discount_per_mille=940)
    _save(db, story, TODAY + timedelta(days=10), silver_discount_per_mille=920)
    _save(db, story, TODAY + timedelta(days=20), silver_discount_per_mille=900)
    with db.read() as s:
        assert programme.settings_on(s, TODAY - timedelta(days=1)) == DEFAULT_SETTINGS
        assert programme.settings_on(s, TODAY).silver_discount_per_mille == 940
        assert programme.settings_on(s, TODAY + timedelta(days=9)).silver_discount_per_mille == 940
        assert programme.settings_on(s, TODAY + timedelta(days=10)).silver_discount_per_mille == 920
        assert programme.settings_on(s, TODAY + timedelta(days=400)).silver_discount_per_mille == 900
        views = programme.versions(s)
    assert [v.effective_from for v in views] == [TODAY + timedelta(days=20), TODAY + timedelta(days=10), TODAY]
    assert [(v.in_effect, v.upcoming) for v in views] == [(False, True), (False, True), (True, False)]
    assert views[0].created_by == "erin" and views[0].note == "Spring promotion"


def test_a_future_version_applies_from_its_date_in_shanghai(db, story, clock_at, at_noon):
    tomorrow = TODAY + timedelta(days=1)
    _save(db, story, tomorrow, gold_discount_per_mille=850)
    with db.read() as s:
        assert programme.current_settings(s).gold_discount_per_mille == 880
    # 23:59 in Shanghai is still today...
    clock_at(datetime(2025, 6, 10, 15, 59, tzinfo=timezone.utc))
    with db.read() as s:
        assert programme.current_settings(s).gold_discount_per_mille == 880
    # ...and midnight in Shanghai (16:00 UTC) is tomorrow.
    clock_at(datetime(2025, 6, 10, 16, 0, tzinfo=timezone.utc))
    assert programme_today() == tomorrow
    with db.read() as s:
        assert programme.current_settings(s).gold_discount_per_mille == 850
        assert [v.in_effect for v in programme.versions(s)] == [True]


def test_save_is_audited_with_the_changed_figures(db, story, at_noon):
    day = TODAY + timedelta(days=3)
    row = _save(db, story, day, "Richer gold tier for the autumn", gold_discount_per_mille=850,
                gold_points_per_yuan=4)
    assert row.id and row.created_by_id == story.users["erin"]
    with db.read() as s:
        ev = s.execute(select(AuditEvent).where(AuditEvent.action == "programme.edit")).scalars().one()
    assert ev.actor_username == "erin" and ev.outcome == "allowed"
    assert ev.object_type == "programme" and ev.object_id == day.isoformat()
    assert ev.fields.split(",") == ["gold_discount_per_mille", "gold_points_per_yuan"]
    assert ev.reason == "Richer gold tier for the autumn"
    assert "gold_discount_per_mille: 880 -> 850" in ev.detail


def test_changes_are_counted_against_the_version_in_effect_on_that_date(db, story, at_noon):
    _save(db, story, TODAY + timedelta(days=1), gold_points=60_000)
    _save(db, story, TODAY + timedelta(days=5), gold_points=60_000, silver_points=20_000)
    with db.read() as s:
        ev = s.execute(select(AuditEvent).where(AuditEvent.action == "programme.edit")
                       .order_by(AuditEvent.seq.desc())).scalars().first()
    assert ev.fields == "silver_points"


@pytest.mark.parametrize("day, note, field", [
    (TODAY - timedelta(days=1), "A good reason", "effective_from"),
    (TODAY, "", "note"),
    (TODAY, "meh ", "note"),
    (TODAY, "x" * 501, "note"),
])
def test_save_refuses_past_dates_and_missing_reasons(db, story, at_noon, day, note, field):
    with pytest.raises(InvalidInput) as exc:
        _save(db, story, day, note)
    assert set(exc.value.errors) == {field}
    assert _version_count(db) == 0


def test_today_is_allowed(db, story, at_noon):
    _save(db, story, TODAY)
    assert _version_count(db) == 1


def test_a_second_version_on_the_same_date_is_refused(db, story, at_noon):
    day = TODAY + timedelta(days=7)
    _save(db, story, day, gold_points=60_000)
    with pytest.raises(InvalidInput) as exc:
        _save(db, story, day, "Changed my mind", gold_points=70_000)
    assert set(exc.value.errors) == {"effective_from"}
    with db.read() as s:
        assert programme.settings_on(s, day).gold_points == 60_000
        assert s.execute(select(func.count()).select_from(AuditEvent)
                         .where(AuditEvent.action == "programme.edit")).scalar_one() == 1


def test_default_effective_date_is_tomorrow_or_after_the_latest_version(db, story, at_noon):
    with db.read() as s:
        assert programme.default_effective_from(s) == TODAY + timedelta(days=1)
    _save(db, story, TODAY + timedelta(days=4))
    with db.read() as s:
        assert programme.default_effective_from(s) == TODAY + timedelta(days=5)


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["alice", "bob", "cathy", "erin"])
def test_staff_read_the_programme(client, user):
    signed_in(client, user)
    r = client.get("/programme")
    assert r.status_code == 200
    assert "gift-100" in r.text and "co-branded" in r.text
    assert "¥680.00" in r.text and "9.5折" in r.text


def test_alice_reads_the_programme_but_cannot_edit_it(client):
    signed_in(client, "alice")
    assert client.get("/programme").status_code == 200
    assert client.get("/programme/settings").status_code == 403
    csrf = csrf_of(client.get("/programme").text)
    r = client.post("/programme/settings", data={**_form(effective_from="2099-01-01", note="Sneaky change"),
                                                 "_csrf": csrf}, follow_redirects=False)
    assert r.status_code == 403


def test_dave_the_auditor_sees_neither_page(client):
    signed_in(client, "dave")
    assert client.get("/programme").status_code == 403
    assert client.get("/programme/settings").status_code == 403


def _settings_form(client) -> tuple[dict[str, str], str]:
    page = client.get("/programme/settings")
    assert page.status_code == 200
    return page, csrf_of(page.text)


def test_erin_saves_a_version_and_it_is_listed(client, db, at_noon):
    signed_in(client, "erin")
    page, csrf = _settings_form(client)
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    assert f'value="{tomorrow}"' in page.text and 'value="680.00"' in page.text
    form = _form(effective_from=tomorrow, join_single_purchase_fen="880", gold_discount_per_mille="8.5",
                 note="Raise the joining bar for the summer")
    r = client.post("/programme/settings", data={**form, "_csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/programme/settings"
    listed = client.get("/programme/settings").text
    assert "Raise the joining bar for the summer" in listed and tomorrow in listed
    with db.read() as s:
        saved = programme.settings_on(s, TODAY + timedelta(days=1))
    assert saved.join_single_purchase_fen == 88_000 and saved.gold_discount_per_mille == 850
    # Staff see it coming, and today's figures are unchanged.
    signed_in(client, "alice")
    staff = client.get("/programme").text
    assert "¥880.00" in staff and "¥680.00" in staff and "8.5折" in staff


def test_a_bad_form_is_a_400_with_messages_and_writes_nothing(client, db, at_noon):
    signed_in(client, "erin")
    _, csrf = _settings_form(client)
    form = _form(effective_from=(TODAY + timedelta(days=1)).isoformat(), join_cumulative_fen="one thousand",
                 silver_discount_per_mille="95", note="")
    r = client.post("/programme/settings", data={**form, "_csrf": csrf}, follow_redirects=False)
    assert r.status_code == 400
    for name in ("join_cumulative_fen", "silver_discount_per_mille", "note"):
        assert f'data-error="{name}"' in r.text
    assert 'value="one thousand"' in r.text  # the entry is kept for correction
    assert _version_count(db) == 0


def test_a_past_date_is_refused_on_the_page(client, db, at_noon):
    signed_in(client, "erin")
    _, csrf = _settings_form(client)
    form = _form(effective_from=(TODAY - timedelta(days=1)).isoformat(), note="Backdated change")
    r = client.post("/programme/settings", data={**form, "_csrf": csrf}, follow_redirects=False)
    assert r.status_code == 400 and 'data-error="effective_from"' in r.text
    assert _version_count(db) == 0


def test_the_form_needs_the_csrf_token(client, db, at_noon):
    signed_in(client, "erin")
    form = _form(effective_from=(TODAY + timedelta(days=1)).isoformat(), note="No token here")
    r = client.post("/programme/settings", data=form, follow_redirects=False)
    assert r.status_code == 403
    assert _version_count(db) == 0
