"""Administration: users and units. Administrators never reach customer files (the policy says so)."""
from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..accounts import mfa
from ..accounts import service as accounts
from ..accounts.models import Role
from ..org import service as org
from ..policy import Action
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
ROLES = [r.value for r in Role]


def _users_page(request: Request, *, form=None, errors=None, status=200) -> Response:
    with request.app.state.db.read() as s:
        users = accounts.list_users(s)
        units = org.all_units(s)
    return render(request, "admin/users.html", users=users, units=units, roles=ROLES,
                  form=form or {}, errors=errors or {}, status=status)


@get("/admin/users", opt={"action": Action.ADMIN_USERS}, sync_to_thread=True)
def list_users(request: Request) -> Response:
    return _users_page(request)


@post("/admin/users", opt={"action": Action.ADMIN_USERS}, sync_to_thread=True)
def add_user(request: Request, data: Form) -> Response:
    actor = current_actor(request)
    try:
        with request.app.state.db.write() as s:
            accounts.add_user(s, data.get("username", ""), data.get("role", ""), data.get("unit", ""),
                              data.get("password", ""), display_name=data.get("display_name", ""),
                              by=actor)
    except accounts.AccountError as exc:
        form = {k: data.get(k, "") for k in ("username", "role", "unit", "display_name")}
        return _users_page(request, form=form, errors={exc.field: i18n.gettext(str(exc))}, status=400)
    return Redirect(path="/admin/users", status_code=303)


@post("/admin/users/{username:str}/{change:str}", opt={"action": Action.ADMIN_USERS}, sync_to_thread=True)
def set_user_state(request: Request, username: str, change: str) -> Response:
    if change not in ("disable", "enable"):
        return _users_page(request, errors={"state": i18n.gettext("Unknown action.")}, status=400)
    actor = current_actor(request)
    if username == actor.username and change == "disable":
        return _users_page(request, errors={"state": i18n.gettext("You cannot disable your own account.")},
                           status=400)
    try:
        with request.app.state.db.write() as s:
            accounts.set_active(s, username, change == "enable", by=actor)
    except accounts.AccountError as exc:
        return _users_page(request, errors={"state": i18n.gettext(str(exc))}, status=400)
    return Redirect(path="/admin/users", status_code=303)


@post("/admin/users/{username:str}/reset-2fa", opt={"action": Action.ADMIN_MFA}, sync_to_thread=True)
def reset_second_factor(request: Request, username: str) -> Response:
    """Turn off someone's second factor (a lost phone); audited. They set it up again at sign-in."""
    actor = current_actor(request)
    try:
        with request.app.state.db.write() as s:
            mfa.reset(s, username, actor)
    except LookupError:
        return _users_page(request, errors={"state": i18n.gettext("No such user.")}, status=404)
    return Redirect(path="/admin/users", status_code=303)


def _units_page(request: Request, *, form=None, errors=None, status=200) -> Response:
    with request.app.state.db.read() as s:
        units = org.all_units(s)
    return render(request, "admin/units.html", units=units, form=form or {}, errors=errors or {},
                  status=status)


@get("/admin/units", opt={"action": Action.ADMIN_UNITS}, sync_to_thread=True)
def list_units(request: Request) -> Response:
    return _units_page(request)


@post("/admin/units", opt={"action": Action.ADMIN_UNITS}, sync_to_thread=True)
def add_unit(request: Request, data: Form) -> Response:
    actor = current_actor(request)
    try:
        with request.app.state.db.write() as s:
            org.add_unit(s, data.get("code", ""), data.get("name", ""), data.get("parent") or None,
                         by=actor)
    except org.OrgError as exc:
        form = {k: data.get(k, "") for k in ("code", "name", "parent")}
        return _units_page(request, form=form, errors={exc.field: i18n.gettext(str(exc))}, status=400)
    return Redirect(path="/admin/units", status_code=303)


ROUTES = [list_users, add_user, reset_second_factor, set_user_state, list_units, add_unit]
