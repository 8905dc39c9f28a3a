"""One's own account: the password (changed, or owed at sign-in) and the second factor
(required for leaders, auditors, admins)."""
from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..accounts import mfa, setup, totp
from ..accounts import service as accounts
from ..policy import Action
from .auth import _with_session
from .rendering import render
from .security import visitor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
# Reachable with a full session, and with one that must enrol before anything else.
OPT = {"action": Action.ACCOUNT_SELF, "stages": ("enrol",)}


def _me(request: Request):
    v = visitor(request)
    return v, (v.actor or v.pending)


@get("/account/2fa", opt=OPT, sync_to_thread=True)
def second_factor_page(request: Request) -> Response:
    v, me = _me(request)
    st = request.app.state
    with st.db.write() as s:
        user = accounts.get_user(s, me.user_id)
        if mfa.enrolled(user):
            return render(request, "account/2fa.html", enrolled=True, required=mfa.required(user.role),
                          remaining=mfa.remaining_recovery_codes(s, user.id), error="")
        secret = mfa.pending_secret(s, st.vault, user)
    uri = totp.provisioning_uri(secret, me.username)
    return render(request, "account/2fa.html", enrolled=False, required=mfa.required(me.role),
                  secret=secret, qr=totp.qr_svg(uri), error="", must=v.stage == "enrol")


@post("/account/2fa", opt=OPT, sync_to_thread=True)
def confirm_second_factor(request: Request, data: Form) -> Response:
    v, me = _me(request)
    st = request.app.state
    token = None
    with st.db.write() as s:
        user = accounts.get_user(s, me.user_id)
        codes = mfa.confirm_enrolment(s, st.vault, user, data.get("code", ""), me)
        if codes is not None and v.stage == "enrol":
            # Privileges change: a new session id, now a full one.
            token = accounts.start_session(s, user, v.client_addr, replace_token=v.session_token)
        secret = None if codes is not None else (mfa.pending_secret(s, st.vault, user)
                                                 if not mfa.enrolled(user) else None)
    if codes is None:
        if secret is None:
            return Redirect(path="/account/2fa", status_code=303)
        uri = totp.provisioning_uri(secret, me.username)
        return render(request, "account/2fa.html", status=400, enrolled=False,
                      required=mfa.required(me.role), secret=secret, qr=totp.qr_svg(uri),
                      must=v.stage == "enrol",
                      error=i18n.gettext("That code is not right. Try the current code from your app."))
    if token:
        # Render the codes page as the new, full session (its CSRF token, its top bar): the old
        # partial session is gone, so a token bound to it would make every form here fail.
        v.session_token, v.stage, v.actor, v.pending = token, "full", me, None
    resp = render(request, "account/recovery_codes.html", codes=codes)
    return _with_session(request, resp, token) if token else resp


PASSWORD_OPT = {"action": Action.ACCOUNT_SELF, "stages": ("password",)}


@get("/account/password", opt=PASSWORD_OPT)
async def password_page(request: Request, changed: str = "") -> Response:
    v = visitor(request)
    return render(request, "account/password.html", owed=v.stage == "password", errors={},
                  changed=changed == "1")


@post("/account/password", opt=PASSWORD_OPT, sync_to_thread=True)
def change_password(request: Request, data: Form) -> Response:
    """Choose a new password: the current one is asked, unless the sign-in just checked it (a
    password owed at first sign-in). Every other session of the user ends."""
    v, me = _me(request)
    st = request.app.state
    owed = v.stage == "password"
    cfg = st.settings
    token = None
    try:
        with st.db.write() as s:
            setup.change_password(s, me.user_id, None if owed else data.get("current", ""),
                                  data.get("password", ""), data.get("confirm", ""),
                                  client_addr=v.client_addr, keep_session=v.session_token,
                                  user_limit=cfg.throttle_user_failures,
                                  addr_limit=cfg.throttle_addr_failures,
                                  window_minutes=cfg.throttle_window_minutes)
            if owed:
                # The step is done: a new session id, for the next step owed (or none).
                user = accounts.get_user(s, me.user_id)
                stage = setup.stage_after_new_password(user)
                token = accounts.start_session(s, user, v.client_addr, replace_token=v.session_token,
                                               stage=stage)
    except accounts.AccountError as exc:
        return render(request, "account/password.html", status=400, owed=owed, changed=False,
                      errors={exc.field: i18n.error_text(exc)})
    if token:
        path = setup.STAGE_PATHS.get(stage, "/")
        return _with_session(request, Redirect(path=path, status_code=303), token)
    return Redirect(path="/account/password?changed=1", status_code=303)


ROUTES = [second_factor_page, confirm_second_factor, password_page, change_password]
