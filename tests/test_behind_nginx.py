"""The production path: Debian's nginx with deploy/nginx/portal.conf (TLS, HSTS, static files)
in front of two `portal serve` processes (on PostgreSQL as the application role when the suite
runs there), driven over https like a browser.

Skipped only when nginx is not installed (`make test` installs it, as CI does).
"""
from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from .pg import PG_URL, create_database, drop_database, portal_setup_commands

ROOT = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else "")
PASSWORD = "nginx-journey-password-2026"
CLIENT = "127.0.0.5"  # the browser's address (Linux answers all of 127/8 on loopback)

pytestmark = pytest.mark.skipif(not NGINX, reason="nginx not installed (make test installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _self_signed(d: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vip.example.com")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2)).sign(key, hashes.SHA256()))
    crt, pem = d / "portal.crt", d / "portal.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def site_config(app_ports: list[int], http_port: int, https_port: int, crt: Path, key: Path) -> str:
    """deploy/nginx/portal.conf as shipped, with this machine's ports, certificate and checkout."""
    conf = (ROOT / "deploy" / "nginx" / "portal.conf").read_text()
    upstream = "".join(f"    server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;\n" for p in app_ports)
    conf, n = re.subn(r"(    server 127\.0\.0\.1:\d+ [^\n]*\n)+", upstream, conf)
    assert n == 1
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    conf = conf.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    conf = re.sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", conf)
    conf = conf.replace("/etc/ssl/certs/portal.crt", str(crt)).replace("/etc/ssl/private/portal.key", str(key))
    conf = conf.replace("alias /opt/portal/static/;", f"alias {ROOT / 'static'}/;")
    return conf


def nginx_config(d: Path, site: Path) -> str:
    temp = "".join(f"    {k}_temp_path {d / k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return (f"{user}daemon off;\nworker_processes 1;\npid {d / 'nginx.pid'};\nerror_log {d / 'error.log'} warn;\n"
            f"events {{ worker_connections 128; }}\n"
            f"http {{\n    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n"
            f"{temp}    include {site};\n}}\n")


def _wait(url: str, proc: subprocess.Popen, log: Path, **kw) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(url, timeout=2, **kw).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer:\n{log.read_text(errors='replace')[-3000:]}", pytrace=False)
        time.sleep(0.2)


@pytest.fixture(scope="module")
def site():
    d = Path(tempfile.mkdtemp(prefix="portal-nginx-"))
    os.chmod(d, 0o755)
    database_url = create_database("portal_nginx") if PG_URL else f"sqlite:///{d / 'portal.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "PROMETHEUS_"))}
    env.update({"PORTAL_DATABASE_URL": database_url, "PORTAL_KEY_FILE": str(d / "keys.json"),
                "PORTAL_DEMO_PASSWORD": PASSWORD, "PORTAL_TRUST_PROXY": "1", "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])})
    portal = [sys.executable, "-m", "portal.cli"]
    procs: list[subprocess.Popen] = []
    try:
        for extra, args in [*portal_setup_commands(database_url), ({}, ["demo"])]:
            r = subprocess.run([*portal, *args], env={**env, **extra}, capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stdout + r.stderr
        app_ports = [_free_port(), _free_port()]
        logs = []
        for port in app_ports:
            log = d / f"app-{port}.log"
            logs.append(log)
            with log.open("w") as fh:
                procs.append(subprocess.Popen([*portal, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                              env=env, stdout=fh, stderr=subprocess.STDOUT))
        for port, proc, log in zip(app_ports, procs, logs):
            _wait(f"http://127.0.0.1:{port}/healthz", proc, log)
        crt, key = _self_signed(d)
        http_port, https_port = _free_port(), _free_port()
        (d / "site.conf").write_text(site_config(app_ports, http_port, https_port, crt, key))
        (d / "nginx.conf").write_text(nginx_config(d, d / "site.conf"))
        test = subprocess.run([NGINX, "-t", "-c", str(d / "nginx.conf"), "-p", str(d), "-e", str(d / "error.log")],
                              capture_output=True, text=True)
        assert test.returncode == 0, test.stderr
        procs.append(subprocess.Popen([NGINX, "-c", str(d / "nginx.conf"), "-p", str(d), "-e", str(d / "error.log")]))
        base = f"https://127.0.0.1:{https_port}"
        _wait(f"{base}/healthz", procs[-1], d / "error.log", verify=False)
        yield {"base": base, "http": f"http://127.0.0.1:{http_port}", "db": database_url, "logs": logs}
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if PG_URL:
            drop_database(database_url)
        shutil.rmtree(d, ignore_errors=True)


def _csrf(html: str) -> str:
    m = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def test_a_journey_through_nginx(site):
    base = site["base"]
    transport = httpx.HTTPTransport(local_address=CLIENT, verify=False)
    # A forged entry in front: only the one nginx appends (the real address) may count.
    with httpx.Client(base_url=base, transport=transport, follow_redirects=False, timeout=30,
                      headers={"X-Forwarded-For": "203.0.113.66"}) as c:
        # Plain http is sent to https; https answers carry HSTS.
        assert httpx.get(f"{site['http']}/login").status_code == 301
        page = c.get("/login")
        assert page.status_code == 200 and "max-age=63072000" in page.headers["strict-transport-security"]
        assert all("Secure" in v for v in page.headers.get_list("set-cookie"))
        r = c.post("/login", data={"username": "alice", "password": PASSWORD, "_csrf": _csrf(page.text), "next": "/"})
        assert r.status_code == 303, r.text[:300]
        session = [v for v in r.headers.get_list("set-cookie") if v.startswith("portal_session=")]
        assert session and "Secure" in session[0] and "HttpOnly" in session[0]
        # A CSRF-protected form: refused without its token, answered with it.
        assert c.post("/customers/search", data={"q": "王"}).status_code == 403
        listing = c.get("/customers")
        assert listing.status_code == 200
        assert c.post("/customers/search", data={"q": "王", "_csrf": _csrf(listing.text)}).status_code == 200
        file_id = re.search(r'href="/customers/([0-9a-f-]{36})"', listing.text).group(1)
        assert c.get(f"/customers/{file_id}").status_code == 200
        # Static files come from nginx itself: cached, and without the app's headers.
        css = c.get("/static/app.css")
        assert css.status_code == 200 and css.headers["cache-control"] == "public, max-age=3600"
        assert "content-security-policy" not in css.headers and "x-request-id" not in css.headers
        assert css.text == (ROOT / "static" / "app.css").read_text()
        for path in ("/metrics", "/metrics/", "/metrics?x=1"):  # never through the proxy
            assert c.get(path).status_code == 404, path
    eng = create_engine(site["db"], poolclass=NullPool)
    with eng.connect() as conn:
        addr = conn.execute(text("SELECT client_addr FROM audit_event WHERE action = 'customer.view' "
                                 "AND actor_username = 'alice' ORDER BY seq DESC LIMIT 1")).scalar()
    eng.dispose()
    assert addr == CLIENT
    # Both app processes answered some of it (nginx spreads the requests), and logged no password.
    for log in site["logs"]:
        content = log.read_text()
        assert '"logger":"portal.request"' in content, log.name
        assert PASSWORD not in content
