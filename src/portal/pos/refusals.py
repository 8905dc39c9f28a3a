"""API calls refused for credentials nobody holds: counted per client address and minute, throttled.

A call without a key, with a malformed one, or with a key that matches no terminal's secret is
not audited one entry per call (an invented key would otherwise append a permanent row at
will). Instead each client address has one row in ``api_refusal_window`` for the current
minute, counting its refused calls; past the limit (``PORTAL_API_REFUSALS_PER_MINUTE``, 30) the client is answered 429 until
the minute is over. When a minute has ended its count becomes ONE audit entry ("n calls
refused from this address in this minute, m of them answered 429") and the row is removed.
Ended minutes are written out by the next API call from anyone (``close_ended``) and by
``portal jobs purge-sessions``. The rows live in the database, so every app process counts
into the same window.

Refusals of a known terminal's own key (revoked) stay one audit entry each, as do all refusals
of a terminal that presented a good key.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from .. import clock
from ..accounts.actor import Actor
from ..audit import service as audit
from ..db import UTCDateTime

LIMIT_PER_MINUTE = 30  # refused calls per address and minute before 429 (Settings.api_refusals_per_minute)
ACTION = "member.pos"
_BATCH = 100
# The terminal's real key, refused because the terminal was revoked: one entry per call.
KNOWN_TERMINAL_PROBLEMS = frozenset({"revoked key"})  # ended windows written out per call


class ApiRefusalWindow(SQLModel, table=True):
    """The refused calls of one client address in the current minute (a counter, not a record:
    the audit entry is written when the minute ends)."""

    __tablename__ = "api_refusal_window"

    client_addr: str = Field(max_length=64, primary_key=True)
    window_start: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
    refused: int = 0     # calls refused in the window, the throttled ones included
    throttled: int = 0   # of which answered 429
    problems: str = Field(default="", max_length=120)   # "unknown key, no key"
    first_call: str = Field(default="", max_length=200)  # "GET /api/v1/cards/..." (no key, no body)


@dataclass(frozen=True)
class Verdict:
    throttled: bool
    retry_after: int  # seconds until the window ends (for the Retry-After header)


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _write_out(s: Session, row: ApiRefusalWindow) -> None:
    if row.refused < 1:
        return
    who = Actor(user_id=None, username="api", role="anonymous", client_addr=row.client_addr)
    audit.record(s, who, ACTION, audit.DENIED, object_type="terminal", object_id="",
                 reason=f"API key refused: {row.problems}"[:200],
                 detail=(f"{row.refused} call{'s' if row.refused != 1 else ''} refused in the minute from "
                         f"{row.window_start:%Y-%m-%d %H:%M} UTC ({row.throttled} answered 429); "
                         f"first: {row.first_call}")[:500])


def close_ended(s: Session, now: datetime | None = None) -> int:
    """Write each ended window out as its one audit entry and remove it; how many were written.
    Several processes may do this at once: each row is taken by one (SKIP LOCKED on PostgreSQL;
    SQLite serialises writers)."""
    current = _minute(now or clock.now())
    q = (select(ApiRefusalWindow).where(ApiRefusalWindow.window_start < current)
         .order_by(ApiRefusalWindow.window_start).limit(_BATCH))
    if s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    rows = list(s.scalars(q))
    for row in rows:
        _write_out(s, row)
        s.delete(row)
    s.flush()
    return len(rows)


def has_ended(s: Session, now: datetime | None = None) -> bool:
    """Whether any window waits to be written out (one indexed look-up)."""
    current = _minute(now or clock.now())
    return s.scalar(select(ApiRefusalWindow.client_addr)
                    .where(ApiRefusalWindow.window_start < current).limit(1)) is not None


def note_refusal(s: Session, client_addr: str, problem: str, call: str,
                 limit: int = LIMIT_PER_MINUTE) -> Verdict:
    """Count one refused call from ``client_addr`` in its minute; throttled past the limit."""
    now = clock.now()
    current = _minute(now)
    addr = (client_addr or "unknown")[:64]
    insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    s.execute(insert(ApiRefusalWindow).values(client_addr=addr, window_start=current, refused=0,
                                              throttled=0, problems="", first_call="")
              .on_conflict_do_nothing(index_elements=["client_addr"]))
    row = s.scalar(select(ApiRefusalWindow).where(ApiRefusalWindow.client_addr == addr)
                   .with_for_update().execution_options(populate_existing=True))
    if row.window_start < current:  # this address's previous minute is over: write it out first
        _write_out(s, row)
        row.window_start, row.refused, row.throttled, row.problems, row.first_call = current, 0, 0, "", ""
    row.refused += 1
    throttled = row.refused > limit
    if throttled:
        row.throttled += 1
    if problem and problem not in row.problems.split(", "):
        joined = f"{row.problems}, {problem}" if row.problems else problem
        row.problems = joined if len(joined) <= 120 else row.problems
    if not row.first_call:
        row.first_call = call[:200]
    s.flush()
    end = current + timedelta(minutes=1)
    return Verdict(throttled=throttled, retry_after=max(1, int((end - now).total_seconds() + 0.999)))


def refuse(s: Session, terminal_id: int | None, problem: str, client_addr: str, action: str,
           call: str, limit: int = LIMIT_PER_MINUTE) -> Verdict:
    """Record a refused key: a known terminal's own (revoked) key as one audit entry of its own;
    any other as a count in the address's window. Never the key itself."""
    if problem in KNOWN_TERMINAL_PROBLEMS:
        who = Actor(user_id=None, username="api", role="anonymous", client_addr=client_addr)
        audit.record(s, who, action, audit.DENIED, object_type="terminal", object_id=str(terminal_id or ""),
                     reason=f"API key refused: {problem}", detail=call[:500])
        return Verdict(throttled=False, retry_after=0)
    if terminal_id is not None:  # a real prefix with a wrong secret: say whose prefix it was
        problem = f"{problem} for terminal {terminal_id}"
    return note_refusal(s, client_addr, problem, call, limit)


def purge_stale(s: Session) -> int:
    """For the jobs command: write out every ended window (in batches)."""
    total = 0
    while (n := close_ended(s)):
        total += n
    return total

