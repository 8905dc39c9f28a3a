"""Resolving a session cookie on every request: one statement built once, run on a Core connection.

The session row, its user, the user's unit and the inbox's unread count come back in one
indexed read (the session's primary key, the user's and unit's primary keys, and a count
along `ix_notice_user_read`). Nothing is cached between requests: a disabled user, a deleted
session (sign-out, `portal user disable`, a password change) or an expired one is refused on
the very next request, in every process, because every request asks the database.
"""
from __future__ import annotations

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection, Engine

from .. import clock
from ..db import autocommit
from ..inbox.models import Notice
from ..org.models import OrgUnit
from .actor import Actor
from .models import User, WebSession

# Refresh last_seen_at at most this often (a write per request would serialise every page on
# SQLite); the idle limit is minutes, so half a minute of slack is harmless.
TOUCH_AFTER = timedelta(seconds=30)

_ws, _user, _unit, _notice = (WebSession.__table__, User.__table__, OrgUnit.__table__,
                              Notice.__table__)

_UNREAD = (select(func.count()).select_from(_notice)
           .where(_notice.c.user_id == _user.c.id, _notice.c.read_at.is_(None))
           .scalar_subquery())

# Built once at import; SQLAlchemy compiles it once per dialect and reuses it (bind parameter :key).
LOOKUP = (select(_ws.c.created_at, _ws.c.last_seen_at, _ws.c.stage,
                 _user.c.id, _user.c.username, _user.c.display_name, _user.c.role, _user.c.unit_id,
                 _user.c.locale, _user.c.timezone, _user.c.is_active, _unit.c.path,
                 _UNREAD.label("unread"))
          .select_from(_ws.join(_user, _user.c.id == _ws.c.user_id)
                       .outerjoin(_unit, _unit.c.id == _user.c.unit_id))
          .where(_ws.c.id == bindparam("key")))

TOUCH = (update(_ws).where(_ws.c.id == bindparam("key"))
         .values(last_seen_at=bindparam("now")))


@dataclass(frozen=True, slots=True)
class SessionUser:
    """The signed-in user as pages show them (`me` in templates): the columns a request needs,
    read with the session; never an ORM object (nothing to lazy-load, nothing to flush)."""

    id: int
    username: str
    display_name: str
    role: str
    unit_id: int | None
    locale: str | None
    timezone: str | None
    unit_path: str = ""

    @property
    def user_id(self) -> int:
        return self.id


@dataclass(slots=True)
class LiveSession:
    user: SessionUser
    touch: bool  # last_seen should be refreshed
    stage: str = "full"
    unread: int = 0

    def actor(self, client_addr: str = "") -> Actor:
        u = self.user
        return Actor(user_id=u.id, username=u.username, role=u.role, unit_id=u.unit_id,
                     unit_path=u.unit_path, client_addr=client_addr)


def session_key(token: str) -> str:
    # The cookie value is a bearer secret; store only its hash so a database dump cannot replay it.
    return hashlib.sha256(token.encode()).hexdigest()


def _compiled(dialect) -> tuple[str, tuple[str, ...] | None]:
    """LOOKUP as the driver's SQL text (compiled once per dialect) and, for drivers with
    positional parameters, the order of the parameter names."""
    cached = _SQL.get(dialect.name)
    if cached is None:
        c = LOOKUP.compile(dialect=dialect)
        order = tuple(c.positiontup) if c.positional else None
        if order is not None and set(order) != {"key"}:  # lookup_dbapi() binds :key alone
            raise RuntimeError(f"unexpected parameters in the session lookup: {order}")
        cached = _SQL[dialect.name] = (str(c), order)
    return cached


_SQL: dict[str, tuple[str, tuple[str, ...] | None]] = {}


def _utc(v) -> datetime:
    """A stored UTC time as the driver returns it (SQLite: text; PostgreSQL: naive datetime)."""
    if v.__class__ is str:
        v = datetime.fromisoformat(v)
    return v.replace(tzinfo=timezone.utc)


def lookup_dbapi(dbapi_conn, dialect, token: str, *, idle_minutes: int,
                 max_hours: int) -> LiveSession | None:
    """The session's user if the session is live (not idle-expired, not too old, user active).

    One statement on the driver's connection: the prebuilt LOOKUP, compiled once for the
    dialect, with no per-call statement, result or type machinery around it."""
    if not token or len(token) > 100:
        return None
    sql, order = _compiled(dialect)
    key = session_key(token)
    cur = dbapi_conn.cursor()
    try:
        cur.execute(sql, (key,) * len(order) if order is not None else {"key": key})
        row = cur.fetchone()
    finally:
        cur.close()
    if row is None:
        return None
    (created_at, last_seen_at, stage, uid, username, display_name, role, unit_id, locale, tz,
     is_active, unit_path, unread) = row
    now = clock.now()
    last_seen_at = _utc(last_seen_at)
    if (not is_active or now - last_seen_at > timedelta(minutes=idle_minutes)
            or now - _utc(created_at) > timedelta(hours=max_hours)):
        return None
    user = SessionUser(uid, username, display_name, role, unit_id, locale, tz, unit_path or "")
    return LiveSession(user=user, touch=now - last_seen_at > TOUCH_AFTER, stage=stage,
                       unread=unread or 0)


def lookup(conn: Connection, token: str, *, idle_minutes: int, max_hours: int) -> LiveSession | None:
    """lookup_dbapi() on a Core connection (inside its transaction)."""
    return lookup_dbapi(conn.connection.dbapi_connection, conn.dialect, token,
                        idle_minutes=idle_minutes, max_hours=max_hours)


def resolve(engine: Engine, token: str, *, idle_minutes: int, max_hours: int) -> LiveSession | None:
    """lookup_dbapi() on a pooled connection of `engine`, returned to the pool at once. The one
    SELECT is its own snapshot, run in autocommit on both databases."""
    raw = engine.raw_connection()
    try:
        # PostgreSQL: the one SELECT in autocommit, no BEGIN before it and no ROLLBACK when the
        # pool takes the connection back: two round trips fewer on every request.
        with autocommit(raw) if engine.dialect.name == "postgresql" else nullcontext():
            return lookup_dbapi(raw, engine.dialect, token, idle_minutes=idle_minutes, max_hours=max_hours)
    finally:
        raw.close()


def touch(conn: Connection, token: str) -> None:
    conn.execute(TOUCH, {"key": session_key(token), "now": clock.now()})
