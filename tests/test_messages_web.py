"""The pages of messages to members: consent on the file, the outbox, the care batch, the opt-out."""
from __future__ import annotations

import uuid

from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.consent import service as consent
from portal.messages import outbox
from portal.messages.models import OutboxMessage

from .browser import csrf_of, post, signed_in
from .messaging import new_member


def last_audit(db, action: str) -> AuditEvent:
    with db.read() as s:
        return s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq.desc())).first()


def test_alice_records_and_withdraws_marketing_consent_on_her_clients_file(client, db, vault, story):
    fid = uuid.UUID(story.files["alice"][0])
    signed_in(client, "alice")
    page = client.get(f"/customers/{fid}")
    assert f"/customers/{fid}/consent" in page.text
    r = post(client, f"/customers/{fid}/consent", {"channel": "sms", "purpose": "marketing", "given": "yes",
                                                    "method": "paper_form", "collected_name": "1",
                                                    "collected_mobile": "1", "note": "会员申请表"},
             from_page=f"/customers/{fid}/consent")
    assert r.status_code == 303
    with db.read() as s:
        state = consent.current(s, fid)[("sms", "marketing")]
        assert state.given and state.record.collected == "name,mobile"
        assert state.record.recorded_by_id == story.users["alice"]
    assert last_audit(db, "consent.given").actor_username == "alice"
    post(client, f"/customers/{fid}/consent", {"channel": "sms", "purpose": "marketing", "given": "no",
                                               "method": "phone"}, from_page=f"/customers/{fid}/consent")
    page = client.get(f"/customers/{fid}/consent")
    assert page.status_code == 200 and page.text.count("<tr>") >= 2
    with db.read() as s:
        assert not consent.allows(s, fid, "sms", "marketing") and len(consent.history(s, fid)) == 2
    assert last_audit(db, "messages.consent").actor_username == "alice"


def test_a_bad_email_address_is_refused_next_to_the_field(client, db, story):
    fid = uuid.UUID(story.files["alice"][0])
    signed_in(client, "alice")
    r = post(client, f"/customers/{fid}/contact", {"email": "not-an-address", "language": "en", "channel": "email"},
             from_page=f"/customers/{fid}/consent")
    assert r.status_code == 400 and 'data-error="email"' in r.text


def test_cathy_sees_the_outbox_with_masked_addresses(client, db, vault, story, tmp_path):
    fid = new_member(db, vault, story, n=70, email_addr="zhang.wei@example.com", channel="email")
    from portal.messages import sender
    from portal.messages.channels.smtp import MaildirMail
    sender.send_due(db, vault, {"email": MaildirMail(tmp_path / "m"), "sms": MaildirMail(tmp_path / "s")},
                    public_url="http://x")
    signed_in(client, "cathy")
    page = client.get("/outbox")
    assert page.status_code == 200
    assert "z***@example.com" in page.text and "zhang.wei@example.com" not in page.text
    assert last_audit(db, "messages.outbox").actor_username == "cathy"


def test_bob_previews_then_sends_the_care_message_only_to_consenting_members(client, db, vault, story):
    yes = new_member(db, vault, story, n=71, marketing=True)
    no = new_member(db, vault, story, n=72)
    signed_in(client, "bob")
    q = {"month": "2026-12", "offer_zh": "新品品鉴八折。", "offer_en": "New wines 20% off."}
    page = client.get("/messages/care", params=q)
    assert page.status_code == 200 and 'data-testid="care-preview"' in page.text
    assert "新品品鉴八折" in page.text and "回T退订" in page.text
    with db.read() as s:
        assert not list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "care")))  # a preview writes nothing
    r = client.post("/messages/care", data={**q, "_csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    with db.read() as s:
        care = list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "care")))
    assert [m.customer_id for m in care] == [yes]
    bad = client.get("/messages/care", params={**q, "month": "2026-13"})
    assert bad.status_code == 400 and 'data-error="month"' in bad.text


def test_a_member_opts_out_through_the_link_without_signing_in(client, db, vault, story):
    fid = new_member(db, vault, story, n=73, marketing=True)
    with db.write() as s:
        mid = outbox.enqueue(s, customer_id=fid, kind="care", purpose="marketing", context={}, reference="care:t")
    token = outbox.opt_out_token(vault, mid)
    page = client.get(f"/optout/{token}")
    assert page.status_code == 200
    r = client.post(f"/optout/{token}", data={"_csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/opted-out"
    with db.read() as s:
        assert not consent.allows(s, fid, "sms", "marketing") and consent.allows(s, fid, "sms", "service")
    assert last_audit(db, "consent.withdrawn").actor_username == "member"
    wrong = client.post(f"/optout/{mid}-{'0' * 32}", data={"_csrf": csrf_of(page.text)}, follow_redirects=False)
    assert wrong.status_code == 404


def test_the_outbox_filters_by_status(client, db, vault, story):
    new_member(db, vault, story, n=74)
    signed_in(client, "bob")
    page = client.get("/outbox", params={"status": "pending"})
    assert page.status_code == 200 and 'data-testid="outbox"' in page.text
    assert client.get("/outbox", params={"status": "sent"}).text.count("data-message=") == 0
