"""Browser-test harness: a real `portal serve` on a throw-away database, Debian's chromium,
console/CSP capture, a screenshot per flow and one more when a test fails.

Database: a SQLite file in a temp dir, or (when PORTAL_TEST_DATABASE_URL is set, e.g. under
`scripts/with-postgres`) a fresh database created on that PostgreSQL server and dropped at the end.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

E2E_DIR = Path(__file__).resolve().parent
ARTIFACTS = E2E_DIR / "artifacts"
PASSWORD = "vip-demo-2026!"
PG_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
STARTUP_TIMEOUT = 30.0

# Page-level timeouts: fail fast instead of waiting 30 s on a missing element.
ACTION_TIMEOUT_MS = 10_000
expect.set_options(timeout=5_000)


# ---------------------------------------------------------------- the server

@dataclass
class Server:
    url: str
    database_url: str
    key_file: Path
    log: Path
    workdir: Path

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _portal_cmd() -> list[str]:
    # `python -m portal.cli` runs the source tree's command even where no console script
    # was installed.
    return [sys.executable, "-m", "portal.cli"]


def _pg_admin_engine(url: str = ""):
    """The owner role on the `postgres` database (see tests/pg.py)."""
    from tests.pg import admin_engine

    return admin_engine()


def _run(cmd: list[str], env: dict, cwd: Path, log: Path) -> None:
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd[1:])}\n{r.stdout}{r.stderr}\n")
    if r.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}", pytrace=False)


@pytest.fixture(scope="session")
def server() -> Server:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    workdir = Path(tempfile.mkdtemp(prefix="portal-e2e-"))
    log = workdir / "server.log"
    pg_name = ""
    if PG_URL:
        pg_name = f"portal_e2e_{uuid.uuid4().hex[:10]}"
        admin = _pg_admin_engine(PG_URL)
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{pg_name}"'))
        admin.dispose()
        database_url = make_url(PG_URL).set(database=pg_name).render_as_string(hide_password=False)
    else:
        database_url = f"sqlite:///{workdir / 'portal.db'}"
    key_file = workdir / "keys.json"

    # Inherited PORTAL_* settings (page size, locale, *_FILE indirections...) would make the
    # run depend on the shell it was started from.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update({
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_KEY_FILE": str(key_file),
        "PORTAL_DEMO_PASSWORD": PASSWORD,
        "PORTAL_PAGE_SIZE": "50",
        "PYTHONUNBUFFERED": "1",
    })
    cmd = _portal_cmd()
    proc = None
    try:
        from tests.pg import portal_setup_commands
        for extra, args in portal_setup_commands(database_url):  # as the owner, as in production
            _run([*cmd, *args], {**env, **extra}, workdir, log)
        _run([*cmd, "demo"], env, workdir, log)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        logfh = log.open("a")
        proc = subprocess.Popen([*cmd, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, cwd=workdir, stdout=logfh, stderr=subprocess.STDOUT)
        logfh.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                text_ = log.read_text(errors="replace")
                print(text_)
                pytest.fail(f"portal serve did not answer /healthz within {STARTUP_TIMEOUT:.0f} s "
                            f"(exit code {proc.poll()}); log:\n{text_}", pytrace=False)
            time.sleep(0.1)
        yield Server(url=url, database_url=database_url, key_file=key_file, log=log, workdir=workdir)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if pg_name:
            admin = _pg_admin_engine(PG_URL)
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- pytest-playwright overrides

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": ["--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args, server):
    # Per test: @pytest.mark.browser_context_args(locale="en-US") overrides the locale.
    return {**browser_context_args, "base_url": server.url, "locale": "zh-CN",
            "viewport": {"width": 1280, "height": 900}}


# ---------------------------------------------------------------- console, CSP, failure shots

# Chromium logs CSP violations to the console by itself; this listener (injected by the
# browser, so not subject to the page's CSP) makes sure each one also names the policy.
_CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (e) => {
  console.error('Content Security Policy violation: ' + e.violatedDirective + ' blocked ' +
                (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber);
});
"""


@dataclass
class BrowserLog:
    console: list[tuple[str, str, str]] = field(default_factory=list)  # (type, text, page url)
    page_errors: list[str] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return [f"{url}: {text}" for _t, text, url in self.console
                if "content security policy" in text.lower()]

    def errors(self) -> list[str]:
        return [f"{url}: {text}" for t, text, url in self.console if t == "error"]


@pytest.fixture
def browser_log() -> BrowserLog:
    return BrowserLog()


@pytest.fixture
def new_context(new_context, browser_log):
    """pytest-playwright's factory, plus console capture and the CSP listener on every context."""

    def factory(**kwargs) -> BrowserContext:
        ctx = new_context(**kwargs)
        ctx.set_default_timeout(ACTION_TIMEOUT_MS)
        ctx.add_init_script(_CSP_LISTENER)
        ctx.on("console", lambda m: browser_log.console.append((m.type, m.text, m.page.url if m.page else "")))
        ctx.on("weberror", lambda e: browser_log.page_errors.append(str(e.error)))
        ctx.on("page", lambda p: browser_log.pages.append(p))
        return ctx

    return factory


@pytest.fixture(scope="session", autouse=True)
def _fresh_artifacts():
    """Failure shots of an earlier run would mislead: start each run without them (under
    pytest-xdist only the first worker clears them, so no worker deletes another's)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") != "gw0":
        return
    for old in ARTIFACTS.glob("FAILED-*.png"):
        old.unlink()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"e2e_rep_{rep.when}", rep)
    srv = getattr(item, "funcargs", {}).get("server")
    if rep.failed and rep.when == "call" and isinstance(srv, Server):
        # The server's side of a failure: its last lines that are not a plain 200 (errors,
        # tracebacks), and the slowest requests it logged.
        rep.sections.append(("portal server log", _server_log_tail(srv.log)))


def _server_log_tail(log: Path, n: int = 40) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    odd = [ln for ln in lines if not re.search(r'"status": ?200\b', ln)]
    timed = []
    for ln in lines:
        m = re.search(r'"duration_ms": ?([0-9.]+)', ln)
        if m:
            timed.append((float(m.group(1)), ln))
    slow = [ln for _ms, ln in sorted(timed, reverse=True)[:5]]
    return "\n".join(["-- not 200:", *odd[-n:], "-- slowest:", *slow])


@pytest.fixture(autouse=True)
def _e2e_guard(request, new_context, browser_log):
    """After each test: a FAILED-<test>.png when it failed; a CSP violation fails the test."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield
    failed = any(getattr(getattr(request.node, f"e2e_rep_{w}", None), "failed", False)
                 for w in ("setup", "call"))
    if failed:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        open_pages = [p for p in browser_log.pages if not p.is_closed()]
        for i, p in enumerate(open_pages):
            suffix = "" if i == 0 else f"-{i + 1}"
            try:
                p.screenshot(path=str(ARTIFACTS / f"FAILED-{name}{suffix}.png"), full_page=True)
            except Exception as exc:  # the page may be gone; the test's own error matters more
                print(f"could not screenshot {p.url}: {exc}")
        return
    violations = browser_log.csp_violations()
    if violations:
        pytest.fail("Content Security Policy violations:\n" + "\n".join(violations), pytrace=False)


# ---------------------------------------------------------------- helpers the flows share

def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# The second factor. The demo enrols nobody: leaders, auditors and admins set it up at their
# first sign-in of the run (read the key off /account/2fa, as a person would type it into an
# app). The secret and the last time step used are remembered for the rest of the session.
TOTP_SECRETS: dict[str, str] = {}
_LAST_STEP: dict[str, int] = {}


def _now_step() -> int:
    from datetime import datetime, timezone

    from portal.accounts import totp

    return totp.step_of(datetime.now(timezone.utc))


def next_code(username: str) -> str:
    """A code the server accepts now: the current step's, or (when that one was used already
    and would be refused as a replay) the next step's, which the ±1-step window accepts.
    Waits for a new step only when both are used up."""
    from portal.accounts import totp

    secret = TOTP_SECRETS[username]
    while True:
        now = _now_step()
        step = max(now, _LAST_STEP.get(username, now - 1) + 1)
        if step <= now + 1:
            break
        time.sleep(1)
    _LAST_STEP[username] = step
    return totp.code_at(secret, step)


def _path(page: Page) -> str:
    from urllib.parse import urlsplit

    return urlsplit(page.url).path


def enrol(page: Page, username: str) -> list[str]:
    """On /account/2fa (a first sign-in that must set up a second factor, or an opt-in): read the
    key, answer with the current code, and return the ten recovery codes shown once."""
    from portal.accounts import totp

    expect(page).to_have_url(re.compile(r"/account/2fa$"))
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    step = _now_step()
    form = page.locator("form[action='/account/2fa']")
    form.locator("input[name=code]").fill(totp.code_at(secret, step))
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    codes = page.get_by_test_id("recovery-codes").locator("li")
    expect(codes).to_have_count(10)
    TOTP_SECRETS[username] = secret
    _LAST_STEP[username] = step
    return [c.strip() for c in codes.all_inner_texts()]


def answer_second_factor(page: Page, username: str) -> None:
    """On /login/totp: give a fresh code (one retry with the next step if the server saw this
    step's code already, e.g. from a sign-in in another browser a moment ago)."""
    if username not in TOTP_SECRETS:
        pytest.fail(f"{username} has a second factor this run did not set up: no secret to answer with",
                    pytrace=False)
    for _attempt in range(2):
        form = page.locator("form[action='/login/totp']")
        form.locator("input[name=code]").fill(next_code(username))
        with page.expect_navigation():
            form.locator("button[type=submit]").click()
        if _path(page) != "/login/totp":
            return
    pytest.fail(f"the second factor was refused for {username}", pytrace=False)


def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    with page.expect_navigation():
        page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_load_state()
    if _path(page) == "/account/2fa":
        # Leaders, auditors and admins must set up a second factor before anything else.
        enrol(page, username)
        with page.expect_navigation():
            page.locator("main a.button[href='/']").click()  # "Continue"
    elif _path(page) == "/login/totp":
        answer_second_factor(page, username)
    # Signed in: the top bar names the user, and the login form is gone.
    expect(page.get_by_test_id("who")).to_be_visible()
    expect(page).not_to_have_url(re.compile(r"/login"))
    page.wait_for_load_state()  # htmx (a deferred script) has wired up the page


def htmx_ready(page: Page) -> None:
    """Wait until the page is loaded and htmx has processed it (clicking earlier does nothing)."""
    page.wait_for_load_state()
    page.wait_for_function("() => window.htmx !== undefined && document.readyState === 'complete'")


def sign_out(page: Page) -> None:
    page.locator("form[action='/logout'] button").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def mark_document(page: Page) -> None:
    """Tag the current document; `assert_same_document` proves no full page load happened since."""
    page.evaluate("window.__e2eMarker = 'still-here'")


def assert_same_document(page: Page) -> None:
    assert page.evaluate("window.__e2eMarker") == "still-here", "a full page load happened"


@dataclass
class NewCustomer:
    name: str
    gender: str
    mobile: str
    id_number: str
    category: str
    address: str
    file_no: str = ""
    url: str = ""

    @property
    def masked_mobile(self) -> str:
        return f"{self.mobile[:3]}****{self.mobile[-4:]}"


# Every customer a test creates (personal data the audit pages must never show).
CREATED: list[NewCustomer] = []

_GIVEN = "安柏晨丹恩芳光海慧佳俊凯岚明宁琪瑞尚涛文心雅逸泽之"


def new_customer_data(rnd: random.Random | None = None) -> NewCustomer:
    from portal.customers.rules import id_check_char

    rnd = rnd or random.Random()
    born = date(1960, 1, 1) + timedelta(days=rnd.randrange(365 * 39))
    seq = rnd.randrange(1000)
    first17 = f"440305{born:%Y%m%d}{seq:03d}"
    id_number = first17 + id_check_char(first17)
    gender = "M" if seq % 2 else "F"
    return NewCustomer(
        name="测" + rnd.choice(_GIVEN) + rnd.choice(_GIVEN),
        gender=gender,
        mobile="139" + f"{rnd.randrange(10 ** 8):08d}",
        id_number=id_number,
        category="enterprise",
        address=f"深圳市南山区测试路{rnd.randrange(1, 999)}号{rnd.randrange(100, 999)}室",
    )


def create_customer(page: Page, c: NewCustomer | None = None) -> NewCustomer:
    """Fill /customers/new as the signed-in salesperson; ends on the new file's page."""
    c = c or new_customer_data()
    page.goto("/customers/new")
    form = page.locator("form[action='/customers/new']")
    form.locator("input[name=name]").fill(c.name)
    form.locator("select[name=gender]").select_option(c.gender)
    form.locator("input[name=mobile]").fill(c.mobile)
    form.locator("input[name=id_number]").fill(c.id_number)
    form.locator("select[name=category]").select_option(c.category)
    form.locator("input[name=address]").fill(c.address)
    CREATED.append(c)
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/customers/[0-9a-f-]{36}$"))
    expect(page.get_by_test_id("file-card")).to_be_visible()
    htmx_ready(page)
    c.url = page.url
    c.file_no = page.locator(".file-no").inner_text().strip()
    return c


def first_file_of(server: Server, username: str) -> tuple[str, str]:
    """(id, file_no) of one customer file owned by `username`, read straight from the database."""
    from sqlalchemy import select

    from portal.accounts.models import User
    from portal.customers.models import CustomerFile
    from portal.db import Database

    db = Database(server.database_url)
    try:
        with db.read() as s:
            row = s.execute(select(CustomerFile.id, CustomerFile.file_no)
                            .join(User, User.id == CustomerFile.owner_id)
                            .where(User.username == username)
                            .order_by(CustomerFile.file_no).limit(1)).one()
        return str(row.id), row.file_no
    finally:
        db.dispose()


def zh_catalog_ready(msgid: str = "Customer files") -> bool:
    """Whether the zh_CN catalog (written by someone else) translates `msgid` yet."""
    po = Path(__import__("portal").__file__).parent / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return False
    from babel.messages.pofile import read_po

    with po.open("rb") as fh:
        cat = read_po(fh, locale="zh_CN")
    msg = cat.get(msgid)
    return bool(msg and msg.string and not msg.fuzzy)


def confirm(page: Page, *, go: bool = True) -> None:
    """Answer the question an irreversible step asks (static/confirm.js): Confirm, or Go back."""
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_test_id("confirm-ok" if go else "confirm-cancel").click()
    expect(dialog).to_be_hidden()


def nav_to(page: Page, href: str) -> None:
    """Follow a link of the navigation, opening its group menu (or the phone's Menu) first."""
    link = page.locator(f"header nav a[href='{href}']")
    toggle = page.get_by_test_id("menu-toggle")
    if toggle.is_visible():
        toggle.click()
    group = page.locator("header details.navgroup").filter(has=page.locator(f"a[href='{href}']"))
    if group.count() and not group.first.evaluate("d => d.open"):
        group.first.locator("summary").click()
    link.click()
