"""Building a generation of the class window summary (class_window.py) as of a day, in chunks.

``begin`` records the generation, its day and thresholds in ``class_build`` (or joins the build
already running for that day and thresholds: two processes share the chunks). Its one row is
always there (``as_of`` empty while no build runs), so a use case's ``refresh`` (which locks it for
share) and the build's transactions (which lock it for update) never miss each other. Each ``step`` adds
the next chunk of members by membership id (their rows and their counts) in its own short
transaction under the ``class_build`` row's lock; ``switch`` adds the last few members and points
``class_state`` at the new generation in one short transaction; ``purge`` then deletes the other
generations in chunks. The use cases' ``refresh`` keeps both the generation the reports read and
the chunks already built, so nothing they change while the build runs is lost. Readers filter by
``class_state.gen``: they see the old figures until the switch and the new ones after, never a mix.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from ..customers.models import CustomerFile
from ..membership.models import Membership, Purchase
from .class_window import (_BUILD, _STATE, COUNT_KEYS, COUNTS, Thresholds, locked_build, locked_state, paid_in,
                           scores_sql, window_for)
from .models import ClassCount as CC, ClassMember as CMB
from ..upsert import add_up

CHUNK = 1000          # members per chunk: about 60 ms of writing (measured at 100k files)
PURGE_CHUNK = 2000    # rows of an old generation deleted per transaction: about the same
YIELD_SECONDS = 0.003 # SQLite: the writer lock is not fair; a waiting page takes it between two chunks

MORE, LAST, GONE = "more", "last", "gone"

_MEMBER_COLS = ["gen", "membership_id", "customer_id", "file_no", "owner_id", "unit_path", "tier", "spend_fen",
                "purchases", "last_on", "cls", "r", "f"]


def _thresholds_values(t: Thresholds) -> dict:
    return {"window_months": t.window_months, "a_spend_fen": t.a_spend_fen, "b_spend_fen": t.b_spend_fen,
            "c_spend_fen": t.c_spend_fen, "a_purchases": t.a_purchases}


def begin(s: Session, as_of: date) -> int:
    """The generation to build as of ``as_of`` with the thresholds in force that day: the one
    being built already when it is for the same day and thresholds, else a new one (a build for
    another day is abandoned: its rows are deleted by ``purge``)."""
    from ..membership.programme import settings_on
    t = Thresholds.of_settings(settings_on(s, as_of))
    b = locked_build(s, share=False)
    if b is None:  # the migration writes the row; a database made otherwise gets it here
        from ..upsert import insert_for
        s.execute(insert_for(s)(_BUILD).values(id=1, gen=_next_gen(s), as_of=as_of, done_through=0,
                                               **_thresholds_values(t))
                  .on_conflict_do_nothing(index_elements=["id"]))
        b = locked_build(s, share=False)
    if b.as_of == as_of and Thresholds.of_state(b) == t:
        return b.gen
    gen = _next_gen(s)
    s.execute(_BUILD.update().where(_BUILD.c.id == 1).values(gen=gen, as_of=as_of, done_through=0,
                                                             **_thresholds_values(t)))
    return gen


def _next_gen(s: Session) -> int:
    """Above every generation named or still present (rows of an abandoned build included)."""
    seen = [s.scalar(select(func.max(_STATE.c.gen))), s.scalar(select(func.max(_BUILD.c.gen))),
            s.scalar(select(func.max(CMB.gen))), s.scalar(select(func.max(CC.gen)))]
    return max([g for g in seen if g is not None] + [0]) + 1


def _add_members(s: Session, gen: int, b, after: int, upto: int | None) -> None:
    """The rows of the active members with ids in (after, upto] (upto None: all above) and their counts."""
    t = Thresholds.of_state(b)
    w = window_for(b.as_of, t.window_months)
    where = [Membership.status == "active", Membership.id > after]
    if upto is not None:
        where.append(Membership.id <= upto)
    per = (select(Membership.id.label("mid"), Membership.customer_id.label("cid"), Membership.owner_id.label("owner"),
                  Membership.unit_path.label("path"), Membership.tier.label("tier"),
                  func.coalesce(func.sum(Purchase.paid_total_fen), 0).label("spend"),
                  func.count(Purchase.id).label("n"), func.max(Purchase.purchased_on).label("last"))
           .select_from(Membership).outerjoin(Purchase, paid_in(w)).where(*where)
           .group_by(Membership.id, Membership.customer_id, Membership.owner_id, Membership.unit_path,
                     Membership.tier).subquery())
    cls, r, f = scores_sql(per.c.spend, per.c.n, per.c.last, t, w)
    q = (select(literal(gen), per.c.mid, per.c.cid, CustomerFile.file_no, per.c.owner, per.c.path, per.c.tier,
                per.c.spend, per.c.n, per.c.last, cls, r, f).join(CustomerFile, CustomerFile.id == per.c.cid))
    s.execute(CMB.__table__.insert().from_select(_MEMBER_COLS, q))
    c = CMB.__table__.c
    grouped = (select(c.gen, c.owner_id, c.unit_path, c.tier, c.cls, c.r, c.f, func.count(), func.sum(c.spend_fen),
                      func.sum(c.purchases))
               .where(c.gen == gen, c.membership_id > after, *([c.membership_id <= upto] if upto is not None else []))
               .group_by(c.gen, c.owner_id, c.unit_path, c.tier, c.cls, c.r, c.f))
    if after == 0 and upto is None:  # the whole generation at once: no count of it exists yet
        s.execute(CC.__table__.insert().from_select(list(COUNT_KEYS) + list(COUNTS), grouped))
        return
    rows = [dict(zip(COUNT_KEYS + COUNTS, (g, o, p, tier, k, rr, ff, int(n), int(spend or 0), int(np or 0))))
            for g, o, p, tier, k, rr, ff, n, spend, np in s.execute(grouped)]
    add_up(s, CC, COUNT_KEYS, COUNTS, rows)


def step(s: Session, gen: int, chunk: int = CHUNK) -> str:
    """One chunk of ``chunk`` members of generation ``gen``: MORE when done and more remain, LAST
    when fewer than a chunk remain (``switch`` adds them), GONE when the build was abandoned."""
    b = locked_build(s, share=False)
    if b is None or b.as_of is None or b.gen != gen:
        return GONE
    upto = s.scalar(select(Membership.id).where(Membership.id > b.done_through).order_by(Membership.id)
                    .offset(chunk - 1).limit(1))
    if upto is None:
        return LAST
    _add_members(s, gen, b, b.done_through, upto)
    s.execute(_BUILD.update().where(_BUILD.c.id == 1).values(done_through=upto))
    return MORE


def switch(s: Session, gen: int) -> bool:
    """The remaining members, then ``class_state`` points at ``gen``; False when another process
    switched it in already or the build was abandoned."""
    st = locked_state(s, share=False)
    b = locked_build(s, share=False)
    if b is None or b.as_of is None or b.gen != gen:
        return False
    _add_members(s, gen, b, b.done_through, None)
    values = {"as_of": b.as_of, "gen": gen, "window_months": b.window_months, "a_spend_fen": b.a_spend_fen,
              "b_spend_fen": b.b_spend_fen, "c_spend_fen": b.c_spend_fen, "a_purchases": b.a_purchases}
    if st is None:
        s.execute(_STATE.insert().values(id=1, **values))
    else:
        s.execute(_STATE.update().where(_STATE.c.id == 1).values(**values))
    s.execute(_BUILD.update().where(_BUILD.c.id == 1).values(as_of=None))  # idle; the row stays
    return True


def _gens(s: Session, col) -> list[int]:
    """The distinct generations in a table, each found on the index (a handful at most)."""
    out: list[int] = []
    while True:
        q = select(func.min(col))
        g = s.scalar(q.where(col > out[-1]) if out else q)
        if g is None:
            return out
        out.append(g)


def purge(s: Session, limit: int = PURGE_CHUNK) -> int:
    """Delete up to about ``limit`` rows of the generations nobody reads or builds; the count deleted."""
    st, b = locked_state(s, share=True), locked_build(s, share=True)  # neither moves meanwhile
    keep = {x.gen for x in (st, b) if x is not None and x.as_of is not None}
    deleted = 0
    for table, key in ((CMB.__table__, "membership_id"), (CC.__table__, "owner_id")):
        c = table.c
        for g in _gens(s, c.gen):
            if g in keep:
                continue
            upto = s.scalar(select(c[key]).where(c.gen == g).order_by(c[key]).offset(limit - 1).limit(1))
            cond = [c.gen == g] + ([c[key] <= upto] if upto is not None else [])
            deleted += s.execute(table.delete().where(*cond)).rowcount or 0
            if deleted >= limit:
                return deleted
    return deleted


def rebuild(s: Session, as_of: date) -> None:
    """The whole generation, its switch and the old ones' deletion in the caller's one transaction."""
    gen = begin(s, as_of)
    switch(s, gen)
    while purge(s, 1_000_000_000):
        pass


@dataclass
class BuildReport:
    switched: bool = False     # False: a build for another day took over
    transactions: int = 0
    longest_s: float = 0.0     # the longest of its write transactions


def build_in_steps(db, as_of: date, *, chunk: int = CHUNK, purge_chunk: int = PURGE_CHUNK) -> BuildReport:
    """The daily job's rebuild: each chunk, the switch and each purge in its own short write
    transaction of ``db`` (a ``portal.db.Database``). Safe with several processes at once (they
    share the chunks; one switches)."""
    from ..membership import programme  # noqa: F401 (imported before the first lock is taken)
    out = BuildReport()

    @contextmanager
    def timed():
        if out.transactions and db.sqlite:
            time.sleep(YIELD_SECONDS)
        t0 = time.perf_counter()
        with db.write() as s:
            yield s
        out.transactions += 1
        out.longest_s = max(out.longest_s, time.perf_counter() - t0)

    with timed() as s:
        gen = begin(s, as_of)
    while True:
        with timed() as s:
            done = step(s, gen, chunk)
        if done == GONE:
            return out
        if done == LAST:
            break
    with timed() as s:
        out.switched = switch(s, gen) or s.scalar(select(_STATE.c.gen).where(_STATE.c.id == 1)) == gen
    while True:
        with timed() as s:
            if not purge(s, purge_chunk):
                return out
