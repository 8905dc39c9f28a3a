"""Member service's and credit's codes in words (views/code_words.py): the macros of the two
_labels.html templates and the long tables that look codes up directly print the same words, in
each request's language, and a code without a word prints itself, escaped."""
from __future__ import annotations

from datetime import date, datetime, timezone
from types import SimpleNamespace

import pytest

from portal import i18n


@pytest.fixture(scope="module")
def env():
    from portal.app import _jinja_env
    return _jinja_env()


def _in(locale: str, render):
    token = i18n.current_locale.set(locale)
    try:
        return render()
    finally:
        i18n.current_locale.reset(token)


def _complaint(**kw):
    row = dict(id=7, file_no="F-1", tier="gold", channel="hotline", kind="product", status="reopened",
               reopen_count=0, promised_on=date(2026, 11, 1), recorded_at=datetime(2026, 10, 30, 2, 5, tzinfo=timezone.utc),
               priority=True, overdue=True)
    return SimpleNamespace(**{**row, **kw})


@pytest.mark.parametrize("locale", ["zh_CN", "en", "zh_CN"])
def test_the_complaint_rows_print_the_codes_in_the_requests_language(env, locale):
    gettext = i18n.translations(locale).gettext
    rows = [_complaint(), _complaint(id=8, tier="", kind="<odd>", channel="fax & co", status="told", priority=False,
                                     overdue=False)]
    html = _in(locale, lambda: env.get_template("service/_complaint_rows.html").render(rows=rows, tz="Asia/Shanghai"))
    cells = html.split('data-testid="complaint-8"')
    first, second = cells[0], cells[1]
    for word in ("Gold", "Hotline", "Product", "Reopened", "priority", "overdue"):
        assert f">{gettext(word)}<" in first, word
    assert "2026-10-30 10:05" in first  # the recorded time in the viewer's zone
    assert "<td>—</td>" in second and "&lt;odd&gt;" in second and "fax &amp; co" in second
    assert gettext("Member told") in second and "<odd>" not in html
    # The queue's words are the labels' macros' words.
    macros = _in(locale, lambda: env.from_string(
        '{% import "service/_labels.html" as L %}{{ L.kind("product") }}|{{ L.channel("hotline") }}|'
        '{{ L.status("reopened") }}|{{ L.cause(none) }}|{{ L.kind("<odd>") }}').render())
    assert macros == f'{gettext("Product")}|{gettext("Hotline")}|{gettext("Reopened")}|—|&lt;odd&gt;'


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_the_receivables_board_prints_terms_and_undelivered_orders_in_words(env, locale):
    gettext = i18n.translations(locale).gettext
    row = dict(id=1, receipt_no="R-1", file_no="F-1", customer_id="c1", operator="alice", boxes=3, amount_fen=100,
               balance_fen=100, ordered_on=date(2026, 1, 1), delivered_on=None, due_on=None, days_overdue=0,
               bucket="not_due")
    board = SimpleNamespace(rows=[SimpleNamespace(**row, terms="credit"), SimpleNamespace(**row, terms="<barter>")],
                            buckets={"not_due": 200}, per_salesperson={"alice": {"not_due": 200}}, overdue_count=0)
    html = _in(locale, lambda: env.get_template("credit/board.html").render(
        board=board, buckets=("not_due",), today=date(2026, 1, 2), overdue=False, may_liability=False,
        tz="Asia/Shanghai", csrf="t", actor=None, nav_section=""))
    table = html.split('data-testid="board"')[1]
    assert f"<td>{gettext('on credit')}</td>" in table and "<td>&lt;barter&gt;</td>" in table
    assert table.count(f"<td>{gettext('not delivered')}</td>") == 2
    assert gettext("not yet due") in html  # the ageing heading, through the macro


def test_the_dt_filter_writes_the_usual_format_as_strftime_did():
    """format_datetime's usual format is written without strftime: the same text in any zone."""
    from zoneinfo import ZoneInfo

    from portal.views.rendering import format_datetime
    for tz in ("Asia/Shanghai", "America/New_York", "UTC"):
        for when in (datetime(2026, 3, 8, 6, 59, 30, tzinfo=timezone.utc), datetime(2026, 12, 31, 23, 1, tzinfo=timezone.utc)):
            assert format_datetime(when, tz) == when.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
            assert format_datetime(when, tz, "%d/%m %H") == when.astimezone(ZoneInfo(tz)).strftime("%d/%m %H")
    assert format_datetime(None) == ""
