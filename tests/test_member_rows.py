"""The file page's history rows (points, stored value, member history) are filled into stencils of
templates/membership/_rows.html (views/member_words.py MemberRows): they must be exactly what the
macro prints called row by row, values escaped as `{{ }}` escapes them, in both languages."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from markupsafe import Markup, escape

from portal import i18n
from portal.membership.outcomes import LedgerLine
from portal.views.member_words import ROWS, MemberRows, _escaped, member_words

from .test_member_forms import env, locale  # noqa: F401 - the same Jinja environment and languages

HOSTILE = "<script>alert('x')</script> & \"quoted\""


def _macro_by_row(env, name: str, rows: list[tuple]) -> str:
    """What the page printed before: the macro's markup, row after row, through Jinja."""
    macro = getattr(env.get_template(ROWS).module, name)
    return "".join(str(macro(*row)) for row in rows)


POINTS = [LedgerLine(9, "redeem", -1200, date(2026, 3, 9), "redemption:7", HOSTILE),
          LedgerLine(8, "earn", 1500, date(2026, 3, 1), "<R&1>", "", date(2028, 3, 1)),
          LedgerLine(7, "adjust", 50, date(2026, 2, 1), None, "goodwill 'correction'", date(2028, 2, 1)),
          LedgerLine(6, "transfer", -5, date(2026, 1, 1), "member:3", "moved", None),
          LedgerLine(5, "unknown<kind>", 5, date(2026, 1, 1), "event:2", "x", None)]
STORED = [LedgerLine(4, "recharge", 10_000, date(2026, 3, 9), "bank_transfer", HOSTILE),
          LedgerLine(3, "spend", -2_550, date(2026, 3, 8), "R-<1>", ""),
          LedgerLine(2, "adjust", -1, date(2026, 3, 7), None, "rounding & fix"),
          LedgerLine(1, "refund", 99, date(2026, 3, 6), "cash", "back")]
HISTORY = [{"at": datetime(2026, 3, 9, 4, tzinfo=timezone.utc), "kind": kind, "from": before, "to": after,
            "cause": cause, "reason": reason, "by": by}
           for kind, before, after, cause, reason, by in (
               ("tier", "regular", "silver", "upgrade", HOSTILE, "bob"),
               ("card_issued", "", "755 00001", "premium<card>", "", "system"),
               ("freeze", "active", "frozen", "", "customer asked", "<alice>"),
               ("odd&kind", "a'b", 'c"d', "odd cause", "", "?"))]
CARD_TYPES = {"standard": "Standard", "premium<card>": Markup("<b>Premium</b>")}


def test_each_table_is_the_macro_row_by_row_with_every_value_escaped(env, locale):
    rows = MemberRows(env)
    w = member_words()
    for name, got, built in (
            ("points", rows.points(POINTS), w.points_rows(POINTS)),
            ("stored", rows.stored(STORED), w.stored_rows(STORED)),
            ("history", rows.history(HISTORY, CARD_TYPES, "Asia/Shanghai"),
             w.history_rows(HISTORY, CARD_TYPES, "Asia/Shanghai"))):
        assert isinstance(got, Markup)
        # The page prints the rows then a line end: together, the macro's rows one by one.
        assert got + "\n" == _macro_by_row(env, name, built), name
        assert got.count("<tr>") == len(built)
        assert "<script>" not in got and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in got
    assert "<b>Premium</b>" in rows.history(HISTORY, CARD_TYPES, "Asia/Shanghai")  # Markup as it is
    assert rows.points([]) == rows.stored([]) == ""


def test_a_row_in_words_of_the_request_language(env):
    rows = MemberRows(env)
    for locale, word in (("en", "Redeemed"), ("zh_CN", i18n.translations("zh_CN").gettext("Redeemed"))):
        token = i18n.current_locale.set(locale)
        try:
            assert f"<td>{word}</td>" in rows.points(POINTS[:1])
        finally:
            i18n.current_locale.reset(token)
    assert word != "Redeemed"


def test_escaped_is_markupsafes_escape(env):
    for value in (HOSTILE, "", "plain", "&amp;", Markup("<i>kept</i>"), 12, None, date(2026, 3, 9)):
        assert _escaped(value) == str(escape(value)), value


def test_a_macro_that_drops_or_repeats_a_value_is_refused(env, tmp_path):
    from jinja2 import ChoiceLoader, DictLoader
    env.loader = ChoiceLoader([DictLoader({ROWS: "{% macro points(a, b) %}<tr>{{ a }}{{ a }}</tr>{% endmacro %}"}),
                               env.loader])
    with pytest.raises(ValueError):
        MemberRows(env)._rows("points", [("1", "2")])
