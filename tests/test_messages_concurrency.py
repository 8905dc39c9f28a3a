"""`portal jobs send` in several processes at once: every message reaches the SMTP server once."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta

from sqlalchemy import select

from portal.membership import points
from portal.membership.members import membership_of, primary_account
from portal.membership.rules import add_months, programme_today
from portal.messages.models import OutboxMessage

from .messaging import SmtpServer, new_member


def _jobs_send(settings, smtp_port: int, tmp_path) -> subprocess.Popen:
    env = {**os.environ, "PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file),
           "PORTAL_SMTP_HOST": "127.0.0.1", "PORTAL_SMTP_PORT": str(smtp_port), "PORTAL_SMTP_STARTTLS": "0",
           "PORTAL_SMTP_FROM": "会员中心 <members@example.com>", "PORTAL_SMS_FILE": str(tmp_path / "sms.jsonl"),
           "PORTAL_PUBLIC_URL": "https://portal.example"}
    return subprocess.Popen([sys.executable, "-m", "portal.cli", "jobs", "send", "--batch", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_birthday_wish_and_an_expiry_reminder_arrive_once_with_two_senders_at_once(settings, db, vault, story,
                                                                                     tmp_path):
    today = programme_today()  # the processes run on the real clock
    fid = new_member(db, vault, story, n=60, born=date(1992, today.month, today.day),
                     email_addr="wang.xm@example.com", channel="email")
    alice = story.actor(db, "alice")
    with db.write() as s:
        account = primary_account(s, membership_of(s, fid))
        # Earned two years (the validity) less ten days ago: expires in ten days.
        points.credit_points(s, alice, account, 300, kind="earn", on=add_months(today, -24) + timedelta(days=10))
    with SmtpServer() as smtp:
        procs = [_jobs_send(settings, smtp.port, tmp_path) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        subjects = smtp.inbox.subjects()
        assert subjects == sorted(["欢迎加入会员", "生日快乐", "积分即将到期提醒"]), outs
        ids = [m["X-Portal-Message"] for m in smtp.inbox.messages]
        assert len(set(ids)) == 3
        body = next(b for b in (m.get_payload(decode=True).decode() for m in smtp.inbox.messages) if "生日快乐" in b)
        assert "8.5折" in body and "https://portal.example/optout/" in body
        assert all(m["X-Rcpt"] == "wang.xm@example.com" for m in smtp.inbox.messages)
        # Running again writes and sends nothing new.
        again = _jobs_send(settings, smtp.port, tmp_path)
        out, _ = again.communicate(timeout=120)
        assert again.returncode == 0 and "sent 0" in out
        assert len(smtp.inbox.messages) == 3
    with db.read() as s:
        rows = list(s.scalars(select(OutboxMessage).where(OutboxMessage.customer_id == fid)))
    assert sorted((m.kind, m.status, m.attempts) for m in rows) == [
        ("birthday", "sent", 1), ("joining", "sent", 1), ("points_expiry", "sent", 1)]
