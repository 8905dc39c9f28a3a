"""Administration: users and units. Administrators never reach customer files (the policy says so),
never choose or learn a user's password (one-time set-up codes), and never give anyone reach over
files on their own (a leader approves: accounts/approvals.py)."""
from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..accounts import approvals, mfa, setup
from ..accounts import service as accounts
from ..accounts.models import Role
from ..org import service as org
from ..policy import Action
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
ROLES = [r.value for r in Role]
PRIVILEGED_ROLES = [r for r in ROLES if approvals.sees_files(r)]


def _users_page(request: Request, *, form=None, errors=None, status=200) -> Response:
    with request.app.state.db.read() as s:
        users = accounts.list_users(s)
        units = org.all_units(s)
        no_password = setup.waiting_for_setup(s)
        pending = approvals.pending_for_admin(s)
        help_requests = setup.open_help_requests(s)
    return render(request, "admin/users.html", users=users, units=units, roles=ROLES,
                  privileged=PRIVILEGED_ROLES, no_password=no_password, pending=pending,
                  help_requests=help_requests, form=form or {}, errors=errors or {}, status=status)


def _code_page(request: Request, outcome: approvals.NewAccount, purpose: str) -> Response:
    # Shown once, in the answer to the POST: the code is not stored anywhere in the clear, so
    # there is nothing to redirect to (Cache-Control: no-store keeps it out of the history).
    return render(request, "admin/setup_code.html", user=outcome.user, code=outcome.code,
                  expires_at=outcome.expires_at, pending=outcome.change is not None, purpose=purpose,
                  hours=setup.SETUP_HOURS, status=201 if purpose == "new" else 200)


@get("/admin/users", opt={"action": Action.ADMIN_USERS}, sync_to_thread=True)
def list_users(request: Request) -> Response:
    return _users_page(request)


@post("/admin/users", opt={"action": Action.ADMIN_USERS}, sync_to_thread=True)
def add_user(request: Request, data: Form) -> Response:
    """A new account without a password: the answer shows a one-time set-up code for the user."""
    actor = current_actor(request)
    form = {k: data.get(k, "") for k in ("username", "role", "unit", "display_name", "reason")}
    try:
        with request.app.state.db.write() as s:
            outcome = approvals.create_account(s, actor, form["username"], form["role"], form["unit"],
                                               display_name=form["display_name"], reason=form["reason"])
    except accounts.AccountError as exc:
        return _users_page(request, form=form, errors={exc.field: i18n.error_text(exc)}, status=400)
    return _code_page(request, outcome, "new")


def _edit_page(request: Request, username: str, *, form=None, errors=None, status=200) -> Response:
    with request.app.state.db.read() as s:
        found = [(u, unit) for u, unit in accounts.list_users(s) if u.username == username]
        units = org.all_units(s)
    if not found:
        return _users_page(request, errors={"state": i18n.gettext("No such user.")}, status=404)
    user, unit = found[0]
    form = form or {"display_name": user.display_name, "role": user.role, "unit": unit.code, "reason": ""}
    return render(request, "admin/edit_user.html", user=user, unit=unit, units=units, roles=ROLES,
                  form=form, errors=errors or {}, status=status)


@get("/admin/users/{username:str}/edit", opt={"action": Action.ADMIN_USERS}, sync_to_thread=True)
def edit_user_form(request: Request, username: str) -> Response:
    return _edit_page(request, username)


@post("/admin/users/{username:str}/edit", opt={"action": Action.ADMIN_USERS}, sync_to_thread=True)
def edit_user(request: Request, username: str, data: Form) -> Response:
    """Display name, role and unit with a reason; a change that raises reach waits for a leader."""
    actor = current_actor(request)
    form = {k: data.get(k, "") for k in ("display_name", "role", "unit", "reason")}
    try:
        with request.app.state.db.write() as s:
            approvals.edit_user(s, actor, username, display_name=form["display_name"], role=form["role"],
                                unit_code=form["unit"], reason=form["reason"])
    except accounts.AccountError as exc:
        if exc.field == "username":
            return _users_page(request, errors={"state": i18n.error_text(exc)}, status=404)
        return _edit_page(request, username, form=form, errors={exc.field: i18n.error_text(exc)},
                          status=400)
    return Redirect(path="/admin/users", status_code=303)


@post("/admin/users/{username:str}/reset-password", opt={"action": Action.ADMIN_PASSWORD},
      sync_to_thread=True)
def reset_password(request: Request, username: str, data: Form) -> Response:
    """The old password stops working; the answer shows a one-time set-up code for the user
    (for a role that sees files, the account also waits for a leader's approval)."""
    actor = current_actor(request)
    try:
        with request.app.state.db.write() as s:
            outcome = approvals.reset_password(s, actor, username, data.get("reason", ""))
    except accounts.AccountError:
        return _users_page(request, errors={"state": i18n.gettext("No such user.")}, status=404)
    return _code_page(request, outcome, "reset")


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
        return _users_page(request, errors={"state": i18n.error_text(exc)}, status=400)
    return Redirect(path="/admin/users", status_code=303)


@post("/admin/users/{username:str}/reset-2fa", opt={"action": Action.ADMIN_MFA}, sync_to_thread=True)
def reset_second_factor(request: Request, username: str) -> Response:
    """Turn off someone's second factor (a lost phone); audited. They set it up again at sign-in
    with their own password, which the administrator never knows."""
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
        return _units_page(request, form=form, errors={exc.field: i18n.error_text(exc)}, status=400)
    return Redirect(path="/admin/units", status_code=303)


ROUTES = [list_users, add_user, edit_user_form, edit_user, reset_password, reset_second_factor,
          set_user_state, list_units, add_unit]
