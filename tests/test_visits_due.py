"""The visits due, read from ``membership.visit_base_on`` by index walks: earliest first over
every member in scope (not only over the rows a limit fetched), moved at once by a tier or a
setting change, counted up to a cap for the home page, and the migration's backfill gives the
same day the portal keeps."""
from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, text

from portal.accounts.actor import Actor
from portal.membership import members as membership
from portal.membership.models import Membership
from portal.membership.rules import programme_today
from portal.service import settings, visits

from .test_member_service import make_member

VISIT = {"kind": "phone", "satisfaction": "4", "outcome": "满意"}
# (owner, n, tier, joined days ago): due days ago = joined - interval (platinum 30, gold 91, silver
# 182); made in the reverse of their due order, so rows fetched without an order come out latest first,
# two of them due the same day (the file number decides, also at the limit).
MEMBERS = [("bob", 0, "gold", 95), ("charlie", 1, "silver", 190), ("alice", 2, "platinum", 38),
           ("charlie", 0, "gold", 120), ("alice", 1, "silver", 230), ("alice", 0, "platinum", 100)]




def due(db, story, user, **kw):
    with db.write() as s:
        return [(v.customer_id, v.due_on, v.file_no) for v in visits.due_visits(s, story.actor(db, user), **kw)]


def test_the_due_list_is_earliest_first_across_more_members_than_its_limit(db, story):
    fids = [make_member(db, story, *m) for m in MEMBERS]
    everyone = due(db, story, "grace", ahead_days=0)  # grace leads both units (755A, 755B)
    assert {f for f, _, _ in everyone} == set(fids)
    assert [(d, no) for _, d, no in everyone] == sorted((d, no) for _, d, no in everyone)
    today = programme_today()
    every = {"silver": 182, "gold": 91, "platinum": 30}
    assert [d for _, d, _ in everyone] == sorted(today - timedelta(days=j - every[t]) for _, _, t, j in MEMBERS)
    for limit in (1, 2, 3, 4, 5):
        assert due(db, story, "grace", ahead_days=0, limit=limit) == everyone[:limit]
    assert [f for f, _, _ in everyone] == fids[::-1]
    # bob (leader of 755A, and owner of a file there): his unit's, each once; alice: her own.
    bobs, alices = {fids[0], fids[2], fids[4], fids[5]}, {fids[2], fids[4], fids[5]}
    assert due(db, story, "bob", ahead_days=0) == [r for r in everyone if r[0] in bobs]
    assert due(db, story, "alice", ahead_days=0, limit=2) == [r for r in everyone if r[0] in alices][:2]
    with db.read() as s:
        assert visits.due_count(s, story.actor(db, "grace"), today) == 6
        assert visits.due_count(s, story.actor(db, "grace"), today, cap=4) == 4
        assert visits.due_count(s, story.actor(db, "henry"), today) == 0


def test_a_setting_or_a_tier_change_moves_who_is_due(db, story):
    gold = make_member(db, story, "alice", 0, "gold", 20)
    silver = make_member(db, story, "alice", 1, "silver", 100)
    assert due(db, story, "alice", ahead_days=0) == []
    form = settings.form_values(settings.DEFAULTS) | {"every_gold": "10"}
    with db.write() as s:
        settings.save_version(s, story.actor(db, "bob"), settings.from_form(form), programme_today(),
                              "金卡每十天回访")
    today = programme_today()
    assert [(f, d) for f, d, _ in due(db, story, "alice", ahead_days=0)] == [(gold, today - timedelta(days=10))]
    with db.write() as s:
        s.scalar(select(Membership).where(Membership.customer_id == silver)).tier = "gold"
    assert [f for f, _, _ in due(db, story, "alice", ahead_days=0)] == [silver, gold]
    with db.read() as s:
        assert visits.due_count(s, story.actor(db, "bob"), today) == 2
    # A later version (from tomorrow) changes nothing today and moves them tomorrow.
    form |= {"every_gold": "0"}
    with db.write() as s:
        settings.save_version(s, story.actor(db, "bob"), settings.from_form(form), today + timedelta(days=1),
                              "金卡不再定期回访")
    assert len(due(db, story, "alice", ahead_days=0)) == 2
    assert due(db, story, "alice", today=today + timedelta(days=1), ahead_days=0) == []


def _bases(s) -> dict:
    return dict(s.execute(select(Membership.customer_id, Membership.visit_base_on)).all())


def test_the_visit_base_follows_visits_and_rejoining_and_the_backfill_gives_the_same(db, vault, story):
    today = programme_today()
    a, b, c = (make_member(db, story, "alice", n, "gold", 200) for n in range(3))
    with db.write() as s:
        actor = story.actor(db, "alice")
        visits.record_visit(s, vault, actor, a, {**VISIT, "reason": "schedule",
                                                 "visited_on": (today - timedelta(days=3)).isoformat()})
        # A visit recorded late, after a later one, does not move the base back.
        visits.record_visit(s, vault, actor, a, {**VISIT, "reason": "schedule",
                                                 "visited_on": (today - timedelta(days=20)).isoformat()})
        visits.record_visit(s, vault, actor, b, {**VISIT, "reason": "schedule",
                                                 "visited_on": (today - timedelta(days=25)).isoformat()})
        m = s.scalar(select(Membership).where(Membership.customer_id == c))
        m.status = "ended"
    with db.write() as s:  # c rejoins today: its base is its new joining day (never visited)
        membership.enrol(s, Actor.system("test"), c, cause="import")
    with db.read() as s:
        kept = _bases(s)
    assert kept == {a: today - timedelta(days=3), b: today - timedelta(days=25), c: today}
    assert [f for f, _, _ in due(db, story, "alice", ahead_days=90)] == [b, a]

    versions = Path(__file__).resolve().parents[1] / "migrations" / "versions"
    spec = importlib.util.spec_from_file_location("m0034", versions / "0034_membership_visit_base.py")
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with db.write() as s:
        s.execute(text("UPDATE membership SET visit_base_on = NULL"))
        s.execute(text(migration.BACKFILL_SQL))
    with db.read() as s:
        assert _bases(s) == kept


def test_the_home_page_shows_99_plus_once_the_bounded_count_reaches_its_cap():
    from jinja2 import Environment, FileSystemLoader

    from portal.home.member_service import ServiceTiles
    from portal.service.due import COUNT_CAP

    env = Environment(loader=FileSystemLoader(Path(__file__).resolve().parents[1] / "templates"),
                      extensions=["jinja2.ext.i18n"], autoescape=True)
    env.install_null_translations(newstyle=True)
    tile = env.get_template("home/_service.html")

    def figure(n):
        return tile.render(service=ServiceTiles(visits_due=n)).split('class="figure">')[1].split("<")[0]
    assert (figure(COUNT_CAP), figure(99), figure(0)) == ("99+", "99", "0")
