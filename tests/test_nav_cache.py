"""The navigation bar is rendered once per role, language, section and unread count (views/nav.py):
the cached bar is the bar a fresh rendering gives, for every role, on every link's own page and on
pages with ids in their path, whoever of that role looks at it."""
from __future__ import annotations

import re

import pytest

from portal import i18n
from portal.accounts.actor import Actor
from portal.app import _jinja_env
from portal.views.nav import NavBar, section_of

ROLES = ("salesperson", "leader", "customer_service", "auditor", "admin")
ID_PATHS = ("/", "/customers/7f3c2a1e-0000-4000-8000-000000000001", "/customers/7f3c2a1e-0000-4000-8000-000000000001/edit",
            "/events/12", "/programme/3/edit", "/service/applications/5", "/audit/trace", "/reports/monthly/2030-04",
            "/access-requests/9", "/privacy/erasures/2", "/admin/users/alice/edit")


def fresh(env, actor: Actor, path: str, unread: int) -> str:
    return env.get_template("_nav.html").render(actor=actor, path=path, unread=unread)


def test_section_blanks_id_segments_only():
    assert section_of("/customers/7f3c2a1e-0000-4000-8000-000000000001/edit") == "/customers/*/edit"
    assert section_of("/reports/monthly/2030-04") == "/reports/monthly/*"
    assert section_of("/members/expiring") == "/members/expiring"


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_the_cached_bar_is_the_bar_rendered_afresh(locale):
    env = _jinja_env()
    nav = NavBar(env)
    token = i18n.current_locale.set(locale)
    try:
        for role in ROLES:
            one = Actor(user_id=1, username="someone", role=role, unit_id=1, unit_path="/1/")
            other = Actor(user_id=2, username="another", role=role, unit_id=7, unit_path="/1/4/7/")
            hrefs = re.findall(r'href="([^"]+)"', fresh(env, one, "/", 0))
            assert hrefs, role
            for path in (*hrefs, *(h + "/42" for h in hrefs), *ID_PATHS):
                for unread in (0, 3):
                    cached = nav(one, path, unread)
                    assert str(cached) == fresh(env, one, path, unread), (role, path, unread)
                    assert str(nav(other, path, unread)) == fresh(env, other, path, unread), (role, path)
    finally:
        i18n.current_locale.reset(token)
