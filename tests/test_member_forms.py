"""The file page's closed membership forms come from a cache (views/member_forms.py): they must be
exactly what Jinja renders for the same state, carry only this request's values (file, card,
receipt, CSRF token, points redeemable, a fresh key per form, language), and a form sent back with
errors must reopen with the values typed and the message next to its field, in both languages."""
from __future__ import annotations

import html
import itertools
import re
import uuid
from types import SimpleNamespace

import pytest

from portal import i18n
from portal.app import _jinja_env
from portal.membership.outcomes import PAYMENT_METHODS
from portal.membership.settings import DEFAULT_SETTINGS
from portal.views.member_forms import CARD_ACTIONS, RETURN_FORM, CardActions, ReturnForm

from .browser import csrf_of, post, signed_in
from .test_membership_web import at, enrol, error_for

KEY_RE = re.compile(r'name="form_key" value="([^"]+)"')
ALL_STEPS = {"member.redeem", "member.stored_value", "member.adjust", "card.manage", "card.cancel", "member.purchase"}


@pytest.fixture
def env():
    return _jinja_env()


@pytest.fixture(params=["en", "zh_CN"])
def locale(request):
    token = i18n.current_locale.set(request.param)
    yield request.param
    i18n.current_locale.reset(token)


def _ms(file_id, **extra) -> dict:
    return {"form": "", "errors": {}, "values": {}, "file_id": file_id, "settings": DEFAULT_SETTINGS,
            "redemption_open": True, "payment_methods": PAYMENT_METHODS, **extra}


def _card(number: str, *, status="active", named=True, current=True, redeemable=1234) -> dict:
    card = SimpleNamespace(number=number, status="current" if current else "lost")
    return {"account": SimpleNamespace(status=status, named=named), "cards": [card],
            "current": card if current else None, "redeemable": redeemable}


def _keys_out(text: str) -> str:
    return KEY_RE.sub('name="form_key" value="KEY"', text)


def _fresh(env, ms, a, tier, allowed, csrf) -> str:
    """What Jinja renders for this card, uncached."""
    number = (a["current"] or a["cards"][0]).number
    return env.get_template(CARD_ACTIONS).render(
        membership=ms, member_allowed=frozenset(allowed), current=a["current"] is not None,
        status=a["account"].status, named=a["account"].named, tier=tier, number=number,
        redeemable=f"{a['redeemable']:,}", csrf=csrf, fresh_key=lambda: "KEY")


STATES = list(itertools.product(("active", "frozen", "cancelled"), (True, False), (True, False),
                                ("regular", "gold"), (ALL_STEPS, {"member.redeem", "card.manage"}, set())))


def test_a_cached_card_is_what_jinja_renders_for_the_same_state(env, locale):
    actions = CardActions(env)  # one cache for every state: no state may be served another's forms
    fid = uuid.uuid4()
    for _ in range(2):  # the first round fills the cache, the second reads it
        for status, named, current, tier, allowed in STATES:
            a = _card("755 00032", status=status, named=named, current=current)
            cached = actions(_ms(fid), a, tier, allowed, "tok&<en>")
            assert _keys_out(cached) == _fresh(env, _ms(fid), a, tier, allowed, "tok&<en>"), (status, named,
                                                                                           current, tier, allowed)
    # The redemption window and the settings are part of the state too.
    a = _card("755 00032")
    closed = _ms(fid, redemption_open=False)
    assert _keys_out(actions(closed, a, "gold", ALL_STEPS, "t")) == _fresh(env, closed, a, "gold", ALL_STEPS, "t")
    import dataclasses
    other = _ms(fid, settings=dataclasses.replace(DEFAULT_SETTINGS, catalogue=DEFAULT_SETTINGS.catalogue[:1]))
    assert _keys_out(actions(other, a, "gold", ALL_STEPS, "t")) == _fresh(env, other, a, "gold", ALL_STEPS, "t")


def test_each_form_gets_a_key_of_its_own_on_every_page(env, locale):
    actions = CardActions(env)
    a = _card("755 00032")
    first = KEY_RE.findall(actions(_ms(uuid.uuid4()), a, "gold", ALL_STEPS, "t"))
    second = KEY_RE.findall(actions(_ms(uuid.uuid4()), a, "gold", ALL_STEPS, "t"))
    assert len(first) >= 7 and len(set(first + second)) == len(first) + len(second)


def test_nothing_of_one_request_reaches_another(env):
    actions, returns = CardActions(env), ReturnForm(env)
    one, two = uuid.uuid4(), uuid.uuid4()
    i18n.current_locale.set("en")
    page_one = actions(_ms(one), _card("111 11111", redeemable=98765), "gold", ALL_STEPS, "csrf-one")
    page_one += returns(_ms(one), "R-ONE", "csrf-one")
    i18n.current_locale.set("zh_CN")
    page_two = actions(_ms(two), _card("222 22222", redeemable=4321), "gold", ALL_STEPS, "csrf-two")
    page_two += returns(_ms(two), "R-TWO", "csrf-two")
    keys_one = KEY_RE.findall(page_one)
    for value in (str(one), "111 11111", "98,765", "csrf-one", "R-ONE", *keys_one, "Freeze", "Return"):
        assert value in page_one and value not in page_two, value
    for value in (str(two), "222 22222", "4,321", "csrf-two", "R-TWO", "冻结"):
        assert value in page_two, value
    i18n.current_locale.set("en")
    assert "冻结" not in actions(_ms(two), _card("222 22222"), "gold", ALL_STEPS, "csrf-two")


def test_values_are_escaped_where_they_are_filled_in(env, locale):
    actions, returns = CardActions(env), ReturnForm(env)
    text = actions(_ms("<f>"), _card('"><script>'), "gold", ALL_STEPS, "<csrf>")
    text += returns(_ms("<f>"), '"><b>', "<csrf>")
    assert "<script>" not in text and "<b>" not in text and "<csrf>" not in text and "<f>" not in text
    assert 'value="&#34;&gt;&lt;script&gt;"' in text and 'value="&lt;csrf&gt;"' in text


def test_a_cached_return_form_is_what_jinja_renders(env, locale):
    returns = ReturnForm(env)
    for _ in range(2):
        cached = returns(_ms("f-1"), "DR-1 & 2", "tok")
        assert cached == env.get_template(RETURN_FORM).render(membership=_ms("f-1"), receipt_no="DR-1 & 2",
                                                              csrf="tok")


def test_a_form_sent_back_renders_afresh_with_its_values_and_message(env, locale):
    actions = CardActions(env)
    a = _card("755 00032")
    actions(_ms("f"), a, "gold", ALL_STEPS, "t")  # the closed forms are cached
    sent = _ms("f", form="sv_adjust-755 00032", errors={"amount": "Bad <amount>"}, values={"amount": "1.234"})
    text = actions(sent, a, "gold", ALL_STEPS, "t")
    assert text.count("<details class=\"member-action\" open>") == 1
    assert 'value="1.234"' in text and 'data-error-for="amount">Bad &lt;amount&gt;<' in text
    assert "open>" not in actions(_ms("f"), a, "gold", ALL_STEPS, "t")


# ---------------------------------------------------------------- through the web

@pytest.mark.parametrize("lang,message", [("en", "two decimals"), ("zh-CN", "两位小数")])
def test_a_card_form_sent_back_reopens_with_the_values_and_the_message_next_to_the_field(
        client, db, story, clock_at, lang, message):
    client.headers["Accept-Language"] = lang
    clock_at(at(2026, 3, 10))
    fid, number = enrol(db, story)
    page = f"/customers/{fid}"
    signed_in(client, "alice")
    r = post(client, f"{page}/stored-value/recharge", {"card": number, "amount": "500.005", "payment_method": "wire"},
             from_page=page)
    assert r.status_code == 400 and message in error_for(r.text, "amount")
    form = re.search(r'<details class="member-action" open>.*?</details>', r.text, re.S).group(0)
    assert 'data-testid="recharge"' in form and 'value="500.005"' in form
    assert re.search(r'<option value="wire"\s+selected>', form)
    # The next page: every form closed again, this session's token, the card and a key per form.
    text = client.get(page).text
    assert "member-action\" open" not in text
    assert set(re.findall(r'name="_csrf" value="([^"]+)"', text)) == {csrf_of(text)}
    assert html.unescape(re.search(r'name="card" value="([^"]+)"', text).group(1)) == number
    keys = KEY_RE.findall(text)
    assert len(keys) == len(set(keys)) >= 3
    assert f'action="/customers/{fid}/stored-value/recharge"' in text
