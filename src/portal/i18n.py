"""Simplified Chinese and English: gettext catalogs (.po, compiled in memory at start-up) and locale choice."""
from __future__ import annotations

import io
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
_LOCALE_DIR = Path(__file__).parent / "locale"

current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT_LOCALE)


@lru_cache(maxsize=None)
def translations(locale: str) -> NullTranslations:
    po = _LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def gettext(message: str, **variables) -> str:
    text = translations(current_locale.get()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables) -> str:
    text = translations(current_locale.get()).ngettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


_ = gettext


def data_label(text: str) -> str:
    """A name the data carries (a card type, a catalogue item): in the user's language when the
    catalog knows it (the programme's default names are there), else as it was typed. Never
    %-formatted, so a name with "%" in it is safe."""
    return translations(current_locale.get()).gettext(text) if text else text


def discount_text(per_mille: int) -> str:
    """A discount as each language says it: 950 per mille of the list price is "9.5折" in
    Chinese and "5% off" in English; 1000 is no discount."""
    if per_mille >= 1000:
        return gettext("none")
    if current_locale.get() == "zh_CN":
        whole, frac = divmod(per_mille, 100)
        return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") + "折"
    off = 1000 - per_mille
    return f"{off // 10}.{off % 10}".removesuffix(".0") + "% off"


def error_text(exc: Exception) -> str:
    """A domain error in the user's language: its English msgid (``template`` or ``message``)
    with its ``params`` filled in after translation, else its text as a msgid."""
    msgid = getattr(exc, "template", None) or getattr(exc, "message", None) or str(exc)
    params = getattr(exc, "params", None) or {}
    return gettext(msgid, **params)


def negotiate(user_locale: str | None, accept_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """The user's setting, else the best Accept-Language match, else the default."""
    if user_locale in LOCALES:
        return user_locale
    if accept_language:
        prefs = []
        for i, part in enumerate(accept_language.split(",")):
            bits = part.strip().split(";q=")
            tag = bits[0].strip().replace("-", "_").lower()
            try:
                q = float(bits[1]) if len(bits) > 1 else 1.0
            except ValueError:
                q = 0.0
            prefs.append((-q, i, tag))
        for _q, _i, tag in sorted(prefs):
            if tag.startswith("zh"):
                return "zh_CN"
            if tag.startswith("en"):
                return "en"
    return default if default in LOCALES else DEFAULT_LOCALE
