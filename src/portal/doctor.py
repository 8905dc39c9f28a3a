"""`portal doctor`: what is wrong or risky in a deployment's settings and files.

Each check takes the settings (and opens the database when it must) and returns findings:
DANGER (the portal should not serve like this: `portal doctor` exits 1, and `portal serve`
refuses to start while PORTAL_ENV=production), WARNING, or OK. Other parts add their own checks
with `@check("name")` (e.g. SMTP reachable once messages are sent, last backup's age once there
are backups); a check that fails unexpectedly is itself a warning, never a crash.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Iterable

from .config import Settings

DANGER, WARNING, OK = "danger", "warning", "ok"


@dataclass(frozen=True)
class Finding:
    level: str
    check: str
    message: str


Check = Callable[[Settings], Iterable[Finding]]
CHECKS: list[tuple[str, Check]] = []


def check(name: str):
    """Register a check (in order). Other modules import this one and decorate theirs."""
    def wrap(fn: Check) -> Check:
        CHECKS.append((name, fn))
        return fn
    return wrap


def run(settings: Settings) -> list[Finding]:
    out: list[Finding] = []
    for name, fn in CHECKS:
        try:
            out.extend(fn(settings))
        except Exception as exc:  # noqa: BLE001 - a broken check must not hide the others
            out.append(Finding(WARNING, name, f"could not check ({type(exc).__name__})"))
    return out


def dangers(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == DANGER]


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _production(settings: Settings) -> bool:
    return settings.env == "production"


# ---------------------------------------------------------------- files

@check("key file")
def _key_file(settings: Settings):
    path = settings.key_file
    if not path.exists():
        yield Finding(DANGER, "key file", f"{path} does not exist (run `portal db upgrade`)")
        return
    mode = _mode(path)
    if mode & 0o077:
        yield Finding(DANGER, "key file", f"{path} is readable by others (mode {mode:04o}); "
                                          f"run: chmod 600 {path}")
    elif not os.access(path, os.R_OK):
        yield Finding(DANGER, "key file", f"{path} cannot be read by this user")
    else:
        yield Finding(OK, "key file", f"{path} mode {mode:04o}")
    parent = path.parent
    if _mode(parent) & 0o002:
        yield Finding(DANGER, "key file", f"its directory {parent} is writable by everyone "
                                          "(anyone could replace the key file)")


@check("data directory")
def _data_dir(settings: Settings):
    from .db import SQLITE_FILE_SUFFIXES, sqlite_path

    path = sqlite_path(settings.database_url)
    if path is None:
        return  # PostgreSQL keeps its own files
    if not path.exists():
        yield Finding(DANGER, "data directory", f"no database at {path} (run `portal db upgrade`)")
        return
    for suffix in SQLITE_FILE_SUFFIXES:
        p = type(path)(str(path) + suffix)
        if p.exists() and _mode(p) & 0o077:
            yield Finding(DANGER, "data directory", f"{p} is readable by others (mode {_mode(p):04o}); "
                                                    f"run: chmod 600 {p}")
    mode = _mode(path.parent)
    if mode & 0o002:
        yield Finding(DANGER, "data directory", f"{path.parent} is writable by everyone (mode {mode:04o})")
    elif mode & 0o077:
        yield Finding(WARNING, "data directory", f"{path.parent} is open to others (mode {mode:04o}); "
                                                 f"0700 is enough: chmod 700 {path.parent}")
    else:
        yield Finding(OK, "data directory", f"{path.parent} mode {mode:04o}")


# ---------------------------------------------------------------- settings

@check("proxy and cookies")
def _proxy(settings: Settings):
    if _production(settings) and not settings.trust_proxy:
        yield Finding(DANGER, "proxy and cookies",
                      "PORTAL_ENV=production without PORTAL_TRUST_PROXY=1: behind the https proxy "
                      "cookies are not marked Secure, and every client address is the proxy's "
                      "(audit log, sign-in throttle)")
    elif settings.trust_proxy:
        yield Finding(OK, "proxy and cookies", "X-Forwarded-For/-Proto trusted: listen on loopback only")
    if _production(settings) and settings.debug:
        yield Finding(DANGER, "debug", "PORTAL_DEBUG=1 in production")


# ---------------------------------------------------------------- database

def _database(settings: Settings):
    from .db import Database
    return Database(settings.database_url)


@check("demo password")
def _demo_password(settings: Settings):
    from sqlalchemy import select

    from .accounts.models import User
    from .accounts.passwords import verify_password
    from .demo import DEMO_USERS, demo_password

    db = _database(settings)
    try:
        with db.read() as s:
            users = list(s.scalars(select(User).where(User.username.in_([u.username for u in DEMO_USERS]),
                                                      User.is_active.is_(True))))
    finally:
        db.dispose()
    pw = demo_password(None)
    weak = [u.username for u in users if u.password_hash and verify_password(u.password_hash, pw)]
    if weak:
        yield Finding(DANGER, "demo password", f"{len(weak)} account(s) sign in with the demo password: "
                                               f"{', '.join(sorted(weak))} (disable them or reset their passwords)")
    elif users:
        yield Finding(WARNING if _production(settings) else OK, "demo password",
                      f"{len(users)} demo account(s) exist (not with the demo password)")


@check("database role")
def _database_role(settings: Settings):
    from sqlalchemy import text

    if not settings.database_url.startswith("postgresql"):
        return
    db = _database(settings)
    try:
        with db.read() as s:
            me, superuser = s.execute(text("SELECT current_user, rolsuper FROM pg_roles "
                                           "WHERE rolname = current_user")).one()
            owner = s.execute(text("SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() "
                                   "AND tablename = 'audit_event'")).scalar()
    finally:
        db.dispose()
    if superuser or owner == me:
        yield Finding(DANGER if _production(settings) else WARNING, "database role",
                      f"the portal connects as {me}, {'a superuser' if superuser else 'the owner of the tables'}: "
                      "it could alter tables and drop the append-only triggers; connect as an "
                      "application role set up with `portal db grant --app-role NAME`")
    else:
        yield Finding(OK, "database role", f"connects as {me} (not the owner)")


@check("audit checkpoint")
def _checkpoint_age(settings: Settings):
    from sqlalchemy import func, select

    from . import clock
    from .audit.checkpoints import newest_checkpoint
    from .audit.models import AuditEvent

    db = _database(settings)
    try:
        with db.read() as s:
            cp = newest_checkpoint(s)
            after = cp.seq if cp else 0
            first_unsigned = s.scalar(select(func.min(AuditEvent.at)).where(AuditEvent.seq > after))
            unsigned = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.seq > after))
    finally:
        db.dispose()
    if not unsigned:
        yield Finding(OK, "audit checkpoint", "every audit entry is covered by a signed checkpoint")
        return
    waited = clock.now() - first_unsigned
    limit = timedelta(seconds=max(settings.audit_checkpoint_seconds, 60) * 5)
    text_ = (f"{unsigned} audit entr{'y' if unsigned == 1 else 'ies'} not covered by a signed checkpoint, "
             f"the oldest for {int(waited.total_seconds() // 60)} min (run `portal jobs checkpoint` "
             "from a timer)")
    if waited > timedelta(days=1):
        yield Finding(DANGER, "audit checkpoint", text_)
    elif waited > limit:
        yield Finding(WARNING, "audit checkpoint", text_)
    else:
        yield Finding(OK, "audit checkpoint", f"{unsigned} recent entr{'y' if unsigned == 1 else 'ies'} "
                                              "awaiting the next checkpoint")
