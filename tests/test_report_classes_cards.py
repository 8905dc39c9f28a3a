"""The card tracking summary (card_month) and the class window summary (class_member, class_count),
kept in the transactions of the facts: after the seeded mix of test_report_rollup plus card steps
(loss, replacement, freeze, renewal, cancellation), each equals its rebuild from the facts, and the
card tracking and classes/RFM pages give the same figures from them as from the live queries."""
from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select

from portal.membership import cards as card_steps, jobs, members
from portal.membership.models import MemberCard, Membership
from portal.reports import card_rollup, cards, class_window, classes, summary_scope
from portal.reports.filters import Period, ReportFilter, month_period
from portal.reports.models import CardIssue, CardMonth, ClassCount, ClassMember, ClassState

from .test_report_rollup import REFUSED, _play

SH = timezone(timedelta(hours=8))


def _cards_summary(s) -> tuple:
    return ({(r.month, r.owner_id, r.unit_path, r.tier, r.kind): r.n for r in s.scalars(select(CardMonth)) if r.n},
            {r.card_id: (r.membership_id, r.issued_on, r.number, r.owner_id, r.unit_path, r.tier)
             for r in s.scalars(select(CardIssue))})


def _class_summary(s) -> tuple:
    members = {r.membership_id: (r.customer_id, r.file_no, r.owner_id, r.unit_path, r.tier, int(r.spend_fen),
                                 r.purchases, r.last_on, r.cls, r.r, r.f) for r in s.scalars(select(ClassMember))}
    counts = {(r.owner_id, r.unit_path, r.tier, r.cls, r.r, r.f): (r.members, int(r.spend_fen), r.purchases)
              for r in s.scalars(select(ClassCount)) if r.members or r.spend_fen or r.purchases}
    return members, counts


def _card_steps(db, story, clock_at, day: datetime) -> set[str]:
    """A loss, a replacement, a freeze, a renewal and a cancellation on the members' cards."""
    done = set()
    with db.read() as s:
        numbers = list(s.scalars(select(MemberCard.number).where(MemberCard.status == "current")
                                 .order_by(MemberCard.number)))
    steps = [("renew", "bob"), ("freeze", "bob"), ("loss", "bob"), ("replace", "bob"),
             ("cancel", "bob"), ("freeze", "bob")]
    for i, (kind, who) in enumerate(steps):
        clock_at(day + timedelta(days=i))
        number = numbers[i % len(numbers)]
        try:
            with db.write() as s:
                actor = story.actor(db, who)
                if kind == "freeze":
                    card_steps.freeze(s, actor, number, "customer asked for it")
                elif kind == "loss":
                    card_steps.report_loss(s, actor, number, "customer lost the card")
                elif kind == "replace":
                    card_steps.replace(s, actor, number, "worn card to replace")
                elif kind == "renew":
                    card_steps.renew(s, actor, number, "renewal at the desk")
                else:
                    card_steps.cancel(s, actor, number, "customer left the programme")
        except REFUSED:
            continue
        done.add(kind)
    return done


def test_the_card_and_class_summaries_equal_the_facts_and_the_pages_read_the_same(db, vault, story, clock_at,
                                                                                  monkeypatch):
    months = _play(db, vault, story, clock_at, seed=29)
    steps = _card_steps(db, story, clock_at, datetime(2026, 6, 10, 4, tzinfo=timezone.utc))
    assert {"freeze", "renew"} <= steps, steps
    # A tier change and a reassignment after the last refresh of the class window (kept by the use cases).
    with db.write() as s:
        f = uuid.UUID(story.files["alice"][0])
        m = s.scalar(select(Membership).where(Membership.customer_id == f))
        if m is not None:
            members.set_tier(s, story.actor(db, "bob"), f, tier="gold", reason="a leader's decision")
    with db.read() as s:
        kept_cards, kept_classes = _cards_summary(s), _class_summary(s)
        as_of = s.get(ClassState, 1).as_of
        assert any(k[4] == "freeze" for k in kept_cards[0]) and kept_cards[1] and kept_classes[0]
    with db.write() as s:
        card_rollup.rebuild(s)
        class_window.rebuild(s, as_of)
    with db.read() as s:
        assert _cards_summary(s) == kept_cards
        assert _class_summary(s) == kept_classes

    periods = [Period("year", date(2026, 1, 1), date(2026, 12, 31)),
               Period("quarter", date(2026, 1, 1), date(2026, 3, 31))]
    periods += [month_period(int(mo[:4]), int(mo[5:])) for mo in months]
    clock_at(datetime.combine(as_of, time(12), SH).astimezone(timezone.utc))  # "today" is the summary's day
    for reader in ("bob", "alice", "grace"):
        for p in periods:
            for tier in ("", "regular", "gold"):
                f = ReportFilter(p, tier=tier)
                with db.read() as s:
                    actor = story.actor(db, reader)
                    assert cards._summary_where(actor, f) is not None
                    got_cards = cards.cards(s, actor, f)
                    got_classes = classes.classes(s, actor, f)
                    assert got_classes.extra["from_summary"] == (p.start <= as_of <= p.end)
                    with monkeypatch.context() as mp:
                        mp.setattr(cards, "_summary_where", lambda *a, **k: None)
                        mp.setattr(summary_scope, "scope_arms", lambda *a, **k: None)
                        mp.setattr(class_window, "current", lambda *a, **k: False)
                        want_cards = cards.cards(s, actor, f)
                        want_classes = classes.classes(s, actor, f)
                        assert not want_classes.extra["from_summary"]
                for got, want in ((got_cards, want_cards), (got_classes, want_classes)):
                    for t in want.tables:
                        assert got.table(t.key).rows == t.rows, (reader, p, tier, t.key)
                assert got_cards.extra["issued_total"] == want_cards.extra["issued_total"]
                assert got_classes.extra["lists"] == want_classes.extra["lists"], (reader, p, tier)


def test_the_daily_job_moves_the_class_window_to_its_day(db, vault, story, clock_at):
    _play(db, vault, story, clock_at, seed=7)
    day = date(2026, 7, 1)
    jobs.run_daily(db, day)
    with db.read() as s:
        assert s.get(ClassState, 1).as_of == day
        n = len(_class_summary(s)[0])
        active = len(s.scalars(select(Membership.id).where(Membership.status == "active")).all())
        assert n == active and n


def test_the_migrations_backfill_writes_what_the_rebuild_writes(db, story):
    """Migration 0031's self-contained SQL fills card_month and card_issue as card_rollup.rebuild does."""
    import importlib.util
    from pathlib import Path

    from sqlalchemy import text

    from .report_fixture import build_book
    build_book(db, story)  # rebuilds the summaries from the facts
    path = Path(__file__).resolve().parents[1] / "migrations" / "versions" / "0031_card_month_class_window.py"
    spec = importlib.util.spec_from_file_location("m0031", path)
    mig = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mig)
    with db.read() as s:
        want = _cards_summary(s)
        assert want[0] and want[1]
    with db.write() as s:
        s.execute(CardMonth.__table__.delete())
        s.execute(CardIssue.__table__.delete())
        dialect = s.get_bind().dialect.name
        s.execute(text(mig._backfill_sql(dialect)))
        s.execute(text(mig.CARD_ISSUE_SQL))
    with db.read() as s:
        assert _cards_summary(s) == want
