"""Appending to the audit log, reading it, and verifying its chain."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from .chain import CHAINED, GENESIS, entry_hash
from .models import AuditEvent

ALLOWED = "allowed"
DENIED = "denied"


def record(
    s: Session,
    actor: Actor | None,
    action: str,
    outcome: str = ALLOWED,
    *,
    object_type: str = "",
    object_id: str = "",
    fields: Iterable[str] = (),
    reason: str = "",
    detail: str = "",
    grant_id: int | None = None,
) -> AuditEvent:
    """Append one entry in the caller's transaction (so it commits with, and before, the reveal).

    The UPDATE on audit_head takes the row lock first: appends from all processes are
    serialised and the chain stays one unbroken line.
    """
    seq, prev = s.execute(
        text("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
    ).one()
    actor = actor or Actor.system("anonymous")
    ev = AuditEvent(
        seq=seq,
        at=clock.now(),
        actor_id=actor.user_id,
        actor_username=actor.username[:64],
        actor_role=actor.role,
        action=action,
        object_type=object_type,
        object_id=object_id[:255],
        fields=",".join(fields)[:255],
        outcome=outcome,
        reason=reason[:500],
        detail=detail[:1000],
        grant_id=grant_id,
        client_addr=(actor.client_addr or "")[:64],
        prev_hash=prev,
        hash="",
    )
    ev.hash = entry_hash({k: getattr(ev, k) for k in CHAINED}, prev)
    s.add(ev)
    s.flush()
    s.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": ev.hash})
    return ev


@dataclass
class ChainReport:
    ok: bool
    count: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str = ""


def verify_chain(s: Session, batch: int = 20000) -> ChainReport:
    """Recompute every hash in order; report the first entry that is changed, missing or out of place."""
    cols = [getattr(AuditEvent, k) for k in CHAINED] + [AuditEvent.prev_hash, AuditEvent.hash]
    prev = GENESIS
    expected_seq = 1
    count = 0
    result = s.execute(select(*cols).order_by(AuditEvent.seq).execution_options(yield_per=batch))
    n = len(CHAINED)
    for row in result:
        values = tuple(row[:n])
        seq = values[0]
        if seq != expected_seq:
            return ChainReport(False, count, prev, expected_seq,
                               f"entry {expected_seq} is missing (next present is {seq})")
        if row[n] != prev:
            return ChainReport(False, count, prev, seq, f"entry {seq} does not follow entry {seq - 1}")
        h = entry_hash(values, prev)
        if h != row[n + 1]:
            return ChainReport(False, count, prev, seq, f"entry {seq} was altered")
        prev = h
        expected_seq += 1
        count += 1
    head_seq, head_hash = s.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    if head_seq != count or head_hash != prev:
        return ChainReport(False, count, prev, count + 1 if head_seq > count else head_seq,
                           f"the head says {head_seq} entries but the log holds {count}")
    return ChainReport(True, count, prev)


@dataclass
class AuditFilter:
    actor: str = ""
    object_id: str = ""
    action: str = ""
    outcome: str = ""
    since: datetime | None = None
    until: datetime | None = None


def list_events(s: Session, f: AuditFilter, *, before_seq: int | None = None, limit: int = 50) -> list[AuditEvent]:
    """Newest first, keyset-paginated by seq."""
    q = select(AuditEvent)
    if f.actor:
        q = q.where(AuditEvent.actor_username == f.actor)
    if f.object_id:
        q = q.where(AuditEvent.object_id == f.object_id)
    if f.action:
        q = q.where(AuditEvent.action == f.action)
    if f.outcome:
        q = q.where(AuditEvent.outcome == f.outcome)
    if f.since:
        q = q.where(AuditEvent.at >= f.since)
    if f.until:
        q = q.where(AuditEvent.at < f.until)
    if before_seq:
        q = q.where(AuditEvent.seq < before_seq)
    return list(s.scalars(q.order_by(AuditEvent.seq.desc()).limit(limit)))


def parse_filter(params: dict[str, str], tz: str = "Asia/Shanghai") -> tuple[AuditFilter, dict[str, str]]:
    """Filter from query parameters (dates are local calendar days); returns the filter and errors."""
    from datetime import date, timedelta
    from zoneinfo import ZoneInfo

    errors: dict[str, str] = {}
    f = AuditFilter(actor=params.get("actor", "").strip().lower()[:64],
                    object_id=params.get("file", "").strip()[:32],
                    action=params.get("action", "").strip()[:64],
                    outcome=params.get("outcome", "").strip() if params.get("outcome") in (ALLOWED, DENIED) else "")
    if f.object_id:
        from ..customers.rules import format_file_number, parse_file_number
        parsed = parse_file_number(f.object_id)
        f.object_id = format_file_number(*parsed) if parsed else f.object_id
    for key, attr, shift in (("since", "since", 0), ("until", "until", 1)):
        raw = params.get(key, "").strip()
        if not raw:
            continue
        try:
            day = date.fromisoformat(raw) + timedelta(days=shift)
        except ValueError:
            errors[key] = "Use the form YYYY-MM-DD."
            continue
        setattr(f, attr, datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)))
    return f, errors


EXPORT_HEADER = ("seq", "at_utc", "actor", "role", "action", "object_type", "object_id", "fields",
                 "outcome", "reason", "detail", "grant_id", "client_addr", "hash")


def export_events(s: Session, actor: Actor, f: AuditFilter, limit: int = 100000) -> tuple[bytes, int]:
    """The filtered log as CSV (no personal values are ever in it); the export is itself audited."""
    import csv
    import io

    from ..customers.service import neutralise_cell

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(EXPORT_HEADER)
    n = 0
    before = None
    while n < limit:
        batch = list_events(s, f, before_seq=before, limit=1000)
        if not batch:
            break
        for e in batch:
            w.writerow([neutralise_cell(str(x)) for x in (
                e.seq, e.at.isoformat(timespec="seconds"), e.actor_username, e.actor_role, e.action,
                e.object_type, e.object_id, e.fields, e.outcome, e.reason, e.detail,
                e.grant_id or "", e.client_addr, e.hash)])
            n += 1
        before = batch[-1].seq
    record(s, actor, "audit.export", object_type="audit",
           detail=f"rows={n} actor={f.actor} file={f.object_id} action={f.action} outcome={f.outcome}")
    return ("\ufeff" + buf.getvalue()).encode("utf-8"), n


def known_actions(s: Session) -> list[str]:
    return sorted(s.scalars(select(AuditEvent.action).distinct()))
