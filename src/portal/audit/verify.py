"""Verifying the audit log's chain: every entry numbered in turn, its hash right, each following the
one before (split over one process per core for a long log)."""
from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256

from sqlalchemy import DateTime, String, column, create_engine, select, text
from sqlalchemy import table as sql_table
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from ..db import UTCDateTime
from .chain import CHAINED, GENESIS, canon_stored_time
from .models import AuditEvent


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
