"""Appending to the audit log and reading it (its chain is verified in verify.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..driver_sql import Prebuilt
from .chain import CHAINED, entry_hash
from ..observe import metrics
from .models import AuditEvent
from .verify import ChainReport, verify_chain  # noqa: F401 - their old home

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
    kwargs = {"object_type": object_type, "object_id": object_id, "fields": fields, "reason": reason,
              "detail": detail, "grant_id": grant_id}
    return append_all_committed(db, [(actor, action, outcome, kwargs)])[-1]


def append_all_committed(db, entries: list[tuple[Actor | None, str, str, dict]]) -> list[Appended]:
    """`append_committed` of several entries (actor, action, outcome, keyword arguments), in order,
    in one short write transaction: one commit for a page's few entries."""
    if not entries:
        return []
    signer = db.audit_signer
    done: list[tuple[int, dict]] = []
    try:
        # The usual case on the driver's connection directly (Database.raw_write: BEGIN, three
        # prebuilt statements per entry, COMMIT), without SQLAlchemy's transaction machinery.
        with db.raw_write() as raw:
            for actor, action, outcome, kw in entries:
                ((seq, prev),) = _HEAD_NEXT.all_raw(raw)
                if signer is not None:
                    from .checkpoints import may_be_due
                    if may_be_due(signer, seq):
                        raise _CheckpointDue
                row = _entry(seq, prev, actor, action, outcome, *_args(kw))
                _INSERT.run_raw(raw, row)
                _HEAD_HASH.run_raw(raw, {"h": row["hash"]})
                done.append((seq, row))
        for (_seq, _row), (_a, action, outcome, _kw) in zip(done, entries):
            _counted(outcome, action)
        return [Appended(seq, row["hash"]) for seq, row in done]
    except _CheckpointDue:
        pass
    # An entry may sign the head: on a Core connection, whose transaction the checkpoint's session
    # joins (all of them rolled back above, appended again here).
    with db.connect_write() as conn:
        return [_append(conn, None, signer, actor, action, outcome, *_args(kw))
                for actor, action, outcome, kw in entries]


def _args(kw: dict) -> tuple:
    """append_committed's keyword arguments, in _entry's order."""
    return (kw.get("object_type", ""), kw.get("object_id", ""), kw.get("fields", ()), kw.get("reason", ""),
            kw.get("detail", ""), kw.get("grant_id"))


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
