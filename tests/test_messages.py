"""Messages to members: written with the event that causes them, sent once, retried, held in the
quiet hours, never marketing without consent, always with a way to opt out."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from portal import clock
from portal.consent import service as consent
from portal.membership import points
from portal.membership.members import membership_of, primary_account
from portal.membership.rules import programme_today
from portal.messages import contact, occasions, outbox, sender
from portal.messages.channels import PermanentFailure, TransientFailure
from portal.messages.channels.sms_file import FileSms, read
from portal.messages.channels.smtp import MaildirMail, SmtpMail
from portal.messages.models import OutboxMessage
from portal.messages.rules import DEFAULT_RULES, MessageRules, save_rules

from .factories import stored_values
from .messaging import SmtpServer, new_member


def at_shanghai(y, m, d, h, minute=0) -> datetime:
    return datetime(y, m, d, h - 8, minute, tzinfo=timezone.utc) if h >= 8 else \
        datetime(y, m, d, h, minute, tzinfo=timezone.utc) - timedelta(hours=8)


def messages(db, **where) -> list[OutboxMessage]:
    with db.read() as s:
        q = select(OutboxMessage).order_by(OutboxMessage.id)
        for k, v in where.items():
            q = q.where(getattr(OutboxMessage, k) == v)
        return list(s.scalars(q))


@pytest.fixture(autouse=True)
def daytime(clock_at):
    """Outside the quiet hours unless a test says otherwise (SMS wait for 08:00 Shanghai)."""
    today = programme_today()
    clock_at(at_shanghai(today.year, today.month, today.day, 10))


class Recorder:
    """A channel that keeps what it was given, or fails as told."""

    def __init__(self, fail=None):
        self.sent, self.fail = [], fail

    def send(self, msg):
        if self.fail is not None:
            raise self.fail
        self.sent.append(msg)
        return f"rec-{msg.message_id}"


def send(db, vault, sms=None, email=None):
    return sender.send_due(db, vault, {"sms": sms or Recorder(), "email": email or Recorder()},
                           public_url="https://portal.example")


# ---------------------------------------------------------------- written with the event

def test_joining_writes_a_notice_with_the_card_number_and_no_password(db, vault, story, tmp_path):
    fid = new_member(db, vault, story, email_addr="wang@example.com", channel="email")
    [msg] = messages(db, customer_id=fid)
    assert (msg.kind, msg.channel, msg.purpose, msg.status) == ("joining", "email", "service", "pending")
    mail = MaildirMail(tmp_path / "mail")
    report = send(db, vault, email=mail)
    assert report.sent == 1
    [body] = [m.get_payload(decode=True).decode() for m in mail_box(tmp_path / "mail")]
    with db.read() as s:
        card = json.loads(s.get(OutboxMessage, msg.id).context)["card_number"]
    assert card in body and "密码" in body and "/optout/" in body  # says no password is sent


def mail_box(path):
    import mailbox
    return list(mailbox.Maildir(str(path), create=False))


def test_the_same_occasion_is_written_once(db, vault, story):
    fid = new_member(db, vault, story)
    with db.write() as s:
        first = outbox.enqueue(s, customer_id=fid, kind="event_notice", purpose="service",
                               context={"event_title": "品鉴会"}, reference="event:1")
        again = outbox.enqueue(s, customer_id=fid, kind="event_notice", purpose="service",
                               context={"event_title": "品鉴会"}, reference="event:1")
    assert first is not None and again is None
    assert len(messages(db, customer_id=fid, kind="event_notice")) == 1


def test_outbox_bodies_and_addresses_are_ciphertext(db, vault, story, tmp_path):
    fid = new_member(db, vault, story, n=41, email_addr="li.na@example.com", channel="email")
    with db.write() as s:
        outbox.enqueue(s, customer_id=fid, kind="complaint_reply", purpose="service", vault=vault,
                       context={"complaint_no": "C-7"}, reference="complaint:7:1", text="退款已于今日办理")
    send(db, vault, email=MaildirMail(tmp_path / "mail"))
    dump = b"\n".join(stored_values(db))
    for plain in ("li.na@example.com", "13900130041", "退款已于今日办理", "李娜"):
        assert plain.encode() not in dump
    assert all(m.status == "sent" and m.body_ct for m in messages(db, customer_id=fid))


# ---------------------------------------------------------------- consent

def test_a_member_without_marketing_consent_gets_no_care_message(db, vault, story, tmp_path):
    yes = new_member(db, vault, story, n=42, marketing=True)
    no = new_member(db, vault, story, n=43)
    bob = story.actor(db, "bob")
    with db.write() as s:
        written, skipped = occasions.send_care(s, bob, month="2026-11", offer_zh="新品八折。", offer_en="New wines 20% off.")
    assert [m.customer_id for m in messages(db, kind="care")] == [yes]
    sms = FileSms(tmp_path / "sms.jsonl")
    send(db, vault, sms=sms)
    texts = [m["text"] for m in read(tmp_path / "sms.jsonl")]
    assert sum("会员关怀" in t for t in texts) == 1 and all(t.endswith("回T退订") for t in texts)
    assert not messages(db, kind="care", customer_id=no)


def test_a_withdrawal_after_writing_suppresses_the_message(db, vault, story):
    fid = new_member(db, vault, story, n=44, marketing=True)
    with db.write() as s:
        outbox.enqueue(s, customer_id=fid, kind="care", purpose="marketing", context={}, reference="care:2026-11")
        consent.record(s, story.actor(db, "alice"), fid, channel="sms", purpose="marketing", given=False,
                       method="phone")
    sms = Recorder()
    report = send(db, vault, sms=sms)
    assert report.suppressed == 1 and all(m.kind != "care" for m in [o for o in messages(db, status="sent")])
    assert [m.status for m in messages(db, kind="care")] == ["suppressed"]


def test_consent_history_is_append_only_in_the_database(db, vault, story):
    fid = new_member(db, vault, story, n=45, marketing=True)
    with pytest.raises(Exception):
        with db.write() as s:
            s.execute(text("UPDATE consent_record SET given = false"))
    with pytest.raises(Exception):
        with db.write() as s:
            s.execute(text("DELETE FROM consent_record"))
    with db.read() as s:
        assert consent.current(s, fid)[("sms", "marketing")].given is True


def test_the_opt_out_link_records_the_withdrawal(db, vault, story):
    fid = new_member(db, vault, story, n=46, marketing=True)
    with db.write() as s:
        mid = outbox.enqueue(s, customer_id=fid, kind="care", purpose="marketing", context={}, reference="care:x")
        token = outbox.opt_out_token(vault, mid)
        assert contact.opt_out(s, vault, token[:-1] + ("0" if token[-1] != "0" else "1")) is None
        contact.opt_out(s, vault, token)
    with db.read() as s:
        state = consent.current(s, fid)[("sms", "marketing")]
        assert state.given is False and state.record.method == "sms_reply" and state.record.message_id == mid
        assert consent.allows(s, fid, "sms", "service")


def test_an_sms_reply_T_withdraws_sms_for_every_purpose(db, vault, story):
    fid = new_member(db, vault, story, n=47, marketing=True)
    with db.write() as s:
        assert contact.sms_reply(s, vault, "+86 139 0013 0047", "t") == 1
    with db.read() as s:
        assert not consent.allows(s, fid, "sms", "marketing") and not consent.allows(s, fid, "sms", "service")


# ---------------------------------------------------------------- sending rules

def test_no_sms_in_the_quiet_hours(db, vault, story, clock_at):
    clock_at(at_shanghai(2026, 11, 20, 22))
    new_member(db, vault, story, n=48)
    sms = Recorder()
    report = send(db, vault, sms=sms)
    assert sms.sent == [] and report.held == {"sms": "quiet hours"}
    clock_at(at_shanghai(2026, 11, 21, 7, 59))
    assert send(db, vault, sms=sms).sent == 0
    clock_at(at_shanghai(2026, 11, 21, 8, 0))
    assert send(db, vault, sms=sms).sent == 1


def test_a_failed_send_is_retried_with_backoff_then_fails(db, vault, story, clock_at):
    t0 = at_shanghai(2026, 11, 20, 10)
    clock_at(t0)
    with db.write() as s:
        save_rules(s, story.actor(db, "erin"), MessageRules(max_attempts=3, backoff_seconds=60), note="test")
    new_member(db, vault, story, n=49)
    down = Recorder(fail=TransientFailure("gateway unreachable"))
    assert send(db, vault, sms=down).retried == 1
    [m] = messages(db)
    assert (m.status, m.attempts, m.next_attempt_at) == ("pending", 1, t0 + timedelta(seconds=60))
    clock_at(t0 + timedelta(seconds=30))
    assert send(db, vault, sms=down).retried == 0  # not due yet
    clock_at(t0 + timedelta(seconds=61))
    assert send(db, vault, sms=down).retried == 1
    assert messages(db)[0].next_attempt_at == t0 + timedelta(seconds=61 + 120)
    clock_at(t0 + timedelta(seconds=61 + 121))
    assert send(db, vault, sms=down).failed == 1
    assert (messages(db)[0].status, messages(db)[0].attempts) == ("failed", 3)


def test_a_refused_address_is_not_retried(db, vault, story):
    new_member(db, vault, story, n=50)
    assert send(db, vault, sms=Recorder(fail=PermanentFailure("gateway 400 isv.MOBILE_NUMBER_ILLEGAL"))).failed == 1
    assert messages(db)[0].status == "failed"


def test_a_channel_gets_no_more_than_its_rate_per_minute(db, vault, story, clock_at):
    t0 = at_shanghai(2026, 11, 20, 10)
    clock_at(t0)
    with db.write() as s:
        save_rules(s, story.actor(db, "erin"), MessageRules(sms_per_minute=2), note="test")
    for n in range(51, 54):
        new_member(db, vault, story, n=n)
    sms = Recorder()
    assert send(db, vault, sms=sms).sent == 2
    assert send(db, vault, sms=sms).sent == 0
    clock_at(t0 + timedelta(seconds=61))
    assert send(db, vault, sms=sms).sent == 1


def test_rules_refuse_nonsense():
    with pytest.raises(ValueError):
        MessageRules(quiet_start="25:00")
    with pytest.raises(ValueError):
        MessageRules(sms_per_minute=0)
    assert DEFAULT_RULES.quiet("sms", at_shanghai(2026, 1, 1, 21)) and not DEFAULT_RULES.quiet("email", at_shanghai(2026, 1, 1, 23))


# ---------------------------------------------------------------- the SMS gateway adapter

class _Gateway:
    """A tiny HTTP server answering like a Chinese SMS provider; keeps each request."""

    def __init__(self, answers):
        import http.server
        import threading

        self.requests, answers = [], list(answers)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                status, answer = answers.pop(0)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_the_http_sms_gateway_gets_a_signed_request_and_throttling_is_retried(db, vault, story):
    import base64
    import hashlib
    import hmac

    from portal.messages.channels.sms_http import HttpSmsGateway

    gw = _Gateway([(200, {"Code": "Throttling", "Message": "slow down"}),
                   (200, {"Code": "OK", "BizId": "9001^0", "RequestId": "r1"})])
    try:
        channel = HttpSmsGateway(gw.url, access_key="AK1", secret="s3cret", sign_name="会员中心")
        fid = new_member(db, vault, story, n=55, language="en")
        assert send(db, vault, sms=channel).retried == 1
        with db.write() as s:
            s.execute(text("UPDATE outbox_message SET next_attempt_at = created_at"))
        assert send(db, vault, sms=channel).sent == 1
    finally:
        gw.close()
    headers, body = gw.requests[-1]
    sent = json.loads(body)
    assert sent["PhoneNumbers"] == "+8613900130055" and sent["SignName"] == "会员中心"
    assert sent["Content"].startswith("[Members] Dear") and sent["Content"].endswith("Reply T to opt out.")
    auth = dict(part.strip().split("=", 1) for part in headers["Authorization"].split(" ", 1)[1].split(","))
    mac = hmac.new(b"s3cret", f"{auth['Timestamp']}\n{auth['Nonce']}\n".encode() + body, hashlib.sha256)
    assert auth["AccessKeyId"] == "AK1" and auth["Signature"] == base64.b64encode(mac.digest()).decode()
    [m] = messages(db, customer_id=fid)
    assert (m.status, m.provider_id, m.attempts) == ("sent", "9001^0", 2)
