"""create_app(settings) -> Litestar: the only place that wires settings, database, keys, views."""
from __future__ import annotations

import asyncio
import gc
import logging
import traceback
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar, Request, Response, Router
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from . import i18n
from .audit import service as audit
from .audit.checkpoints import signer_from, sweep, sweep_period
from .config import Settings
from .customers.rules import mask_mobile, mask_name
from .customers.service import NotFound
from .db import Database
from .observe import logs, metrics
from .policy import Action, PermissionDenied, may_perform
from .vault import KeyRing, Vault
from .views import (access, account, account_approvals, admin, api, audit_log, auth, complaints, customers,
                    exports, home, inbox, member_applications, member_service, membership, penalties,
                    programme, redemption, reminders, report_audit, report_monthly, reports, service_desk,
                    setup, terminals)
from .views import privacy as privacy_views
from .views import event_pages, events
from .views import catalogue, credit
from .views import coupons as coupon_views
from .views import messages
from .views import ops
from .views import purchase_form
from .views.code_words import credit_words, service_words
from .views.list_filters import FilterForm
from .views.member_forms import CardActions, ReturnForm, new_form_key
from .views.member_words import MemberRows, member_words
from .views.nav import NavBar
from .views.rendering import PageTemplate, base_context, format_datetime, is_htmx, template_gettext
from .views.security import (CsrfFailed, SecurityHeadersMiddleware, SessionMiddleware,
                             SecondStepOwed, SignInRequired, authorise_route, visitor)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
log = logging.getLogger("portal")


def _jinja_env(reload: bool = False) -> Environment:
    # `reload` (PORTAL_DEBUG=1): a template edited on disk is picked up at the next request. Off,
    # a page no longer stat()s each of its templates on every render (9 calls for a file page).
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True,
                      auto_reload=reload)
    env.template_class = PageTemplate
    env.install_gettext_callables(gettext=i18n.gettext, ngettext=i18n.ngettext, newstyle=True)
    env.globals["_"] = template_gettext  # the same as the alias above, without its three context calls
    env.filters["dt"] = format_datetime
    env.filters["mask_name"] = mask_name
    env.filters["mask_mobile"] = mask_mobile
    env.filters["yuan"] = membership.yuan  # fen -> "¥1,234.50"
    env.globals["discount"] = i18n.discount_text  # 950 -> "9.5折" / "5% off"
    env.filters["named"] = i18n.data_label  # a card type's or catalogue item's name, translated if known
    # A fresh key per rendered form: the same form sent twice is recognised (see redeem_points).
    env.globals["fresh_key"] = new_form_key
    env.globals["nav"] = NavBar(env)  # templates/_nav.html, cached per role, language and section
    env.globals["file_words"] = customers.file_words  # a file card's words, once per language
    env.globals["filter_form"] = FilterForm(env)  # customers/_filters.html, cached per language and state
    env.globals["member_words"] = member_words  # the membership codes in words, once per language
    env.globals["service_words"] = service_words  # member service's codes in words, once per language
    env.globals["credit_words"] = credit_words  # credit's codes in words, once per language
    env.globals["member_rows"] = MemberRows(env)  # the file page's history rows (membership/_rows.html)
    # A file page's closed membership forms, cached per language and state (per-request values filled in).
    env.globals["card_actions"] = CardActions(env)
    env.globals["return_form"] = ReturnForm(env)
    return env


def _error_page(request: Request, status: int, title: str, message: str, **extra) -> Template:
    try:
        ctx = base_context(request)
    except Exception:  # the failure happened before the session was resolved
        ctx = {"me": None, "actor": None, "csrf": "", "locale": i18n.current_locale.get(), "tz": "Asia/Shanghai", "path": ""}
    name = "errors/_message.html" if is_htmx(request) else "errors/error.html"
    return Template(template_name=name, context={**ctx, "status": status, "title": title,
                                                 "message": message, **extra}, status_code=status)


def _on_denied(request: Request, exc: PermissionDenied) -> Response:
    """A refusal is recorded (its own transaction, since the request's work is abandoned), then shown.

    Litestar calls exception handlers synchronously; this one short insert is the only I/O.
    """
    v = visitor(request)
    with request.app.state.db.write() as s:
        audit.record(s, v.actor, exc.action.value, audit.DENIED, object_type=exc.action.obj,
                     object_id=exc.object_id, reason=str(exc)[:200],
                     detail=f"{request.method} {request.url.path}")
    _ = i18n.gettext
    # Refused a colleague's file: offer the approval route instead.
    offer = (exc.object_id if exc.action.obj == "customer" and v.actor is not None
             and may_perform(v.actor, Action.ACCESS_REQUEST) and "," not in exc.object_id else "")
    return _error_page(request, 403, _("Access denied"),
                       _("You do not have access to this. The attempt has been recorded."),
                       request_file_no=offer)


def _on_signin(request: Request, exc: SignInRequired) -> Response:
    if request.headers.get("hx-request") == "true":
        return Response(content="", status_code=401, headers={"HX-Redirect": "/login"})
    nxt = request.url.path if request.method == "GET" else "/"
    return Redirect(path=f"/login?next={nxt}", status_code=303)


def _on_second_step(request: Request, exc: SecondStepOwed) -> Response:
    if request.headers.get("hx-request") == "true":
        return Response(content="", status_code=401, headers={"HX-Redirect": exc.path})
    return Redirect(path=exc.path, status_code=303)


def _on_csrf(request: Request, exc: CsrfFailed) -> Response:
    _ = i18n.gettext
    return _error_page(request, 403, _("Form expired"),
                       _("This form has expired or did not come from this site. Reload the page and try again."))


def _on_not_found(request: Request, exc: Exception) -> Response:
    _ = i18n.gettext
    return _error_page(request, 404, _("Not found"), _("There is nothing at this address."))


def _on_http(request: Request, exc: HTTPException) -> Response:
    if api.is_api_path(request.url.path):  # no route matched under /api/v1: still JSON
        return api.on_unrouted(request, exc)
    _ = i18n.gettext
    if exc.status_code == 404:
        return _on_not_found(request, exc)
    if exc.status_code == 405:
        return _error_page(request, 405, _("Not allowed"), _("This address does not accept that kind of request."))
    if exc.status_code >= 500:
        return _on_error(request, exc)
    return _error_page(request, exc.status_code, _("Bad request"), _("The request could not be understood."))


def _on_error(request: Request, exc: Exception) -> Response:
    if api.is_api_path(request.url.path):
        return api.on_unrouted(request, exc)
    # Log where it failed, not the exception's message: messages can carry submitted values.
    frames = traceback.extract_tb(exc.__traceback__)[-5:]
    log.error("unhandled %s at %s", type(exc).__name__,
              " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames)))
    _ = i18n.gettext
    return _error_page(request, 500, _("Something went wrong"),
                       _("The server could not complete this request. Nothing was changed."))


@asynccontextmanager
async def _checkpoint_sweep(app: Litestar):
    """While the server runs, sign the audit head whenever entries have waited
    PORTAL_AUDIT_CHECKPOINT_SECONDS for a checkpoint (every process sweeps; one signs)."""
    import anyio

    db, seconds = app.state.db, app.state.settings.audit_checkpoint_seconds

    async def run() -> None:
        while True:
            await asyncio.sleep(sweep_period(seconds))
            try:
                await anyio.to_thread.run_sync(sweep, db)
            except Exception as exc:  # noqa: BLE001 - try again next time; never stop serving
                log.warning("audit checkpoint sweep failed: %s", type(exc).__name__)

    task = asyncio.create_task(run()) if db.audit_signer is not None and seconds > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


def app_state(settings: Settings) -> dict:
    """What a request reads from `app.state`: the settings, the database and the vault."""
    ring = KeyRing.load_or_create(settings.key_file)
    db = Database(settings.database_url,
                  audit_signer=signer_from(ring, every=settings.audit_checkpoint_every,
                                           seconds=settings.audit_checkpoint_seconds))
    for engine in {db.engine, db.read_engine}:
        metrics.watch_pool(engine)
    return {"settings": settings, "db": db, "vault": Vault(ring)}


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    state = app_state(settings)
    db = state["db"]
    app = Litestar(
        route_handlers=[
            # One Router, so that Litestar (2.x) registers each path's handlers together: added
            # one by one, a sync_to_thread GET that shares its path with a POST is registered
            # twice, wrapped twice, and answers 500 (litestar-org/litestar#4738).
            Router(path="/", route_handlers=[*auth.ROUTES, *home.ROUTES, *customers.ROUTES, *audit_log.ROUTES,
                                             *admin.ROUTES, *access.ROUTES, *inbox.ROUTES,
                                             *account.ROUTES, *exports.ROUTES, *membership.ROUTES,
                                             *member_applications.ROUTES, *penalties.ROUTES,
                                             *programme.ROUTES, *redemption.ROUTES,
                                             *service_desk.ROUTES, *reminders.ROUTES,
                                             *terminals.ROUTES, *api.ROUTES,
                                             *setup.ROUTES, *account_approvals.ROUTES,
                                             *privacy_views.ROUTES,
                                             *complaints.ROUTES, *member_service.ROUTES,
                                             *reports.ROUTES, *report_monthly.ROUTES, *report_audit.ROUTES,
                                             *events.ROUTES, *event_pages.ROUTES,
                                             *catalogue.ROUTES, *credit.ROUTES,
                                             *messages.ROUTES,
                                             *ops.ROUTES, *coupon_views.ROUTES, *purchase_form.ROUTES],
                   include_in_schema=False),  # the OpenAPI document describes /api/v1 only
            create_static_files_router(path="/static", directories=[STATIC], opt={"public": True}),
        ],
        openapi_config=api.openapi_config(),  # served (public) at /api/v1/schema
        guards=[authorise_route],
        middleware=[SessionMiddleware],
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(_jinja_env(settings.debug))),
        state=State(state),
        exception_handlers={
            PermissionDenied: _on_denied,
            SignInRequired: _on_signin,
            SecondStepOwed: _on_second_step,
            CsrfFailed: _on_csrf,
            NotFound: _on_not_found,
            HTTPException: _on_http,
            Exception: _on_error,
        },
        lifespan=[_checkpoint_sweep],
        logging_config=None,  # the portal's own JSON lines (observe/logs.py), not Litestar's
        on_shutdown=[db.dispose, metrics.process_exits],
        debug=False,
    )
    # Security headers go around the whole app, not in the route middleware: that runs only for
    # matched routes, so 404 and 405 answers would go out without CSP or X-Frame-Options.
    app.asgi_handler = ops.RequestLogMiddleware(SecurityHeadersMiddleware(app.asgi_handler),
                                                trust_proxy=settings.trust_proxy)
    return app


def create_app_from_env() -> Litestar:
    """Factory for `uvicorn --factory` (several worker processes)."""
    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level)
    app = create_app(settings)
    # What the server has built so far (modules, routes, statements; ~200,000 objects) lives as
    # long as the process: out of the cycle collector's way, so that its full collections, which
    # run every few hundred requests, do not walk all of it again (about 100 ms of CPU each).
    gc.collect()
    gc.freeze()
    return app
