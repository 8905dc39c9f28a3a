"""The customer list's order and filters form (templates/customers/_filters.html), rendered once
per language, order, filters and owner choices, then reused: its ~25 options, labels and
selections cost about as much as the rest of a one-row search page around them.

What the form depends on, and so what the cache is keyed by: the language (gettext follows the
request's locale), the list's order and filters (`ListQuery`: no personal data) and the leader's
owner choices (colleagues' usernames, read on every request as before). No CSRF token or other
per-session value is in it. tests/test_customer_lists.py checks the cached form against a fresh one.
"""
from __future__ import annotations

import threading

from jinja2 import Environment
from markupsafe import Markup

from .. import i18n
from ..customers import listing

TEMPLATE = "customers/_filters.html"
MAX_ENTRIES = 512  # about 3 KB each


class FilterForm:
    """`filter_form(lq, owners)` in templates: the form's HTML, from the cache when it can."""

    def __init__(self, env: Environment):
        self.env = env
        self._cache: dict[tuple, Markup] = {}
        self._lock = threading.Lock()

    def render(self, lq: listing.ListQuery, owners) -> Markup:
        """A fresh rendering (what the cache holds for this key)."""
        from .customers import list_labels, list_links
        locale = i18n.current_locale.get()
        return Markup(self.env.get_template(TEMPLATE).render(
            lq=lq, owners=owners, labels=list_labels(locale), links=list_links(lq, bool(owners), locale),
            tiers=listing.TIERS, sorts=listing.SORTS))

    def __call__(self, lq: listing.ListQuery, owners) -> Markup:
        template = self.env.get_template(TEMPLATE)  # a new object once the file changed (auto-reload)
        key = (template, i18n.current_locale.get(), lq, tuple(owners))
        html = self._cache.get(key)
        if html is None:
            html = self.render(lq, owners)
            with self._lock:
                if len(self._cache) >= MAX_ENTRIES:
                    self._cache.clear()
                self._cache[key] = html
        return html
