"""Operations: the request log and metrics around every request, /metrics and /readyz.

/healthz (views/auth.py) says the process answers; /readyz says it can serve: the database
answers, its migrations are at the head and the key file is readable. /metrics is public to the
route guard but answers only a configured address or the bearer token (PORTAL_METRICS_ALLOW,
PORTAL_METRICS_TOKEN); otherwise 404, as if it did not exist.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import secrets
import time
from functools import lru_cache

import anyio
from litestar import Request, Response, get
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from ..observe import metrics

log = logging.getLogger("portal.request")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestLogMiddleware:
    """Outermost: one log line and the request metrics per HTTP request, 404s and errors included.

    Logged: request id (the proxy's X-Request-ID when the proxy is trusted, else a new one; sent
    back as X-Request-ID), user id, method, the route's template, status, duration. Never the
    address, query string, form, cookies or anything typed.
    """

    def __init__(self, app: ASGIApp, trust_proxy: bool):
        self.app = app
        self.trust_proxy = trust_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = ""
        if self.trust_proxy:
            for k, v in scope.get("headers", []):
                if k == b"x-request-id":
                    rid = v.decode("latin-1")
                    break
        if not _REQUEST_ID.match(rid):
            rid = secrets.token_hex(8)
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            path = scope.get("path", "")
            route = scope.get("path_template") or ("/static" if path.startswith("/static/") else "unmatched")
            if route.startswith("/static/"):
                route = "/static"
            method = scope.get("method", "")
            v = scope.get("state", {}).get("visitor") or state.get("visitor")
            user = getattr(v, "user", None)
            log.info("request", extra={"request_id": rid, "user_id": getattr(user, "id", None),
                                       "method": method, "route": route, "status": status,
                                       "duration_ms": round(elapsed * 1000, 1)})
            metrics.REQUESTS.labels(method, route, str(status)).inc()
            metrics.LATENCY.labels(method, route).observe(elapsed)


def metrics_allowed(request: Request) -> bool:
    settings = request.app.state.settings
    token = settings.metrics_token
    auth = request.headers.get("authorization", "")
    if token and auth.lower().startswith("bearer ") and \
            hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
        return True
    addr = request.scope.get("state", {}).get("visitor")
    addr = getattr(addr, "client_addr", "") or (request.client.host if request.client else "")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    for entry in settings.metrics_allow:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


@get("/metrics", opt={"public": True}, include_in_schema=False)
async def metrics_page(request: Request) -> Response:
    if not metrics_allowed(request):
        return Response(content="not found\n", status_code=404, media_type="text/plain")
    body, content_type = metrics.exposition()
    return Response(content=body, media_type=content_type)


@lru_cache(maxsize=1)
def _head_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    from ..migrate import alembic_config
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def readiness(db, key_file) -> dict[str, str]:
    """Each check's verdict: "ok" or a short reason (no secrets, no paths)."""
    from sqlalchemy import text

    out = {}
    try:
        with db.read() as s:
            s.execute(text("SELECT 1"))
            try:
                current = set(s.execute(text("SELECT version_num FROM alembic_version")).scalars())
            except Exception:  # noqa: BLE001 - no table: never migrated
                current = set()
        out["database"] = "ok"
        out["migrations"] = "ok" if current == set(_head_revisions()) else "not at the newest revision"
    except Exception as exc:  # noqa: BLE001
        out["database"] = f"unreachable ({type(exc).__name__})"
        out["migrations"] = "unknown"
    try:
        with open(key_file, "rb") as fh:
            out["key_file"] = "ok" if fh.read(1) else "empty"
    except OSError as exc:
        out["key_file"] = f"unreadable ({exc.strerror})"
    return out


@get("/readyz", opt={"public": True}, include_in_schema=False)
async def readyz(request: Request) -> Response:
    state = request.app.state
    checks = await anyio.to_thread.run_sync(readiness, state.db, state.settings.key_file)
    ready = all(v == "ok" for v in checks.values())
    return Response(content={"ready": ready, **checks}, status_code=200 if ready else 503,
                    media_type="application/json")


ROUTES = [metrics_page, readyz]
