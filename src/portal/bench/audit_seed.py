"""Bulk seeding of the audit log for benchmarks: millions of chained entries, signed as a server would.

Used by `portal bench seed-audit N`. Entries are appended after the current head under its row
lock, in batches of one transaction each, with hashes computed by `audit.chain.entry_hash` (so
`portal audit verify` passes), and a checkpoint is signed every `every` entries with the key
ring's signing key, as a running server does. The mix looks like a working portal's log:
salespeople viewing, listing and searching files, leaders approving, auditors reading, a few
refusals; times are spread evenly over the last `days` days, oldest first.
"""
from __future__ import annotations

import random
import time
from hashlib import sha256
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from sqlalchemy import select, text

from .. import clock
from ..accounts.models import User
from ..audit.chain import CHAINED, entry_hash
from ..audit.checkpoints import Signer
from ..audit.models import AuditCheckpoint
from ..customers.models import CustomerFile
from ..db import Database

# (action, object_type, names a file, fields, detail, weight)
KINDS = (
    ("customer.view", "customer", True, "name,mobile,id_number,address", "", 40),
    ("customer.list", "customer", False, "name,mobile", "50 masked row(s)", 25),
    ("customer.search", "customer", False, "mobile", "1 result(s)", 10),
    ("customer.update", "customer", True, "mobile,address", "", 5),
    ("customer.create", "customer", True, "name,mobile,gender,category", "", 4),
    ("access.request", "customer", True, "", "", 3),
    ("access.approve", "grant", False, "", "", 2),
    ("audit.view", "audit", False, "", "actor=alice", 3),
    ("member.lists", "member", False, "", "", 4),
    ("auth.login", "user", False, "", "", 4),
)
_WEIGHTS = [k[-1] for k in KINDS]
DENIED_SHARE = 0.03


@dataclass
class AuditSeedReport:
    entries: int = 0
    checkpoints: int = 0
    seconds: float = 0.0
    head: int = 0

    @property
    def entries_per_second(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0


def _people(db: Database) -> tuple[list[tuple[int, str, str]], list[str]]:
    with db.read() as s:
        users = [(u.id, u.username, str(u.role.value if hasattr(u.role, "value") else u.role))
                 for u in s.scalars(select(User).where(User.is_active.is_(True)).order_by(User.id))]
        files = list(s.scalars(select(CustomerFile.file_no).order_by(CustomerFile.created_at.desc())
                               .limit(20000)))
    if not users:
        raise RuntimeError("no users; run `portal demo` first")
    return users, files or [f"755 {n:05d}" for n in range(1, 1000)]


def seed_audit(db: Database, n: int, *, signer: Signer | None, every: int = 1000, days: int = 730,
               batch: int = 20000, seed: int = 1,
               progress: Callable[[int], None] | None = None) -> AuditSeedReport:
    """Append n chained entries (and a signed checkpoint every `every` entries when a signer is given)."""
    if n < 0 or batch < 1 or every < 0:
        raise ValueError("n, batch and every must not be negative")
    rnd = random.Random(seed)
    users, files = _people(db)
    t0 = time.perf_counter()
    report = AuditSeedReport()
    end = clock.now() - timedelta(minutes=5)
    step = timedelta(days=days) / max(n, 1)
    at = end - step * n
    cols = [*CHAINED, "prev_hash", "hash"]
    done = 0
    while done < n:
        k = min(batch, n - done)
        with db.write() as s:
            if db.sqlite:
                s.execute(text("PRAGMA cache_size=-262144"))
            first, prev = s.execute(text("UPDATE audit_head SET seq = seq + :k WHERE id = 1 "
                                         "RETURNING seq - :k, hash"), {"k": k}).one()
            rows, cps = [], []
            for seq in range(first + 1, first + k + 1):
                at += step
                uid, username, role = rnd.choice(users)
                action, otype, names_file, fields, detail, _w = rnd.choices(KINDS, cum_weights=_CUM)[0]
                denied = rnd.random() < DENIED_SHARE
                naive = at.replace(tzinfo=None)
                # In CHAINED order; canonical text as chain._canon() gives it (checked below).
                v = (seq, naive, uid, username, role, action, otype,
                     rnd.choice(files) if names_file else "", "" if denied else fields,
                     "denied" if denied else "allowed", "", "not in scope" if denied else detail,
                     None, "10.0.%d.%d" % (uid % 250, seq % 250))
                canon = "\x1f".join((str(seq), naive.isoformat(timespec="microseconds"), str(uid),
                                     *v[3:12], "", v[13]))
                h = sha256((canon + "\x1e" + prev).encode()).hexdigest()
                if seq == first + 1:  # the fast path must agree with the chain's own rule
                    assert h == entry_hash(dict(zip(CHAINED, (*v[:1], at, *v[2:]))), prev)
                rows.append((*v, prev, h))
                prev = h
                if signer is not None and every and seq % every == 0:
                    kid, sig = signer.sign(seq, h)
                    cps.append({"seq": seq, "head_hash": h, "at": at, "key_id": kid, "signature": sig})
            _insert(s, cols, rows, db.sqlite)
            if cps:
                s.connection().execute(AuditCheckpoint.__table__.insert(), cps)
            s.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})
        done += k
        report.entries += k
        report.checkpoints += len(cps)
        report.head = first + k
        if progress:
            progress(k)
    if not db.sqlite:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            # As autovacuum would after a bulk load: statistics, and the visibility map that
            # lets index-only scans skip the table.
            c.exec_driver_sql("VACUUM ANALYZE audit_event")
            c.exec_driver_sql("VACUUM ANALYZE audit_checkpoint")
    else:
        with db.engine.connect() as c:
            c.exec_driver_sql("ANALYZE audit_event")
            c.commit()
    report.seconds = time.perf_counter() - t0
    return report


def _insert(s, cols: list[str], rows: list[tuple], sqlite: bool) -> None:
    """Rows straight to the driver: executemany on SQLite (times as SQLAlchemy stores them),
    COPY on PostgreSQL (naive UTC, as UTCDateTime binds them)."""
    dbapi = s.connection().connection.dbapi_connection
    cur = dbapi.cursor()
    try:
        if sqlite:
            cur.executemany(f"INSERT INTO audit_event ({', '.join(cols)}) VALUES "
                            f"({', '.join('?' * len(cols))})",
                            [(r[0], r[1].isoformat(sep=" ", timespec="microseconds"), *r[2:]) for r in rows])
        else:
            with cur.copy(f"COPY audit_event ({', '.join(cols)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
    finally:
        cur.close()


_CUM = [sum(_WEIGHTS[:i + 1]) for i in range(len(_WEIGHTS))]
