"""Request plumbing every route goes through: security headers, the session, CSRF, the route guard.

Deny by default: a route must declare `opt={"action": Action.X}` (checked against the policy)
or `opt={"public": True}`; anything else is refused. A POS API route also declares `"api": True`:
it is reached with a terminal's API key instead of a session (see `authorise_api_call`).
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

import anyio
from litestar.connection import ASGIConnection, Request
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from .. import i18n
from ..accounts import sessions
from ..accounts.actor import Actor
from ..audit import service as audit
from ..policy import Action, PermissionDenied, may_perform
from ..pos import refusals, terminals

SESSION_COOKIE = "portal_session"
ANON_COOKIE = "portal_anon"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "_csrf"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; object-src 'none'")


class SignInRequired(Exception):
    """No live session: HTML requests go to /login, HTMX ones are told to redirect."""


class CsrfFailed(Exception):
    pass


class ApiKeyRefused(Exception):
    """A POS API call without a live terminal key (answered 401 JSON by the API's handlers, or
    429 with Retry-After once its address has had too many refusals this minute)."""

    def __init__(self, retry_after: int = 0):
        super().__init__("API key refused")
        self.retry_after = retry_after


class SecondStepOwed(Exception):
    """Signed in with a password, but a second factor is still to be given (or set up)."""

    def __init__(self, stage: str):
        super().__init__(stage)
        self.path = {"mfa": "/login/totp", "password": "/account/password"}.get(stage, "/account/2fa")


@dataclass
class Visitor:
    """What the session middleware learned about this request."""

    actor: Actor | None
    user: object | None
    session_token: str
    anon_token: str
    client_addr: str
    https: bool
    locale: str
    timezone: str
    unread: int = 0  # notices in the inbox not yet read
    stage: str = ""  # "" (no session), "full", or the step owed: "mfa" / "password" / "enrol"
    pending: Actor | None = None  # who is half-way through signing in (no access yet)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    """The Cookie header's name=value pairs (the last of a repeated name wins, as SimpleCookie's):
    a split, not SimpleCookie's regular-expression parser (40 µs on every request). The portal's
    own cookies are URL-safe tokens, never quoted; a quoted value is unquoted."""
    out = {}
    for part in headers.get("cookie", "").split(";"):
        name, sep, value = part.partition("=")
        name = name.strip()
        if sep and name:
            value = value.strip()
            if len(value) > 1 and value[0] == value[-1] == '"':
                value = value[1:-1]
            out[name] = value
    return out


def client_address(scope: Scope, headers: dict[str, str], trust_proxy: bool) -> str:
    if trust_proxy and headers.get("x-forwarded-for"):
        # The right-most entry is the one our own proxy appended.
        return headers["x-forwarded-for"].split(",")[-1].strip()[:64]
    client = scope.get("client")
    return (client[0] if client else "")[:64]


def is_https(scope: Scope, headers: dict[str, str], trust_proxy: bool) -> bool:
    if trust_proxy and headers.get("x-forwarded-proto"):
        return headers["x-forwarded-proto"].split(",")[0].strip() == "https"
    return scope.get("scheme") == "https"


def visitor(connection: ASGIConnection) -> Visitor:
    return connection.scope["state"]["visitor"]


def current_actor(connection: ASGIConnection) -> Actor:
    v = visitor(connection)
    if v.actor is None:
        raise SignInRequired()
    return v.actor


def csrf_token(v: Visitor, vault) -> str:
    """Bound to the session (or, before sign-in, to the anonymous cookie): a stolen token from
    another browser is worthless, and signing in changes it."""
    if v.session_token:
        return vault.sign("csrf", v.session_token)
    return vault.sign("csrf-anon", v.anon_token)


class SessionMiddleware:
    """Resolves the session cookie to a user on every request (rows shared by all processes)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith("/static/"):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        settings, db = state.settings, state.db
        headers = _headers(scope)
        addr = client_address(scope, headers, settings.trust_proxy)
        if is_api_route(scope.get("route_handler")):
            # A POS API call carries its terminal's key and nothing else: no session cookie is
            # read or set, so a browser's session can never act through the API.
            scope.setdefault("state", {})["visitor"] = Visitor(
                actor=None, user=None, session_token="", anon_token="", client_addr=addr,
                https=is_https(scope, headers, settings.trust_proxy), locale="en",
                timezone=settings.timezone)
            await self.app(scope, receive, send)
            return
        cookies = _cookies(headers)
        token = cookies.get(SESSION_COOKIE, "")

        limits = {"idle_minutes": settings.session_idle_minutes, "max_hours": settings.session_max_hours}

        def lookup():
            # Every request asks the database (one prebuilt statement: session, user, unit and
            # unread count): no cache, so a disabled user or an ended session is refused at once
            # by every process.
            return sessions.resolve(db.read_engine, token, **limits)

        def touch():
            with db.connect_write() as conn:
                sessions.touch(conn, token)

        live = None
        if token and len(token) <= 100:
            # SQLite: one primary-key read of a local file in WAL mode, which never waits for a
            # writer, costs less than the hop to a worker thread (about 0.1 ms of CPU), so it runs
            # here, on the process's own connection (never waiting for the pool). PostgreSQL's read
            # goes over a socket and may wait for a pooled connection: a worker thread, never the loop.
            reader = db.loop_reader()
            if reader is None:
                live = await anyio.to_thread.run_sync(lookup)
            else:
                try:
                    live = sessions.lookup_dbapi(reader, db.read_engine.dialect, token, **limits)
                except Exception:
                    db.drop_loop_reader()  # opened again by the next request
                    raise
            if live and live.touch:  # a write (now and then): may wait for the writer lock
                await anyio.to_thread.run_sync(touch)
        anon = cookies.get(ANON_COOKIE, "")
        new_anon = ""
        if not live and (not anon or len(anon) > 64):
            anon = new_anon = secrets.token_urlsafe(24)
        user = live.user if live else None
        who = live.actor(addr) if live else None
        # Only a full session acts; one that still owes a second factor reaches nothing else.
        actor = who if live and live.stage == "full" else None
        locale = i18n.negotiate(user.locale if user else cookies.get("portal_lang"),
                                headers.get("accept-language"), settings.default_locale)
        v = Visitor(actor=actor, user=user, session_token=token if live else "", anon_token=anon,
                    client_addr=addr, https=is_https(scope, headers, settings.trust_proxy),
                    locale=locale, timezone=(user.timezone if user and user.timezone else settings.timezone),
                    unread=live.unread if live else 0,
                    stage=live.stage if live else "", pending=who if actor is None else None)
        scope.setdefault("state", {})["visitor"] = v
        i18n.current_locale.set(locale)
        stale_cookie = bool(token) and not live

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = []
                if new_anon:
                    extra.append(cookie_header(ANON_COOKIE, new_anon, v.https))
                if stale_cookie and not scope["state"].get("session_set"):
                    extra.append(cookie_header(SESSION_COOKIE, "", v.https, max_age=0))
                if extra:
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_wrapper)


def cookie_header(name: str, value: str, secure: bool, max_age: int | None = None) -> tuple[bytes, bytes]:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return b"set-cookie", "; ".join(parts).encode("latin-1")


class SecurityHeadersMiddleware:
    """CSP without unsafe-inline/eval, no framing, nosniff, referrer policy; no-store on every
    dynamic response (pages may show personal data)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"cache-control", b"server")]
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                    (b"cache-control", b"public, max-age=3600" if static else b"no-store"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_wrapper)


def is_api_route(handler: BaseRouteHandler | None) -> bool:
    return handler is not None and handler.opt.get("api") is True


def presented_api_key(connection: ASGIConnection) -> str | None:
    """The key from ``Authorization: Bearer`` or ``X-API-Key``; None when the two headers carry
    different keys (one of them is not this terminal's: the call is refused, never decided by
    which header wins)."""
    auth = connection.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    bearer = value.strip() if scheme.lower() == "bearer" else ""
    header = connection.headers.get("x-api-key", "").strip()
    if bearer and "x-api-key" in connection.headers and not hmac.compare_digest(bearer.encode(), header.encode()):
        return None  # (an empty X-API-Key next to a Bearer key is a second, different key too)
    return bearer or header


async def authorise_api_call(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The guard for POS API routes: the terminal's key, then the policy's route gate.

    No CSRF check here, on purpose: CSRF rides on a credential the browser attaches by itself
    (the session cookie). The API ignores cookies altogether and accepts only a key the caller
    must put in a header, which a forged cross-site request cannot do. A refused key is
    audited (never the key itself: at most the id of the terminal whose prefix it matched); keys
    nobody holds are counted per address and minute (``portal.pos.refusals``).
    """
    v = connection.scope.get("state", {}).get("visitor")
    action = handler.opt.get("action")
    if v is None or not isinstance(action, Action):
        raise ApiKeyRefused()
    key = presented_api_key(connection)
    db = connection.app.state.db
    method, path = connection.scope.get("method", ""), connection.scope.get("path", "")
    limit = connection.app.state.settings.api_refusals_per_minute

    def check() -> tuple[terminals.KeyCheck, refusals.Verdict | None]:
        with db.write() as s:  # notes the terminal's use, or counts the refusal
            found = terminals.check_key(s, key, v.client_addr)
            verdict = None
            if found.actor is None:
                verdict = refusals.refuse(s, found.terminal_id, found.problem, v.client_addr, action.value,
                                          f"{method} {path}", limit)
            if refusals.has_ended(s):  # write out the refusal counts of minutes that are over
                refusals.close_ended(s)
            return found, verdict

    found, verdict = await anyio.to_thread.run_sync(check)
    if found.actor is None:
        raise ApiKeyRefused(retry_after=verdict.retry_after if verdict and verdict.throttled else 0)
    v.actor = found.actor
    if not may_perform(found.actor, action):
        raise PermissionDenied(action)


async def authorise_route(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The global guard: CSRF on unsafe methods, then sign-in, then the policy's route gate."""
    if is_api_route(handler):
        await authorise_api_call(connection, handler)
        return
    v = connection.scope.get("state", {}).get("visitor")
    if v is None:  # static files skip the session middleware; they are public and read-only
        if handler.opt.get("public") and connection.scope.get("method") not in UNSAFE:
            return
        raise SignInRequired()
    vault = connection.app.state.vault
    if connection.scope.get("method") in UNSAFE:
        sent = connection.headers.get(CSRF_HEADER, "")
        if not sent:
            form = await Request(connection.scope, connection.receive).form()
            sent = form.get(CSRF_FIELD, "") or ""
        if not hmac.compare_digest(str(sent), csrf_token(v, vault)):
            raise CsrfFailed()
    if handler.opt.get("public"):
        return
    action = handler.opt.get("action")
    if v.actor is None:
        if v.stage in ("mfa", "password", "enrol"):
            if v.stage in handler.opt.get("stages", ()):
                return
            raise SecondStepOwed(v.stage)
        raise SignInRequired()
    if not isinstance(action, Action):
        raise PermissionDenied(Action.ACCOUNT_SELF, message="route declares no action")
    if not may_perform(v.actor, action):
        raise PermissionDenied(action)
