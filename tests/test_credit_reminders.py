"""The daily overdue reminder: one inbox notice per salesperson with overdue orders and one per
leader above them, once per day, even with two processes running the job at the same moment."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select

from portal import clock, i18n
from portal.credit import receivables
from portal.credit.models import ReminderRun
from portal.credit.reminders import post_overdue_reminders
from portal.inbox.models import Notice
from portal.membership.rules import programme_today

from .test_credit import add_products, at, grant, sell, shop  # noqa: F401 - the fixture


def overdue_orders(db, vault, story, receipts=("RM-1", "RM-2")):
    """alice's client buys on credit today; each order is delivered at once (due in 20 days)."""
    fid = grant(db, story)
    for receipt in receipts:
        oid = sell(db, vault, story, fid, 1, receipt)
        with db.write() as s:
            receivables.deliver(s, story.actor(db, "alice"), oid)


def notices(db) -> dict[str, list[dict]]:
    with db.read() as s:
        rows = list(s.scalars(select(Notice).where(Notice.kind == "credit.overdue").order_by(Notice.id)))
    out: dict[str, list[dict]] = {}
    for n in rows:
        out.setdefault(n.user_id, []).append({"message": n.message, **json.loads(n.params)})
    return out


def run(db, day):
    with db.write() as s:
        return post_overdue_reminders(s, day)


def test_salespeople_and_their_leaders_are_reminded_once_a_day(db, vault, story, shop, clock_at):
    overdue_orders(db, vault, story)
    assert run(db, date(2026, 3, 30)).salespeople == 0  # due today: not overdue yet
    clock_at(at(2026, 4, 4))
    report = run(db, date(2026, 4, 4))  # five days overdue
    assert (report.already_done, report.salespeople, report.leaders) == (False, 1, 2)
    got = notices(db)
    u = story.users
    assert set(got) == {u["alice"], u["bob"], u["grace"]}  # not charlie, henry or frank: nothing of theirs
    [alice] = got[u["alice"]]
    assert (alice["count"], alice["amount"], alice["days"]) == (2, "¥17,988.00", 5)
    [bob] = got[u["bob"]]
    assert (bob["count"], bob["people"]) == (2, 1)
    token = i18n.current_locale.set("zh_CN")
    try:
        text = i18n.gettext(alice["message"], **{k: v for k, v in alice.items() if k != "message"})
    finally:
        i18n.current_locale.reset(token)
    assert "¥17,988.00" in text and "逾期" in text
    again = run(db, date(2026, 4, 4))
    assert again.already_done and notices(db) == got
    assert run(db, date(2026, 4, 5)).salespeople == 1  # the next day: a new reminder
    with db.read() as s:
        assert [r.day for r in s.scalars(select(ReminderRun).order_by(ReminderRun.day))] == \
            [date(2026, 3, 30), date(2026, 4, 4), date(2026, 4, 5)]


def _job(settings) -> subprocess.Popen:
    env = {**os.environ, "PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file)}
    return subprocess.Popen([sys.executable, "-m", "portal.cli", "jobs", "overdue-reminders"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_at_once_post_one_reminder_each(settings, db, vault, story, clock_at):
    # The processes run on the real clock: orders delivered 30 days ago are 10 days overdue today.
    clock_at(datetime.now(timezone.utc) - timedelta(days=30))
    add_products(db, story)
    overdue_orders(db, vault, story, receipts=("RP-1",))
    clock.set_now(None)
    db.dispose()
    procs = [_job(settings) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sorted("already posted" in out for out, _ in outs) == [False, True], outs
    got = notices(db)
    assert sorted(len(v) for v in got.values()) == [1, 1, 1]  # alice, bob, grace: one each
    with db.read() as s:
        assert [r.day for r in s.scalars(select(ReminderRun))] == [programme_today()]
