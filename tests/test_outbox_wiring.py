"""What other parts of the portal tell members goes through the outbox, in the same transaction as
the event that causes it: event invitations (marketing: only with consent), a place freed on the
waiting list, and a complaint's reply when the member is told by SMS or e-mail."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.events import invitations, registrations
from portal.membership.rules import programme_today
from portal.messages.models import OutboxMessage
from portal.service import complaints

from .factories import stored_values
from .messaging import new_member
from .test_events import JUNE_1, JUNE_5, make_event


def outbox(db, kind: str) -> list[OutboxMessage]:
    with db.read() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


def card_of(db, fid) -> str:
    from portal.membership import members
    with db.read() as s:
        m = members.membership_of(s, fid)
        return members.current_card(s, members.primary_account(s, m).id).number


def test_an_invitation_reaches_only_members_who_agreed_to_marketing_once(db, vault, story, clock_at):
    clock_at(JUNE_1)
    agreed = new_member(db, vault, story, n=51, marketing=True)
    new_member(db, vault, story, n=52)  # no marketing consent
    ev = make_event(db, story)
    bob = story.actor(db, "bob")
    for _ in range(2):  # inviting again invites nobody twice
        with db.write() as s:
            invitations.send_invitations(s, bob, ev)
    sent = outbox(db, "event_invitation")
    assert [m.customer_id for m in sent] == [agreed]
    assert sent[0].reference == f"event:{ev}"


def test_a_member_promoted_from_the_waiting_list_is_told(db, vault, story, clock_at):
    clock_at(JUNE_1)
    first, second = (new_member(db, vault, story, n=n) for n in (53, 54))
    ev = make_event(db, story, capacity=1)
    alice = story.actor(db, "alice")
    clock_at(JUNE_5)  # registration is open to regular members
    with db.write() as s:
        held = registrations.register(s, alice, ev, card_of(db, first))
        registrations.register(s, alice, ev, card_of(db, second))
    assert outbox(db, "event_notice") == []
    with db.write() as s:
        registrations.cancel(s, alice, ev, held.registration_id)
    [notice] = outbox(db, "event_notice")
    assert notice.customer_id == second


def _told(db, vault, story, fid, how: str, reply: str) -> int:
    from portal.customers.models import CustomerFile
    with db.read() as s:
        number = s.get(CustomerFile, fid).file_no
    cathy = story.actor(db, "cathy")
    with db.write() as s:
        cid = complaints.record_complaint(s, vault, cathy, {
            "member": number, "channel": "hotline", "kind": "delivery", "content": "礼盒破损",
            "promised_on": (programme_today() + timedelta(days=3)).isoformat()}).id
    for step, form in (("investigate", dict(passed_to="物流部", finding="运输挤压", cause="logistics",
                                             responsible="承运商")),
                       ("propose", dict(resolution="更换礼盒")), ("tell", dict(how=how, reply=reply))):
        with db.write() as s:
            complaints.take_step(s, vault, cathy, cid, step, form)
    return cid


def test_a_complaint_reply_told_by_sms_goes_out_encrypted_and_by_phone_does_not(db, vault, story):
    fid = new_member(db, vault, story, n=55)
    _told(db, vault, story, fid, "phone", "电话致歉并更换")
    assert outbox(db, "complaint_reply") == []
    reply = "新礼盒已于今日寄出，单号另行短信告知"
    _told(db, vault, story, fid, "sms", reply)
    [msg] = outbox(db, "complaint_reply")
    assert msg.customer_id == fid and msg.purpose == "service"
    assert reply.encode() not in b"".join(stored_values(db))
