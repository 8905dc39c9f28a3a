"""Appending to the audit log, reading it, and verifying its chain."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from typing import Iterable

from sqlalchemy import DateTime, String, bindparam, column, create_engine, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy import table as sql_table
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from .. import clock
from ..accounts.actor import Actor
from ..db import UTCDateTime
from ..driver_sql import Prebuilt
from .chain import CHAINED, GENESIS, canon_stored_time, entry_hash
from ..observe import metrics
from .models import AuditEvent

ALLOWED = "allowed"
DENIED = "denied"
DEFERRED = "audit_deferred"  # Session.info key of a read_then_audit() transaction's entries


# The append, built once at import (SQLAlchemy compiles each once per dialect and reuses it):
# lock the head and take the next number, insert the entry, move the head's hash.
_EVENT = AuditEvent.__table__
# They run on the driver's cursor of the caller's connection (driver_sql.Prebuilt: SQLAlchemy's
# compiled text and type conversions, without its per-execution machinery).
_HEAD_NEXT = Prebuilt(text("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash"))
_HEAD_HASH = Prebuilt(text("UPDATE audit_head SET hash = :h WHERE id = 1"))
_INSERT = Prebuilt(insert(_EVENT).values({name: bindparam(name) for name in (*CHAINED, "prev_hash", "hash")}))
_APPENDS = {o: metrics.AUDIT_APPENDS.labels(o) for o in (ALLOWED, DENIED)}


@dataclass(frozen=True, slots=True)
class Appended:
    """The entry just appended: its number and hash (the head of the chain after it)."""

    seq: int
    hash: str


def _entry(seq: int, prev: str, actor: Actor | None, action: str, outcome: str, object_type: str,
           object_id: str, fields: Iterable[str], reason: str, detail: str, grant_id: int | None) -> dict:
    """Entry `seq`'s row, chained to `prev` (its hash under "hash")."""
    actor = actor or Actor.system("anonymous")
    values = (seq, clock.now(), actor.user_id, actor.username[:64], actor.role, action, object_type,
              object_id[:255], ",".join(fields)[:255], outcome, reason[:500], detail[:1000], grant_id,
              (actor.client_addr or "")[:64])
    row = dict(zip(CHAINED, values))
    row["prev_hash"], row["hash"] = prev, entry_hash(values, prev)
    return row


def _counted(outcome: str, action: str) -> None:
    counter = _APPENDS.get(outcome)
    (counter or metrics.AUDIT_APPENDS.labels(outcome)).inc()
    if outcome == DENIED:
        metrics.DENIALS.labels(action).inc()


def _append(conn: Connection, session: Session | None, signer, actor: Actor | None, action: str,
            outcome: str, object_type: str, object_id: str, fields: Iterable[str], reason: str,
            detail: str, grant_id: int | None) -> Appended:
    """UPDATE head + SHA-256 + INSERT + UPDATE head on `conn`, inside the caller's transaction."""
    ((seq, prev),) = _HEAD_NEXT.all(conn)
    row = _entry(seq, prev, actor, action, outcome, object_type, object_id, fields, reason, detail, grant_id)
    h = row["hash"]
    _INSERT.run(conn, row)
    _HEAD_HASH.run(conn, {"h": h})
    # Every N entries, and once the newest checkpoint is a minute old, the head is signed in the
    # same transaction (the Database hands its signer to each session), so a log cut short is
    # caught, not only one edited.
    if signer is not None:
        from .checkpoints import after_append, may_be_due
        if may_be_due(signer, seq):
            if session is None:
                # Joins the connection's transaction (commits with it, never on its own).
                with Session(bind=conn, join_transaction_mode="rollback_only") as s:
                    after_append(s, signer, seq, h)
                    s.flush()
            else:
                after_append(session, signer, seq, h)
    _counted(outcome, action)
    return Appended(seq, h)


class _CheckpointDue(Exception):
    """The raw append's entry would be the one to sign a checkpoint for: rolled back, and
    appended again through a session (which the signing needs)."""


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
) -> Appended | None:
    """Append one entry in the caller's transaction (so it commits with, and before, the reveal).

    The UPDATE on audit_head takes the row lock first: appends from all processes are
    serialised and the chain stays one unbroken line. The caller's pending ORM changes are
    flushed before (their row locks come first, the head's last, as everywhere).

    In a page's read_then_audit() transaction (audit/deferred.py) the entry is kept, and appended
    and committed when that read ends, before anything is shown; then None is returned.
    """
    deferred = s.info.get(DEFERRED)
    if deferred is not None:
        deferred.append((actor, action, outcome, {"object_type": object_type, "object_id": object_id,
                                                  "fields": tuple(fields), "reason": reason, "detail": detail,
                                                  "grant_id": grant_id}))
        return None
    s.flush()
    return _append(s.connection(), s, s.info.get("audit_signer"), actor, action, outcome,
                   object_type, object_id, fields, reason, detail, grant_id)


def append_committed(
    db,
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
) -> Appended:
    """Append one entry in its own short write transaction and commit it; return once committed.

    For pages that read in a snapshot first (`db.read()` / `db.connect_read()`), then audit,
    then render: on SQLite the writer lock is held for the append and its commit alone. Any
    failure raises (rolled back), and the caller shows nothing: audit before reveal. `db` is a
    `portal.db.Database`; never call this inside an open `db.write()` of the same thread.
    """
    signer = db.audit_signer
    try:
        # The usual case on the driver's connection directly (Database.raw_write: BEGIN, the
        # three prebuilt statements, COMMIT), without SQLAlchemy's transaction machinery.
        with db.raw_write() as raw:
            ((seq, prev),) = _HEAD_NEXT.all_raw(raw)
            if signer is not None:
                from .checkpoints import may_be_due
                if may_be_due(signer, seq):
                    raise _CheckpointDue
            row = _entry(seq, prev, actor, action, outcome, object_type, object_id, fields, reason, detail,
                         grant_id)
            _INSERT.run_raw(raw, row)
            _HEAD_HASH.run_raw(raw, {"h": row["hash"]})
        _counted(outcome, action)
        return Appended(seq, row["hash"])
    except _CheckpointDue:
        pass
    # Entry `seq` (or the first after a stale checkpoint) may sign the head: on a Core connection,
    # whose transaction the checkpoint's session joins.
    with db.connect_write() as conn:
        return _append(conn, None, signer, actor, action, outcome, object_type,
                       object_id, fields, reason, detail, grant_id)


@dataclass
class ChainReport:
    ok: bool
    count: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str = ""


@dataclass
class _Stretch:
    """What one pass over entries first..last found (hashes recomputed from each entry's own prev_hash)."""

    first: int
    last: int
    count: int = 0
    first_prev: str | None = None  # the prev_hash stored in the first entry
    last_hash: str | None = None   # the recomputed hash of the last entry
    bad_seq: int | None = None
    problem: str = ""


def _verify_stretch(s: Session, first: int, last: int, batch: int, prev: str | None) -> _Stretch:
    """Check entries first..last: consecutive seqs, each hash right, each following the one before.

    `prev` is the hash the first entry must follow (None: take its stored prev_hash and let the
    caller check it). Streams raw column values from the driver (no ORM objects, no per-value
    type processing) and canonicalises them exactly as entry_hash() does.
    """
    names = [*CHAINED, "prev_hash", "hash"]
    n = len(CHAINED)
    table = AuditEvent.__table__
    time_cols = [i for i, k in enumerate(CHAINED) if isinstance(table.c[k].type, (UTCDateTime, DateTime))]
    # Every other column that may hold a non-string (numbers, NULL) goes through _canon()'s
    # rule: None -> "", else str(); NOT NULL string columns are canonical already.
    other_cols = [i for i, k in enumerate(CHAINED) if i not in time_cols
                  and not (isinstance(table.c[k].type, String) and not table.c[k].nullable)]
    conn = s.connection()
    stmt = (select(*(column(k) for k in names)).select_from(sql_table(table.name))
            .where(column("seq") >= first, column("seq") <= last).order_by(column("seq")))
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    dbapi = conn.connection.dbapi_connection
    # PostgreSQL: a server-side cursor, so the log streams instead of landing in memory at once.
    cur = dbapi.cursor(name="audit_verify") if conn.dialect.name == "postgresql" else dbapi.cursor()
    out = _Stretch(first, last)
    expected_seq = first
    try:
        cur.execute(sql)
        while rows := cur.fetchmany(batch):
            for row in rows:
                seq = row[0]
                if seq != expected_seq:
                    out.bad_seq, out.problem = expected_seq, (
                        f"entry {expected_seq} is missing (next present is {seq})")
                    return out
                if prev is None:
                    out.first_prev = prev = row[n]
                elif row[n] != prev:
                    out.bad_seq, out.problem = seq, f"entry {seq} does not follow entry {seq - 1}"
                    return out
                values = list(row[:n])
                for i in other_cols:
                    v = values[i]
                    values[i] = "" if v is None else str(v)
                for i in time_cols:
                    values[i] = canon_stored_time(values[i])
                h = sha256(("\x1f".join(values) + "\x1e" + prev).encode()).hexdigest()
                if h != row[n + 1]:
                    out.bad_seq, out.problem = seq, f"entry {seq} was altered"
                    return out
                out.last_hash = prev = h
                expected_seq += 1
                out.count += 1
    finally:
        cur.close()
    return out


def _verify_stretch_in_process(args) -> _Stretch:
    url, first, last, batch = args
    engine = create_engine(url, poolclass=NullPool)
    try:
        with Session(engine) as s, s.begin():
            return _verify_stretch(s, first, last, batch, None)
    finally:
        engine.dispose()


def verify_chain(s: Session, batch: int = 20000, *, workers: int = 1) -> ChainReport:
    """Recompute every hash in order; report the first entry that is changed, missing or out of place.

    The head is read first and entries 1..head are checked, so appends committed meanwhile
    by a live portal do not disturb the check. workers > 1 splits a long log into stretches
    checked by that many forked processes (each entry's hash is recomputed from its own
    prev_hash, then the stretches are joined); use it only from a single-threaded program
    such as the `portal` command.
    """
    head_seq, head_hash = s.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    if workers > 1 and head_seq >= 50_000:
        import multiprocessing

        url = s.get_bind().url
        step = -(-head_seq // workers)
        jobs = [(url, lo, min(lo + step - 1, head_seq), batch) for lo in range(1, head_seq + 1, step)]
        with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
            parts = pool.map(_verify_stretch_in_process, jobs)
    else:
        parts = [_verify_stretch(s, 1, head_seq, batch, GENESIS)]
    prev, count = GENESIS, 0
    for i, part in enumerate(parts):
        if part.first_prev is not None and part.first_prev != prev:
            return ChainReport(False, count, prev, count + 1,
                               f"entry {count + 1} does not follow entry {count}")
        if part.problem:
            return ChainReport(False, count + part.count, part.last_hash or prev, part.bad_seq,
                               part.problem)
        count += part.count
        prev = part.last_hash or prev
        if i < len(parts) - 1 and count < part.last:  # the last stretch is left to the head check
            return ChainReport(False, count, prev, count + 1, f"entry {count + 1} is missing")
    # One statement, so on PostgreSQL both numbers come from the same snapshot.
    max_seq, now_head = s.execute(text(
        "SELECT (SELECT max(seq) FROM audit_event), (SELECT seq FROM audit_head WHERE id = 1)")).one()
    if head_seq != count or head_hash != prev:
        return ChainReport(False, count, prev, count + 1 if head_seq > count else head_seq,
                           f"the head says {head_seq} entries but the log holds {count}")
    if (max_seq or 0) > now_head:
        return ChainReport(False, count, prev, now_head + 1,
                           f"the log holds entries past the head (entry {now_head + 1} and on)")
    return ChainReport(True, count, prev)


@dataclass
class AuditFilter:
    actor: str = ""
    object_id: str = ""
    action: str = ""
    outcome: str = ""
    since: datetime | None = None
    until: datetime | None = None
    # Bounds on seq that hold every entry of the date range (browse.with_seq_window): not a
    # filter of their own, they let a newest-first page walk the primary key inside them.
    seq_lo: int | None = field(default=None, compare=False)
    seq_hi: int | None = field(default=None, compare=False)


def filtered(q, f: AuditFilter):
    """``q`` narrowed to the entries ``f`` selects (every filter is an indexed equality or range)."""
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
    if f.seq_lo is not None:
        q = q.where(AuditEvent.seq >= f.seq_lo)
    if f.seq_hi is not None:
        q = q.where(AuditEvent.seq <= f.seq_hi)
    return q


def list_events(s: Session, f: AuditFilter, *, before_seq: int | None = None, limit: int = 50) -> list[AuditEvent]:
    """Newest first, keyset-paginated by seq."""
    q = filtered(select(AuditEvent), f)
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

    from ..customers.export import neutralise_cell

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
    from .browse import known_actions  # one index seek per action (browse.py)
    return known_actions(s)
