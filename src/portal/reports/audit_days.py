"""The audit analytics' summary: counts per (Shanghai day, actor) of the audit log's entries up to
a sequence number (audit_day_head), caught up from the log, never written by the append.

The log is append-only and its sequence numbers are consecutive and committed in order (each
append locks audit_head), so every entry up to audit_head's committed seq is visible and never
changes: counting the entries after the summary's seq and adding them with increments keeps the
summary exact. The analytics read the summary's days plus, live, the entries after its seq, in
one statement (one snapshot), so a catch-up committed meanwhile is never counted twice.
Catching up: ``catch_up`` in a write transaction (the page does it when the tail is long, a
job may do it), under the summary head's row lock on PostgreSQL (SQLite has one writer).
"""
from __future__ import annotations

from sqlalchemy import Integer, and_, case, cast, func, select, true, union_all
from sqlalchemy.orm import Session

from ..audit.models import AuditEvent, AuditHead
from .models import (AUDIT_DAY_FIGURES, VIEW_HOURS, audit_day as AD, audit_day_head as ADH, audit_file_day as AFD,
                     audit_view_day as AV)
from .sqlfn import SHANGHAI_HOURS, day_of, hour_of
from ..upsert import insert_for

VIEW = AuditEvent.action == "customer.view"
ALLOWED = AuditEvent.outcome == "allowed"
EXPORT = AuditEvent.action.in_(("customer.export", "audit.export", "report.export"))
DENIED = AuditEvent.outcome == "denied"
GRANT = and_(AuditEvent.action == "access.approve", ALLOWED)
KEYS = ("day", "actor_id", "actor_username", "actor_role")
# The page catches the summary up first when more entries than this wait after its seq, at most
# CATCH_UP_MAX of them per request (the rest is read live, and caught up by the next requests).
CATCH_UP_AT = 2_000
CATCH_UP_MAX = 500_000


def _flag(cond):
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def _in_span(lo, hi):
    """at in [lo, hi), written so that SQLite cannot pick the index on at (a period's range, long)
    over the seq range (the short tail after the summary) that comes with it."""
    at = func.coalesce(AuditEvent.at, AuditEvent.at)
    return and_(at >= lo, at < hi)


def _grouped(*where):
    """The summary's rows computed from the log's entries matching ``where``: GROUP BY (day,
    hour, actor), then the hours folded into the day's columns."""
    inner = (select(day_of(AuditEvent.at, SHANGHAI_HOURS).label("day"),
                    hour_of(AuditEvent.at, SHANGHAI_HOURS).label("hour"),
                    func.coalesce(AuditEvent.actor_id, 0).label("actor_id"),
                    AuditEvent.actor_username.label("actor_username"), AuditEvent.actor_role.label("actor_role"),
                    func.count().label("entries"), _flag(and_(VIEW, ALLOWED)).label("views"),
                    _flag(and_(EXPORT, ALLOWED)).label("exports"), _flag(DENIED).label("denials"),
                    _flag(GRANT).label("grants"), _flag(VIEW).label("vany"))
             .where(*where).group_by("day", "hour", "actor_id", AuditEvent.actor_username, AuditEvent.actor_role))
    inner = inner.subquery("h")
    c = inner.c
    # integers on both databases (PostgreSQL sums a bigint as numeric: Decimal in Python)
    cols = [cast(func.sum(c[n]), Integer).label(n) for n in ("entries", "views", "exports", "denials", "grants")]
    cols += [cast(func.sum(case((c.hour == h, c.vany), else_=0)), Integer).label(name)
             for h, name in enumerate(VIEW_HOURS)]
    return (select(c.day, c.actor_id, c.actor_username, c.actor_role, *cols).where(true())
            .group_by(c.day, c.actor_id, c.actor_username, c.actor_role))


def summary_seq(s: Session) -> int:
    return s.scalar(select(ADH.c.seq).where(ADH.c.id == 1)) or 0


def head_seq(s: Session) -> int:
    return s.scalar(select(AuditHead.seq).where(AuditHead.id == 1)) or 0


def catch_up(s: Session, *, limit: int | None = None) -> int:
    """Add the entries after the summary's seq (up to the committed head, at most ``limit`` of
    them) to the summary, in the caller's write transaction; the number of entries added."""
    insert = insert_for(s)
    s.execute(insert(ADH).values(id=1, seq=0).on_conflict_do_nothing(index_elements=["id"]))
    since = s.scalar(select(ADH.c.seq).where(ADH.c.id == 1).with_for_update())
    top = head_seq(s)
    if limit is not None:
        top = min(top, since + limit)
    if top <= since:
        return 0
    rows = _grouped(AuditEvent.seq > since, AuditEvent.seq <= top)
    stmt = insert(AD).from_select([*KEYS, *AUDIT_DAY_FIGURES], rows)
    stmt = stmt.on_conflict_do_update(index_elements=list(KEYS),
                                      set_={n: AD.c[n] + stmt.excluded[n] for n in AUDIT_DAY_FIGURES})
    s.execute(stmt)
    # The files new to their (user, day) are counted into audit_file_day before they are added.
    new = _new_file_days(AuditEvent.seq > since, AuditEvent.seq <= top)
    counts = (select(new.c.actor_username, new.c.day, cast(func.count(), Integer))
              .group_by(new.c.actor_username, new.c.day))
    stmt = insert(AFD).from_select(["actor_username", "day", "files"], counts)
    s.execute(stmt.on_conflict_do_update(index_elements=["actor_username", "day"],
                                         set_={"files": AFD.c.files + stmt.excluded.files}))
    views = (select(AuditEvent.actor_username, day_of(AuditEvent.at, SHANGHAI_HOURS), AuditEvent.object_id)
             .where(AuditEvent.seq > since, AuditEvent.seq <= top, VIEW, ALLOWED).distinct())
    s.execute(insert(AV).from_select(["actor_username", "day", "object_id"], views).on_conflict_do_nothing())
    s.execute(ADH.update().where(ADH.c.id == 1).values(seq=top))
    return top - since


def _new_file_days(*where):
    """A subquery (actor_username, day, object_id): the distinct (user, Shanghai day, file) of the
    allowed views matching ``where`` that audit_view_day does not hold yet."""
    day = day_of(AuditEvent.at, SHANGHAI_HOURS)
    held = (select(AV.c.day).where(AV.c.actor_username == AuditEvent.actor_username, AV.c.day == day,
                                   AV.c.object_id == AuditEvent.object_id).exists())
    return (select(AuditEvent.actor_username, day.label("day"), AuditEvent.object_id)
            .where(*where, VIEW, ALLOWED, ~held).distinct().subquery("new_views"))


def rebuild(s: Session) -> None:
    """Forget the summary and count the whole log again (tests; a repair)."""
    s.execute(AD.delete())
    s.execute(AV.delete())
    s.execute(AFD.delete())
    s.execute(ADH.delete())
    catch_up(s)


def catch_up_if_behind(db) -> int:
    """What the page does before reading: a write transaction only when the tail is long."""
    with db.read() as s:
        behind = head_seq(s) - summary_seq(s)
    if behind <= CATCH_UP_AT:
        return 0
    with db.write() as s:
        return catch_up(s, limit=CATCH_UP_MAX)


def cube(s: Session, lo, hi, first_day: str, last_day: str):
    """Rows (day, actor_id, username, role, entries, views, exports, denials, grants, vh00..vh23)
    for the Shanghai days first_day..last_day (UTC instants [lo, hi)): the summary's rows and the
    entries after its seq, in one statement. A (day, actor) may come twice: add them up."""
    done = summary_seq(s)  # a bound for the planner; the statement reads the seq itself
    seq_now = _seq_now()
    kept = select(*(AD.c[k] for k in KEYS), *(AD.c[n] for n in AUDIT_DAY_FIGURES)).where(
        AD.c.day >= first_day, AD.c.day <= last_day)
    tail = _grouped(AuditEvent.seq > done, AuditEvent.seq > seq_now, _in_span(lo, hi))
    return s.execute(union_all(kept, tail)).all()


def _seq_now():
    return func.coalesce(select(ADH.c.seq).where(ADH.c.id == 1).scalar_subquery(), 0)


def files_viewed(s: Session, lo, hi, base_day: str, recent_day: str, last_day: str):
    """A subquery (actor_username, recent, before): per user, the files viewed (allowed) each day,
    added up over the Shanghai days recent_day..last_day and base_day..the day before recent_day
    ([lo, hi) in UTC for the whole span): a file counts once a day. audit_file_day's days, plus
    the files of the entries after its seq that audit_view_day does not hold for their day (one
    statement, one snapshot)."""
    recent = func.coalesce(func.sum(case((AFD.c.day >= recent_day, AFD.c.files), else_=0)), 0)
    before = func.coalesce(func.sum(case((AFD.c.day < recent_day, AFD.c.files), else_=0)), 0)
    kept = (select(AFD.c.actor_username, recent.label("recent"), before.label("before"))
            .where(AFD.c.day >= base_day, AFD.c.day <= last_day).group_by(AFD.c.actor_username))
    tail = _new_file_days(AuditEvent.seq > summary_seq(s), AuditEvent.seq > _seq_now(), _in_span(lo, hi))
    new = (select(tail.c.actor_username,
                  func.sum(case((tail.c.day >= recent_day, 1), else_=0)).label("recent"),
                  func.sum(case((tail.c.day < recent_day, 1), else_=0)).label("before"))
           .where(tail.c.day >= base_day, tail.c.day <= last_day).group_by(tail.c.actor_username))
    both = union_all(kept, new).subquery("both")
    return (select(both.c.actor_username, cast(func.sum(both.c.recent), Integer).label("recent"),
                   cast(func.sum(both.c.before), Integer).label("before"))
            .group_by(both.c.actor_username).subquery("files"))
