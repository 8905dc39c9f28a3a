"""Drive the app like a browser: sign in through the form, carry the CSRF token like the pages do."""
from __future__ import annotations

import re

from portal import clock
from portal.accounts import totp

from .factories import PASSWORD, totp_secret

CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "page has no CSRF token"
    return m.group(1)


def sign_in(client, username: str, password: str = PASSWORD):
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": password,
                                    "_csrf": csrf_of(page.text), "next": "/"},
                    follow_redirects=False)
    return r


def second_factor(client, username: str, location: str):
    """Answer the second-factor step with the current code (or the next one: a code already
    used in this time step is refused as a replay)."""
    page = client.get(location)
    for step_offset in (0, 1, -1):
        step = totp.step_of(clock.now()) + step_offset
        r = client.post("/login/totp", data={"code": totp.code_at(totp_secret(username), step),
                                             "_csrf": csrf_of(page.text), "next": "/"},
                        follow_redirects=False)
        if r.status_code == 303:
            return r
    raise AssertionError(f"second factor refused for {username}: {r.status_code}")


def signed_in(client, username: str):
    r = sign_in(client, username)
    assert r.status_code == 303, r.text[:500]
    if r.headers["location"].startswith("/login/totp"):
        second_factor(client, username, r.headers["location"])
    return client


def token(client, path: str = "/") -> str:
    """The CSRF token a page of the signed-in browser carries."""
    r = client.get(path)
    return csrf_of(r.text)


def post(client, path: str, data: dict | None = None, *, from_page: str = "/customers", **kw):
    data = dict(data or {})
    data.setdefault("_csrf", token(client, from_page))
    return client.post(path, data=data, follow_redirects=False, **kw)


def start_export(client, purpose: str = "quarterly gift mailing", *, from_page: str = "/exports", **kw):
    """Start a customer export as the exports page does: a POST with the CSRF token."""
    return post(client, "/customers/export.csv", {"purpose": purpose}, from_page=from_page, **kw)


def download_export(client, export_id: int, **kw):
    """The one download of an approved export: a POST from the exports page."""
    return post(client, f"/exports/{export_id}/download", from_page="/exports", **kw)
