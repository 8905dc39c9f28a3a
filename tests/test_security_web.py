"""Web hardening: CSRF, security headers, cookies, error pages, escaping, CSV injection,
deny-by-default routes and the sign-in redirect."""
from __future__ import annotations

import csv
import io
import re

import pytest
from litestar import get
from litestar.testing import TestClient
from sqlalchemy import func, select

from portal.customers import listing as customers_listing
from portal.customers.models import CustomerFile
from portal.policy import Action

from .browser import csrf_of, post, sign_in, signed_in, token
from .factories import PASSWORD, valid_id

NEW_FILE = {"name": "赵六", "gender": "F", "mobile": "13912340001", "category": "individual"}


def file_count(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(CustomerFile))


# ---------------------------------------------------------------- CSRF

def test_a_post_without_a_csrf_token_is_refused_and_changes_nothing(client, db, story):
    signed_in(client, "alice")
    before = file_count(db)
    r = client.post("/customers/new", data=NEW_FILE, follow_redirects=False)
    assert r.status_code == 403
    assert file_count(db) == before


def test_a_post_with_a_wrong_csrf_token_is_refused(client, db, story):
    signed_in(client, "alice")
    before = file_count(db)
    r = client.post("/customers/new", data={**NEW_FILE, "_csrf": "0" * 64}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/customers/new", data=NEW_FILE, headers={"X-CSRF-Token": "forged"},
                    follow_redirects=False)
    assert r.status_code == 403
    assert file_count(db) == before


def test_a_csrf_token_from_another_session_is_refused(app, client, db, story):
    signed_in(client, "alice")
    with TestClient(app=app, base_url="http://testserver.local") as other:
        signed_in(other, "alice")  # the same user, in another browser
        theirs = token(other, "/customers")
    mine = token(client, "/customers")
    assert theirs != mine
    before = file_count(db)
    r = client.post("/customers/new", data={**NEW_FILE, "_csrf": theirs}, follow_redirects=False)
    assert r.status_code == 403
    assert file_count(db) == before
    r = client.post("/customers/new", data={**NEW_FILE, "_csrf": mine}, follow_redirects=False)
    assert r.status_code == 303
    assert file_count(db) == before + 1


def test_the_token_from_before_sign_in_stops_working_after_it(client, db, story):
    anon_token = csrf_of(client.get("/login").text)
    signed_in(client, "alice")
    r = client.post("/customers/new", data={**NEW_FILE, "_csrf": anon_token}, follow_redirects=False)
    assert r.status_code == 403


def test_a_login_post_without_a_token_is_refused(client, db, story):
    r = client.post("/login", data={"username": "alice", "password": PASSWORD},
                    follow_redirects=False)
    assert r.status_code == 403
    assert "portal_session" not in r.headers.get("set-cookie", "")


def test_htmx_requests_may_carry_the_token_in_the_x_csrf_token_header(client, db, story):
    signed_in(client, "alice")
    page = client.get("/customers").text
    header_token = re.search(r'hx-headers=\'\{"X-CSRF-Token": "([^"]+)"\}\'', page).group(1)
    r = client.post("/customers/search", data={"q": "13800130000"},
                    headers={"X-CSRF-Token": header_token, "HX-Request": "true"})
    assert r.status_code == 200
    assert "<html" not in r.text
    assert "755 00001" in r.text


# ---------------------------------------------------------------- headers and cookies

def _assert_hardened(r) -> None:
    csp = r.headers["content-security-policy"]
    assert "'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"]


@pytest.mark.parametrize("path", ["/login", "/healthz", "/no-such-page"])
def test_every_page_carries_the_security_headers(client, story, path):
    _assert_hardened(client.get(path))


def test_customer_pages_are_never_cached(client, story):
    signed_in(client, "alice")
    fid = story.files["alice"][0]
    for path in ("/customers", f"/customers/{fid}", f"/customers/{fid}/fields/mobile", "/exports"):
        r = client.get(path)
        assert r.status_code == 200, path
        _assert_hardened(r)
        assert "no-store" in r.headers["cache-control"], path
    r = post(client, "/customers/export.csv", {"purpose": "test"})  # the CSV itself
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    _assert_hardened(r)
    assert "no-store" in r.headers["cache-control"]


def test_pages_have_no_inline_script(client, story):
    signed_in(client, "alice")
    for path in ("/customers", f"/customers/{story.files['alice'][0]}", "/customers/new"):
        html = client.get(path).text
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, tag
        assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"


def _set_cookies(r) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in r.headers.get_list("set-cookie")}


def test_cookies_are_httponly_and_samesite(client, story):
    anon = _set_cookies(client.get("/login"))
    signed = _set_cookies(sign_in(client, "alice"))
    for header in (anon["portal_anon"], signed["portal_session"]):
        lowered = header.lower()
        assert "httponly" in lowered
        assert "samesite=lax" in lowered or "samesite=strict" in lowered
        assert "secure" not in lowered  # plain http: a Secure cookie would never come back


def test_cookies_are_secure_over_https(app, story):
    with TestClient(app=app, base_url="https://testserver.local") as c:
        anon = _set_cookies(c.get("/login"))
        r = sign_in(c, "alice")
        assert r.status_code == 303
        signed = _set_cookies(r)
        for header in (anon["portal_anon"], signed["portal_session"]):
            assert "secure" in header.lower()
            assert "httponly" in header.lower()
        assert c.get("/customers").status_code == 200  # and the browser still sends it back


# ---------------------------------------------------------------- error pages

def _assert_plain_error(r, status: int) -> None:
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    for leak in ("Traceback", "File \"", ".py", "litestar", "sqlalchemy", "Exception"):
        assert leak not in r.text, leak


def test_an_unknown_address_gives_a_plain_404_page(client, story):
    _assert_plain_error(client.get("/no/such/page"), 404)
    signed_in(client, "alice")
    _assert_plain_error(client.get("/no/such/page"), 404)
    _assert_plain_error(client.get("/customers/00000000-0000-0000-0000-000000000000"), 404)


def test_a_wrong_method_gives_a_plain_405_page(client, story):
    _assert_plain_error(client.get("/customers/search"), 405)
    signed_in(client, "alice")
    _assert_plain_error(client.put("/customers/search"), 405)


def test_a_server_error_leaks_no_traceback(client, story, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database exploded near 13800130000 in /srv/portal/secret.py")

    monkeypatch.setattr(customers_listing, "read_page", broken)
    signed_in(client, "alice")
    r = client.get("/customers")
    _assert_plain_error(r, 500)
    assert "13800130000" not in r.text and "exploded" not in r.text and "RuntimeError" not in r.text
    r = client.get("/customers", headers={"HX-Request": "true"})
    _assert_plain_error(r, 500)
    assert "<html" not in r.text


# ---------------------------------------------------------------- output

def test_personal_fields_are_escaped_when_shown(client, db, story):
    signed_in(client, "alice")
    r = post(client, "/customers/new", {**NEW_FILE, "name": "<b>Bold</b> 王",
                                        "notes": "<script>alert(1)</script>",
                                        "address": '"><img src=x onerror=alert(2)>'})
    assert r.status_code == 303, r.text[:500]
    page = client.get(r.headers["location"]).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<b>Bold</b>" not in page and "&lt;b&gt;Bold&lt;/b&gt;" in page


def test_exported_cells_cannot_be_spreadsheet_formulas(client, db, story):
    signed_in(client, "alice")
    r = post(client, "/customers/new", {
        **NEW_FILE, "name": "=1+1", "employer": '=HYPERLINK("http://evil.example","x")',
        "position": "+SUM(1,2)", "address": "-2+3", "notes": "@cmd|' /C calc'!A0"})
    assert r.status_code == 303, r.text[:500]
    body = post(client, "/customers/export.csv", {"purpose": "security test"}).content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    (row,) = [row for row in rows if row["mobile"] == NEW_FILE["mobile"]]
    assert row["name"] == "'=1+1"
    assert row["employer"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["position"] == "'+SUM(1,2)"
    assert row["address"] == "'-2+3"
    assert row["notes"].startswith("'@")
    for r_ in rows:
        for value in r_.values():
            assert not value or value[0] not in "=+-@\t\r", value


# ---------------------------------------------------------------- deny by default

def test_every_route_declares_an_action_or_is_public(app):
    public = []
    for route in app.routes:
        for handler in route.route_handlers:
            if handler.http_methods == {"OPTIONS"}:
                continue  # Litestar's automatic OPTIONS answer; the guard denies it too
            opt = handler.opt
            # A route for a half-signed-in session (second factor owed) names that stage instead.
            assert (opt.get("public") is True or isinstance(opt.get("action"), Action)
                    or set(opt.get("stages", ())) == {"mfa"}), \
                f"{route.path} {sorted(handler.http_methods)} declares neither an action nor public"
            if opt.get("public"):
                public.append(route.path)
    for path in public:
        assert not path.startswith(("/customers", "/audit", "/admin")), path


def test_a_route_that_declares_nothing_is_denied(app, client, story):
    @get("/undeclared-probe")
    async def undeclared() -> str:
        return "secret customer data"

    @get("/mistyped-probe", opt={"action": "customer.view"})
    async def mistyped() -> str:  # a string, not an Action: still denied
        return "secret customer data"

    app.register(undeclared)
    app.register(mistyped)
    r = client.get("/undeclared-probe", follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
    signed_in(client, "alice")
    for path in ("/undeclared-probe", "/mistyped-probe"):
        r = client.get(path)
        assert r.status_code == 403
        assert "secret customer data" not in r.text


def test_there_is_no_api_schema_to_browse(client, story):
    signed_in(client, "erin")
    for path in ("/schema", "/schema/openapi.json", "/schema/swagger"):
        assert client.get(path).status_code in (403, 404)


# ---------------------------------------------------------------- redirects

@pytest.mark.parametrize("nxt", ["//evil.example", "//evil.example/customers", "https://evil.example",
                                 "/\\evil.example", "\\\\evil.example", "javascript:alert(1)",
                                 "http:/evil.example"])
def test_sign_in_never_redirects_to_another_site(client, story, nxt):
    page = client.get("/login", params={"next": nxt}).text
    assert "evil.example" not in page
    r = client.post("/login", data={"username": "alice", "password": PASSWORD, "next": nxt,
                                    "_csrf": csrf_of(page)}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/"


def test_sign_in_returns_to_the_page_asked_for(client, story):
    r = client.get("/customers/new", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/customers/new"
    page = client.get(r.headers["location"]).text
    r = client.post("/login", data={"username": "alice", "password": PASSWORD,
                                    "next": "/customers/new", "_csrf": csrf_of(page)},
                    follow_redirects=False)
    assert r.headers["location"] == "/customers/new"


def test_id_number_input_is_not_echoed_into_urls(client, story):
    # Search is a POST so that an ID number never ends up in a URL or an access log.
    signed_in(client, "alice")
    r = post(client, "/customers/search", {"q": valid_id(seq="000")})
    assert r.status_code == 200
    assert valid_id(seq="000") not in r.headers.get("location", "")


def test_the_cookie_header_is_read_like_simplecookie_reads_it():
    """The session middleware's own split of the Cookie header gives what SimpleCookie gave for
    the portal's cookies (a repeated name: the last wins; a quoted value unquoted), and a part it
    cannot read (another site's cookie on the same host) is skipped, where SimpleCookie dropped
    the whole header and with it the session."""
    from http.cookies import SimpleCookie

    from portal.views.security import _cookies

    header = 'portal_lang=zh-CN; portal_session=Ab_1-x; portal_anon="q-2"; portal_lang=en'
    jar = SimpleCookie()
    jar.load(header)
    assert _cookies({"cookie": header}) == {k: m.value for k, m in jar.items()}
    assert _cookies({"cookie": header}) == {"portal_lang": "en", "portal_session": "Ab_1-x", "portal_anon": "q-2"}
    assert _cookies({"cookie": "junk; =empty; " + header})["portal_session"] == "Ab_1-x"
    assert _cookies({}) == {}
