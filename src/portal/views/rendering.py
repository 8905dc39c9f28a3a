"""Rendering pages and HTMX fragments with the context every template needs."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from jinja2 import Template as JinjaTemplate
from jinja2 import pass_eval_context
from litestar import MediaType, Request
from litestar.response import Template
from markupsafe import Markup

from .. import i18n
from .security import csrf_token, visitor


def base_context(request: Request) -> dict:
    v = visitor(request)
    return {
        "me": v.user,
        "actor": v.actor,
        "csrf": csrf_token(v, request.app.state.vault),
        "locale": v.locale,
        "tz": v.timezone,
        "path": request.url.path,
        "unread": v.unread,
    }


def is_htmx(request: Request) -> bool:
    # A boosted request wants the whole page; a targeted one wants the fragment.
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


def render(request: Request, template: str, *, fragment: str | None = None, status: int = 200,
           **context) -> Template:
    """The page for a normal request; only `fragment` (included by the page) for HTMX."""
    name = fragment if (fragment and is_htmx(request)) else template
    # Every template is HTML: said here, so Litestar does not guess it from the name each time.
    return Template(template_name=name, context={**base_context(request), **context},
                    status_code=status, media_type=MediaType.HTML)


def local_time(tz: str, fmt: str = "%Y-%m-%d %H:%M"):
    """format_datetime() for many values of one page: the zone is looked up once."""
    zone = ZoneInfo(tz)
    if fmt == "%Y-%m-%d %H:%M":  # the usual one, without strftime (the slow part)
        def when(value: datetime | None) -> str:
            if value is None:
                return ""
            d = value.astimezone(zone)
            return f"{d.year:04d}-{d.month:02d}-{d.day:02d} {d.hour:02d}:{d.minute:02d}"
        return when

    def when_fmt(value: datetime | None) -> str:
        return "" if value is None else value.astimezone(zone).strftime(fmt)
    return when_fmt


def format_datetime(value: datetime | None, tz: str = "Asia/Shanghai", fmt: str = "%Y-%m-%d %H:%M") -> str:
    """The `dt` filter: ``value`` in the zone ``tz`` (ZoneInfo keeps each zone once per process);
    the usual format without strftime, as local_time() writes it."""
    if value is None:
        return ""
    d = value.astimezone(ZoneInfo(tz))
    if fmt == "%Y-%m-%d %H:%M":
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d} {d.hour:02d}:{d.minute:02d}"
    return d.strftime(fmt)


@pass_eval_context
def template_gettext(eval_ctx, message: str, **variables):
    """`_()` in templates, installed over jinja2's newstyle alias: the same result (the
    translation in the request's language, as Markup under autoescape, always %-formatted with
    the variables escaped), called directly instead of through three context calls each time
    (a page prints dozens of them)."""
    locale = i18n.current_locale.get()
    if not variables and eval_ctx.autoescape:
        # Most calls: a fixed message, the same Markup every time for a language (the catalogues
        # are loaded once per process, i18n.translations); %-formatted once, as below.
        key = (locale, message)
        text = _TEMPLATE_TEXT.get(key)
        if text is None:
            text = Markup(i18n.translations(locale).gettext(message)) % variables
            if len(_TEMPLATE_TEXT) >= 8192:  # a message built at run time must not grow it forever
                _TEMPLATE_TEXT.clear()
            _TEMPLATE_TEXT[key] = text
        return text
    text = i18n.translations(locale).gettext(message)
    if eval_ctx.autoescape:
        text = Markup(text)
    return text % variables


_TEMPLATE_TEXT: dict[tuple[str, str], Markup] = {}


class PageTemplate(JinjaTemplate):
    """Jinja2's Template, with a cheaper check at each `{% import %}`: whether the importing page
    has globals the imported template lacks (then its module is built for this page, as Jinja2
    does) is asked of a set of the template's global names, kept, not of its ChainMap's key view
    (which tests each name against every map: 5% of a page's rendering with three imports). The
    set is built again whenever the page has a name it does not hold, so a global added later is
    still seen."""

    def _get_default_module(self, ctx=None):
        if ctx is not None:
            names = self.__dict__.get("_global_names")
            if names is None or not ctx.globals_keys <= names:
                names = self._global_names = frozenset(self.globals)
            if not ctx.globals_keys <= names:
                return super()._get_default_module(ctx)
        return super()._get_default_module()
