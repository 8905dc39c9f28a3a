"""Sign-in, sign-out, language preference and the health check (each role's home page: views/home.py)."""
from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..accounts import mfa
from ..accounts import service as accounts
from ..accounts import setup
from ..policy import Action
from .rendering import render
from .security import SESSION_COOKIE, visitor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

def _safe_next(nxt: str | None) -> str:
    # Only local paths: never an open redirect to another site.
    if nxt and nxt.startswith("/") and not nxt.startswith("//") and "\\" not in nxt:
        return nxt
    return "/"


@get("/healthz", opt={"public": True}, media_type="text/plain")
async def healthz() -> str:
    return "ok"


@get("/welcome", opt={"action": Action.ACCOUNT_SELF})
async def welcome(request: Request) -> Response:
    return render(request, "welcome.html")


@get("/login", opt={"public": True})
async def login_form(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", next=_safe_next(next), error="")


@post("/login", opt={"public": True}, sync_to_thread=True)
def login(request: Request, data: Form) -> Response:
    v = visitor(request)
    settings, db = request.app.state.settings, request.app.state.db
    with db.write() as s:
        result = accounts.sign_in(
            s, data.get("username", ""), data.get("password", ""), v.client_addr,
            user_limit=settings.throttle_user_failures, addr_limit=settings.throttle_addr_failures,
            window_minutes=settings.throttle_window_minutes)
        token = None
        if result.user is not None:
            # A fresh id at every sign-in; any session id the browser offered is dropped.
            # With a second factor (or one still to set up) the session is partial until then.
            # Then a new password if one is owed (accounts/setup.py).
            stage = setup.stage_at_sign_in(result.user)
            token = accounts.start_session(s, result.user, v.client_addr, stage=stage,
                                           replace_token=v.session_token or None)
    _ = i18n.gettext
    if token is None:
        msg = (_("Too many failed attempts. Wait 15 minutes and try again.") if result.throttled
               else _("Your account is waiting for a leader's approval. Ask your administrator.")
               if result.held else _("Sign-in failed: the username or password is not right."))
        return render(request, "login.html", status=429 if result.throttled else 401,
                      next=_safe_next(data.get("next")), error=msg,
                      username=data.get("username", "")[:64])
    nxt = _safe_next(data.get("next"))
    if stage == "mfa":
        path = f"/login/totp?next={quote(nxt)}"
    else:
        path = setup.STAGE_PATHS.get(stage, nxt)
    return _with_session(request, Redirect(path=path, status_code=303), token)


def _with_session(request: Request, resp: Response, token: str) -> Response:
    request.scope["state"]["session_set"] = True
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax",
                    secure=visitor(request).https, path="/")
    return resp


def _elsewhere(v) -> str:
    if v.stage in ("password", "enrol"):
        return setup.STAGE_PATHS[v.stage]
    return "/" if v.actor else "/login"


# Public so that a signed-in (or signed-out) visitor who lands here is sent on, not refused;
# only a session that owes its second factor can use the form.
@get("/login/totp", opt={"public": True, "stages": ("mfa",)})
async def second_factor_form(request: Request, next: str | None = None) -> Response:
    v = visitor(request)
    if v.stage != "mfa":
        return Redirect(path=_elsewhere(v), status_code=303)
    return render(request, "login_totp.html", next=_safe_next(next), error="")


@post("/login/totp", opt={"public": True, "stages": ("mfa",)}, sync_to_thread=True)
def second_factor(request: Request, data: Form) -> Response:
    """The code from the authenticator app (or a recovery code); then a new, full session."""
    v = visitor(request)
    if v.stage != "mfa":
        return Redirect(path=_elsewhere(v), status_code=303)
    st = request.app.state
    settings = st.settings
    token = None
    with st.db.write() as s:
        user = accounts.get_user(s, v.pending.user_id)
        ok, throttled = mfa.sign_in_code(s, st.vault, user, data.get("code", ""), v.client_addr,
                                         user_limit=settings.throttle_user_failures,
                                         addr_limit=settings.throttle_addr_failures,
                                         window_minutes=settings.throttle_window_minutes)
        if ok:
            stage = setup.stage_after_second_factor(user)
            token = accounts.start_session(s, user, v.client_addr, replace_token=v.session_token,
                                           stage=stage)
    _ = i18n.gettext
    if token is None:
        return render(request, "login_totp.html", status=429 if throttled else 401,
                      next=_safe_next(data.get("next")),
                      error=_("Too many failed attempts. Wait 15 minutes and try again.") if throttled
                      else _("That code is not right. Try the current code from your app."))
    path = setup.STAGE_PATHS["password"] if stage == "password" else _safe_next(data.get("next"))
    return _with_session(request, Redirect(path=path, status_code=303), token)


@post("/logout", opt={"action": Action.ACCOUNT_SELF, "stages": ("mfa", "password", "enrol")}, sync_to_thread=True)
def logout(request: Request) -> Response:
    v = visitor(request)
    with request.app.state.db.write() as s:
        accounts.sign_out(s, v.actor or v.pending, v.session_token)
    request.scope["state"]["session_set"] = True
    resp = Redirect(path="/login", status_code=303)
    resp.set_cookie(SESSION_COOKIE, "", max_age=0, httponly=True, samesite="lax", secure=v.https, path="/")
    return resp


@post("/preferences/language", opt={"public": True}, sync_to_thread=True)
def set_language(request: Request, data: Form) -> Response:
    """Switch language: stored on the account when signed in, else in a cookie."""
    lang = data.get("lang", "")
    if lang not in i18n.LOCALES:
        lang = i18n.DEFAULT_LOCALE
    v = visitor(request)
    if v.user is not None:
        with request.app.state.db.write() as s:
            accounts.set_locale(s, v.user.id, lang)
    resp = Redirect(path=_safe_next(data.get("next")), status_code=303)
    resp.set_cookie("portal_lang", lang, max_age=31536000, httponly=True, samesite="lax",
                    secure=v.https, path="/")
    return resp


ROUTES = [healthz, welcome, login_form, login, second_factor_form, second_factor, logout,
          set_language]
