"""The navigation bar (templates/_nav.html), rendered once per role, language, section of the
site and unread count, then reused: every page shows it, and rendering its ~40 links, menus and
labels took longer than the rest of a small page.

What the bar may depend on, and so what the cache is keyed by: the viewer's role
(`actor.role`), the language (gettext follows the request's locale), the unread count, and the
path with its id segments (any segment holding a digit: file ids, numbers, dates) blanked out,
since the bar only tells which section is current. tests/test_nav_cache.py renders every role on
many paths and checks the cached bar against a fresh one.
"""
from __future__ import annotations

import re
import threading

from jinja2 import Environment
from markupsafe import Markup

from .. import i18n

TEMPLATE = "_nav.html"
MAX_ENTRIES = 512  # about 3 KB each

_ID_SEGMENT = re.compile(r"(?<=/)[^/]*\d[^/]*")


def section_of(path: str) -> str:
    """The path as the bar sees it: '/customers/7f3c…/edit' -> '/customers/*/edit'."""
    return _ID_SEGMENT.sub("*", path)


class _Role:
    """All of the actor the bar may read."""

    __slots__ = ("role",)

    def __init__(self, role: str):
        self.role = role


class NavBar:
    """`nav(actor, path, unread)` in templates: the bar's HTML, from the cache when it can."""

    def __init__(self, env: Environment):
        self.env = env
        self._cache: dict[tuple, Markup] = {}
        self._lock = threading.Lock()

    def render(self, role: str, path: str, unread: int) -> Markup:
        """A fresh rendering (what the cache holds for this key)."""
        return Markup(self.env.get_template(TEMPLATE).render(actor=_Role(role), path=path, unread=unread))

    def __call__(self, actor, path: str, unread: int = 0) -> Markup:
        template = self.env.get_template(TEMPLATE)  # a new object once the file changed (auto-reload)
        section = section_of(path if isinstance(path, str) else "")
        key = (template, actor.role, i18n.current_locale.get(), unread, section)
        html = self._cache.get(key)
        if html is None:
            html = Markup(template.render(actor=_Role(actor.role), path=section, unread=unread))
            with self._lock:
                if len(self._cache) >= MAX_ENTRIES:
                    self._cache.clear()
                self._cache[key] = html
        return html
