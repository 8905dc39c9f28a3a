"""Reading the log as an auditor does: pages both ways, counts, runs of list views folded, a file's history."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

from sqlalchemy import exists, func, select, text
from sqlalchemy.orm import Session

from .models import AuditEvent
from .service import AuditFilter, filtered

# Views of lists and searches: many in a row say little one by one. Consecutive ones by the same
# user within FOLD_WINDOW of each other are shown as one line (each stays in the chain and the CSV).
FOLDABLE = frozenset({"customer.list", "customer.search", "member.lists", "audit.view"})
FOLD_WINDOW = timedelta(minutes=10)


# Past this many matches the page says "more than 10,000" instead of counting on (a filter that
# matches a million entries would otherwise read them all for one number).
COUNT_CAP = 10_000


def count_events(s: Session, f: AuditFilter, cap: int | None = None) -> tuple[int, bool]:
    """How many entries match: (n, False) exactly up to `cap`, else (cap, True).

    Without a filter the head's sequence number says it (entries are numbered 1, 2, ... with no
    gap: `portal audit verify` proves it); with one, at most cap + 1 index entries are read.
    """
    cap = cap or COUNT_CAP
    if f == AuditFilter():
        return s.execute(text("SELECT seq FROM audit_head WHERE id = 1")).scalar() or 0, False
    sub = filtered(select(AuditEvent.seq), f).limit(cap + 1).subquery()
    n = s.scalar(select(func.count()).select_from(sub)) or 0
    return (cap, True) if n > cap else (n, False)


# The distinct actions, one index seek each on (action, seq) instead of a scan of the log.
_ACTIONS = text(
    "WITH RECURSIVE a(action) AS ("
    " SELECT min(action) FROM audit_event"
    " UNION ALL SELECT (SELECT min(e.action) FROM audit_event e WHERE e.action > a.action)"
    " FROM a WHERE a.action IS NOT NULL)"
    " SELECT action FROM a WHERE action IS NOT NULL")


def known_actions(s: Session) -> list[str]:
    """Every action code in the log, sorted (for the filter's menu)."""
    return sorted(s.scalars(_ACTIONS))


def with_seq_window(s: Session, f: AuditFilter) -> AuditFilter:
    """f, with the lowest and highest seq of the entries in its date range (read from the
    (at, seq) index alone). Times grow with seq (both are taken under the head's lock), so the
    window holds little else and a newest-first page walks it by primary key, instead of
    sorting every entry of a long range; a clock set back only widens the window (it is taken
    from the times themselves, so no entry of the range falls outside it)."""
    if not (f.since or f.until):
        return f
    # seq + 0: the bounds from the (at, seq) index range, not a walk of the primary key from
    # either end until an entry falls in the range (PostgreSQL's min/max rewrite would do that).
    q = select(func.min(AuditEvent.seq + 0), func.max(AuditEvent.seq + 0))
    if f.since:
        q = q.where(AuditEvent.at >= f.since)
    if f.until:
        q = q.where(AuditEvent.at < f.until)
    lo, hi = s.execute(q).one()
    return replace(f, seq_lo=lo if lo is not None else 1, seq_hi=hi if hi is not None else 0)


@dataclass
class LogPage:
    events: list[AuditEvent]           # newest first
    older: int | None = None           # ?before= for the next older page
    newer: int | None = None           # ?after= for the next newer page


def page_of(s: Session, f: AuditFilter, *, before: int | None = None, after: int | None = None,
            limit: int = 50) -> LogPage:
    """One page, newest first, keyset by seq: older than `before`, or newer than `after`."""
    q = filtered(select(AuditEvent), f)
    if after is not None and before is None:
        rows = list(s.scalars(q.where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(limit + 1)))
        if len(rows) <= limit:  # reached the newest entries: show the first page as it is
            return page_of(s, f, limit=limit)
        events = list(reversed(rows[:limit]))
        page = LogPage(events, newer=events[0].seq)
        if events:
            page.older = events[-1].seq if _any(s, f, AuditEvent.seq < events[-1].seq) else None
        return page
    if before is not None:
        q = q.where(AuditEvent.seq < before)
    rows = list(s.scalars(q.order_by(AuditEvent.seq.desc()).limit(limit + 1)))
    events = rows[:limit]
    page = LogPage(events, older=events[-1].seq if len(rows) > limit else None)
    if events and before is not None:
        page.newer = events[0].seq if _any(s, f, AuditEvent.seq > events[0].seq) else None
    return page


def _any(s: Session, f: AuditFilter, cond) -> bool:
    return bool(s.scalar(select(exists(filtered(select(AuditEvent.seq), f).where(cond)))))


@dataclass
class Line:
    """One line of the page: one entry, or a run of list views by one user folded together."""

    entries: list[AuditEvent] = field(default_factory=list)

    @property
    def first(self) -> AuditEvent:
        return self.entries[0]

    @property
    def folded(self) -> bool:
        return len(self.entries) > 1

    @property
    def count(self) -> int:
        return len(self.entries)

    @property
    def actions(self) -> list[str]:
        return sorted({e.action for e in self.entries})


def fold(events: list[AuditEvent], window: timedelta = FOLD_WINDOW) -> list[Line]:
    """Consecutive list/search views by the same user, each within `window` of the one before,
    become one Line; everything else is a Line of its own. Order and every entry are kept."""
    lines: list[Line] = []
    for e in events:
        last = lines[-1] if lines else None
        if (last is not None and e.action in FOLDABLE and e.outcome == "allowed"
                and last.entries[-1].action in FOLDABLE and last.entries[-1].outcome == "allowed"
                and last.entries[-1].actor_username == e.actor_username
                and abs(last.entries[-1].at - e.at) <= window):
            last.entries.append(e)
        else:
            lines.append(Line([e]))
    return lines


# Entries about one file that show who reached it and how.
HISTORY_LIMIT = 500


def file_history(s: Session, file_no: str, limit: int = HISTORY_LIMIT) -> tuple[list[AuditEvent], int]:
    """Every entry naming this file (newest first, up to `limit`) and how many there are."""
    cond = (AuditEvent.object_type == "customer", AuditEvent.object_id == file_no)
    total = s.scalar(select(func.count()).select_from(AuditEvent).where(*cond)) or 0
    rows = list(s.scalars(select(AuditEvent).where(*cond).order_by(AuditEvent.seq.desc()).limit(limit)))
    return rows, total
