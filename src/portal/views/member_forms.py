"""The file page's closed membership forms (each card's actions, each purchase's return form),
rendered once per language and state, then reused with this request's values filled in.

A member's card carries up to seven action forms (templates/membership/_card_actions.html) and
each complete purchase a return form (_return_form.html): some eighty macro calls and hundreds
of escapes a page, for forms that stay closed on almost every view. What they depend on is
small and has no personal data: the language, which actions the viewer may take, the card's
state (in use, active/frozen/cancelled, named), the member's tier and the programme settings
(catalogue, cash rate), the redemption window. That is the cache key. What differs per request
(the file, the card number, the receipt, the CSRF token, the points redeemable, and a fresh
one-time form key per form) is rendered as a slot marker, and filled in, escaped, on each use.

A page that sends a form back with its errors (``membership["form"]`` set) renders its forms
afresh through Jinja, so the form reopens with the values and the messages in place.
tests/test_member_forms.py checks the cached forms against fresh renderings and that nothing
of one request's values reaches another's page.
"""
from __future__ import annotations

import re
import secrets
import threading

from jinja2 import Environment
from markupsafe import Markup, escape

from .. import i18n

CARD_ACTIONS = "membership/_card_actions.html"
RETURN_FORM = "membership/_return_form.html"
# The viewer's actions the card's forms depend on (views read `member_allowed` for nothing else).
CARD_STEPS = ("member.redeem", "member.stored_value", "member.adjust", "card.manage", "card.cancel")
MAX_ENTRIES = 512  # about 10 KB each

# Slot markers: random per process, so no stored value (a catalogue item's name) can contain one;
# letters and digits only, so escaping leaves them as they are.
_MARK = secrets.token_hex(8)
_SLOT = re.compile(f"{_MARK}([A-Z]+){_MARK}")


def new_form_key() -> str:
    """A fresh one-time key for one rendered form (see submissions.first_time)."""
    return secrets.token_urlsafe(16)


def _slot(name: str) -> str:
    return f"{_MARK}{name}{_MARK}"


def _fill(parts: list[str], values: dict[str, str]) -> Markup:
    """The cached HTML (split at its slots: text, name, text, ...) with the slots filled in;
    ``values`` are escaped already; each KEY slot gets a key of its own."""
    out = [parts[0]]
    for i in range(1, len(parts), 2):
        name = parts[i]
        out.append(new_form_key() if name == "KEY" else values[name])
        out.append(parts[i + 1])
    return Markup("".join(out))


class _Cache:
    def __init__(self, env: Environment):
        self.env = env
        self._entries: dict[tuple, tuple] = {}
        self._lock = threading.Lock()

    def _get(self, key: tuple, settings) -> list[str] | None:
        entry = self._entries.get(key)
        # The settings object is held by the entry, so its id in the key cannot be reused by another.
        return entry[1] if entry is not None and entry[0] is settings else None

    def _put(self, key: tuple, settings, html: str) -> list[str]:
        parts = _SLOT.split(html)
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (settings, parts)
        return parts


class CardActions(_Cache):
    """`card_actions(ms, a, tier, allowed, csrf)` in _panel.html: one card's action forms."""

    def render(self, ms: dict, *, steps: frozenset, current: bool, status: str, named: bool, tier: str,
               number: str, redeemable: str, csrf: str, fresh_key) -> str:
        """A rendering through Jinja (what the cache holds, with slot markers for the values)."""
        return self.env.get_template(CARD_ACTIONS).render(
            membership=ms, member_allowed=steps, current=current, status=status, named=named, tier=tier,
            number=number, redeemable=redeemable, csrf=csrf, fresh_key=fresh_key)

    def __call__(self, ms: dict, a: dict, tier: str, allowed, csrf: str) -> Markup:
        acct = a["account"]
        number = (a["current"] or a["cards"][0]).number
        steps = frozenset(s for s in CARD_STEPS if s in allowed)
        state = dict(steps=steps, current=a["current"] is not None, status=acct.status, named=bool(acct.named),
                     tier=tier)
        redeemable = f"{a['redeemable']:,}"
        if ms.get("form"):  # a form sent back with its errors: this page's forms as they are
            return Markup(self.render(ms, number=number, redeemable=redeemable, csrf=csrf,
                                      fresh_key=new_form_key, **state))
        template = self.env.get_template(CARD_ACTIONS)  # a new object once the file changed (auto-reload)
        settings = ms["settings"]
        key = (template, i18n.current_locale.get(), steps, state["current"], acct.status, state["named"], tier,
               ms["redemption_open"], id(settings))
        parts = self._get(key, settings)
        if parts is None:
            blank = {"form": "", "errors": {}, "values": {}, "file_id": _slot("FILE"), "settings": settings,
                     "redemption_open": ms["redemption_open"], "payment_methods": ms["payment_methods"]}
            parts = self._put(key, settings, self.render(
                blank, number=_slot("NUMBER"), redeemable=_slot("REDEEMABLE"), csrf=_slot("CSRF"),
                fresh_key=lambda: _slot("KEY"), **state))
        return _fill(parts, {"FILE": str(escape(ms["file_id"])), "NUMBER": str(escape(number)),
                             "REDEEMABLE": str(escape(redeemable)), "CSRF": str(escape(csrf))})


class ReturnForm(_Cache):
    """`return_form(ms, receipt_no, csrf)` in _panel.html: one purchase's return form."""

    def render(self, ms: dict, receipt_no: str, csrf: str) -> str:
        return self.env.get_template(RETURN_FORM).render(membership=ms, receipt_no=receipt_no, csrf=csrf)

    def __call__(self, ms: dict, receipt_no: str, csrf: str) -> Markup:
        if ms.get("form"):
            return Markup(self.render(ms, receipt_no, csrf))
        template = self.env.get_template(RETURN_FORM)
        key = (template, i18n.current_locale.get())
        parts = self._get(key, None)
        if parts is None:
            blank = {"form": "", "errors": {}, "values": {}, "file_id": _slot("FILE")}
            parts = self._put(key, None, self.render(blank, _slot("RECEIPT"), _slot("CSRF")))
        return _fill(parts, {"FILE": str(escape(ms["file_id"])), "RECEIPT": str(escape(receipt_no)),
                             "CSRF": str(escape(csrf))})
