"""Pages reached without a session: choosing one's password with a one-time set-up code, and
"forgot password" (which asks the administrator; the portal sends no e-mail)."""
from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..accounts import setup
from ..accounts.service import AccountError
from .rendering import render
from .security import visitor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
# Public by design, like /login: no session exists yet, so the policy has no actor to decide for.
# The set-up code itself is the authorisation (about 100 bits, one use, 72 hours; its use is
# audited), and forgot-password requests are limited per account and address (accounts/setup.py).
PUBLIC = {"public": True}


@get("/setup", opt=PUBLIC)
async def setup_form(request: Request) -> Response:
    # The code is typed into the form, never carried in a URL (history, logs, Referer).
    return render(request, "account/setup.html", form={}, errors={}, hours=setup.SETUP_HOURS)


@post("/setup", opt=PUBLIC, sync_to_thread=True)
def use_setup_code(request: Request, data: Form) -> Response:
    code = data.get("code", "")[:64]
    try:
        with request.app.state.db.write() as s:
            setup.use_code(s, code, data.get("password", ""), data.get("confirm", ""),
                           visitor(request).client_addr)
    except AccountError as exc:
        # A wrong code writes nothing (no audit row for anonymous guesses; 100-bit codes).
        return render(request, "account/setup.html", status=400, form={"code": code},
                      errors={exc.field: i18n.error_text(exc)}, hours=setup.SETUP_HOURS)
    return Redirect(path="/setup/done", status_code=303)


@get("/setup/done", opt=PUBLIC)
async def setup_done(request: Request) -> Response:
    return render(request, "account/setup_done.html")


@get("/login/forgot", opt=PUBLIC)
async def forgot_form(request: Request, sent: str = "") -> Response:
    return render(request, "account/forgot.html", sent=sent == "1")


@post("/login/forgot", opt=PUBLIC, sync_to_thread=True)
def forgot(request: Request, data: Form) -> Response:
    """Noted for the administrators (the same answer whether or not the account exists)."""
    with request.app.state.db.write() as s:
        setup.ask_for_help(s, data.get("username", ""), visitor(request).client_addr)
    return Redirect(path="/login/forgot?sent=1", status_code=303)


ROUTES = [setup_form, use_setup_code, setup_done, forgot_form, forgot]
