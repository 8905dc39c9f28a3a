"""The membership programme pages: its figures and catalogue for staff, versioned settings for admins."""
from __future__ import annotations

import dataclasses
from datetime import date
from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..customers.service import InvalidInput
from ..membership import programme
from ..membership import profiles
from ..membership.programme import DISCOUNT_FIELDS, MONEY_FIELDS, VersionView
from ..membership.rules import programme_today
from ..membership.settings import DEFAULT_SETTINGS, ProgrammeSettings
from ..policy import Action
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def shown(settings: ProgrammeSettings, name: str) -> str:
    """One figure in human units: ¥ with two decimals, 折, months "3,8", item codes."""
    value = getattr(settings, name)
    if name in MONEY_FIELDS:
        return "¥" + programme.yuan_text(value, grouping=True)
    if name in DISCOUNT_FIELDS:
        return i18n.discount_text(value)
    if isinstance(value, bool):
        return i18n.gettext("yes") if value else i18n.gettext("no")
    if name == "redemption_months":
        return ",".join(str(m) for m in value) or i18n.gettext("any month")
    if name in ("catalogue", "card_types"):
        return ", ".join(item.code for item in value)
    if isinstance(value, date):
        return value.isoformat()
    return f"{value:,}" if isinstance(value, int) else str(value)


@dataclasses.dataclass(frozen=True)
class Change:
    name: str
    before: str
    after: str


def _changes(before: ProgrammeSettings, after: ProgrammeSettings) -> list[Change]:
    return [Change(name, shown(before, name), shown(after, name))
            for name in programme.changed_fields(before, after)]


def _with_changes(history: list[VersionView]) -> list[tuple[VersionView, list[Change]]]:
    """Each version with what it changed from the one before it (the seed values for the first)."""
    out = []
    for i, version in enumerate(history):  # latest first
        before = history[i + 1].settings if i + 1 < len(history) else DEFAULT_SETTINGS
        out.append((version, _changes(before, version.settings)))
    return out


@get("/programme", opt={"action": Action.PROGRAMME_VIEW}, sync_to_thread=True)
def show_programme(request: Request) -> Response:
    with request.app.state.db.read() as s:
        settings = programme.current_settings(s)
        history = programme.versions(s)
    current = next((v for v in history if v.in_effect), None)
    upcoming = [(v, changes) for v, changes in _with_changes(history) if v.upcoming]
    upcoming.reverse()  # soonest first
    return render(request, "programme/index.html", settings=settings, current=current,
                  upcoming=upcoming, today=programme_today(), shown=shown,
                  yuan=programme.yuan_text, zhe=programme.zhe_text)


def _settings_page(request: Request, *, form: dict[str, str] | None = None,
                   errors: dict[str, str] | None = None, status: int = 200,
                   chosen: profiles.Profile | None = None) -> Response:
    with request.app.state.db.read() as s:
        history = programme.versions(s)
        if form is None:
            # The latest version (upcoming if any, else the one in effect) is the starting point,
            # or the profile the administrator chose to start from.
            start = profiles.profile_settings(chosen.name) if chosen else programme.settings_on(s, date.max)
            form = programme.form_values(start)
            form["effective_from"] = programme.default_effective_from(s).isoformat()
            form["note"] = ""
    return render(request, "programme/settings.html", form=form, errors=errors or {},
                  history=_with_changes(history), today=programme_today(), shown=shown,
                  note_max=programme.NOTE_MAX, status=status, profiles=profiles.PROFILES, chosen=chosen)


@get("/programme/settings", opt={"action": Action.PROGRAMME_EDIT}, sync_to_thread=True)
def edit_programme_settings(request: Request, profile: str = "") -> Response:
    """The settings form; ``?profile=NAME`` pre-fills it from a seed business's profile."""
    try:
        chosen = profiles.profile(profile) if profile else None
    except KeyError:
        return _settings_page(request, status=400, errors={"profile": i18n.gettext("No such profile.")})
    return _settings_page(request, chosen=chosen)


@post("/programme/settings", opt={"action": Action.PROGRAMME_EDIT}, sync_to_thread=True)
def save_programme_settings(request: Request, data: Form) -> Response:
    actor = current_actor(request)
    note = data.get("note", "")
    try:
        with request.app.state.db.write() as s:
            base = programme.settings_on(s, date.max)
            try:
                new_settings = programme.settings_from_form(data, base)
            except InvalidInput as exc:  # report the reason too, so one round trip shows everything
                programme.check_note(note, exc.errors)
                raise
            programme.save_version(s, actor, new_settings, note)
    except InvalidInput as exc:
        form = {k: v for k, v in data.items() if k != "_csrf"}
        errors = {k: i18n.gettext(v) for k, v in exc.errors.items()}
        return _settings_page(request, form=form, errors=errors, status=400)
    return Redirect(path="/programme/settings", status_code=303)


ROUTES = [show_programme, edit_programme_settings, save_programme_settings]
