"""Identity checks at the counter (seeds 002-004): a lost-card report, a replacement and a PIN
change need the holder's ID number, checked against the file's blind index; a mismatch is
refused, changes nothing and is audited."""
from __future__ import annotations

import html
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.customers.models import CustomerFile
from portal.membership import members
from portal.membership.models import MemberCard, Membership

from .browser import post, signed_in
from .factories import id_number_of, valid_id

WRONG_ID = valid_id(birth="19851111", seq="777")


def at(y, m, d, h=4):
    return datetime(y, m, d, h, tzinfo=timezone.utc)


@pytest.fixture
def en(client):
    client.headers["Accept-Language"] = "en"
    return client


@pytest.fixture
def card(db, story, clock_at):
    clock_at(at(2026, 3, 10))
    fid = uuid.UUID(story.files["alice"][0])
    with db.write() as s:
        m = members.enrol(s, story.actor(db, "alice"), fid, cause="application")
        return str(fid), members.current_card(s, members.primary_account(s, m).id).number


def card_status(db, number: str) -> str:
    with db.read() as s:
        return s.scalar(select(MemberCard.status).where(MemberCard.number == number))


def denials(db, action: str) -> list[AuditEvent]:
    with db.read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action,
                                                       AuditEvent.outcome == "denied")))


@pytest.mark.parametrize("step, path, extra", [
    ("loss", "/cards/loss", {"reason": "member lost the wallet"}),
    ("replace", "/cards/replace", {"reason": "card damaged at the till"}),
    ("pin", "/cards/pin", {"pin": "246810"}),
])
def test_a_wrong_id_number_is_refused_on_the_file_changes_nothing_and_is_audited(en, db, vault, card, step,
                                                                                 path, extra):
    fid, number = card
    signed_in(en, "alice")
    r = post(en, f"/customers/{fid}{path}", {"card": number, "id_number": WRONG_ID, **extra},
             from_page=f"/customers/{fid}")
    assert r.status_code == 400
    assert "does not match this card's holder" in html.unescape(r.text)
    assert card_status(db, number) == "current"
    with db.read() as s:
        assert s.scalar(select(Membership.pin_hash)) is None
    [denied] = denials(db, f"member.card.{step}")
    assert denied.object_id == number and WRONG_ID not in (denied.detail or "")


def test_no_id_number_is_asked_for_next_to_the_field(en, db, card):
    fid, number = card
    signed_in(en, "alice")
    r = post(en, f"/customers/{fid}/cards/loss", {"card": number, "reason": "member lost the wallet"},
             from_page=f"/customers/{fid}")
    assert r.status_code == 400 and 'data-error-for="id_number"' in r.text
    assert card_status(db, number) == "current"


def test_the_holders_own_id_number_lets_the_step_through(en, db, vault, card):
    fid, number = card
    signed_in(en, "alice")
    # Written as people do: lower-case x, spaces around it.
    holder = " " + id_number_of(db, vault, fid).lower() + " "
    r = post(en, f"/customers/{fid}/cards/loss", {"card": number, "reason": "member lost the wallet",
                                                  "id_number": holder}, from_page=f"/customers/{fid}")
    assert r.status_code == 303
    assert card_status(db, number) == "lost"


def test_a_file_without_an_id_number_on_record_cannot_pass(en, db, card):
    fid, number = card
    with db.write() as s:
        s.get(CustomerFile, uuid.UUID(fid)).id_number_bidx = None
    signed_in(en, "alice")
    r = post(en, f"/customers/{fid}/cards/replace", {"card": number, "reason": "card damaged at the till",
                                                     "id_number": WRONG_ID}, from_page=f"/customers/{fid}")
    assert r.status_code == 400 and "no ID number on record" in html.unescape(r.text)
    assert card_status(db, number) == "current"


def test_the_service_desk_asks_for_the_holders_id_before_a_loss(client, db, vault, card):
    fid, number = card
    signed_in(client, "cathy")
    r = post(client, "/service/cards/loss", {"card_number": number, "reason": "member lost the wallet",
                                             "id_number": WRONG_ID}, from_page="/service")
    assert r.status_code == 400 and 'data-error-for="id_number"' in r.text
    assert card_status(db, number) == "current"
    assert len(denials(db, "member.card.loss")) == 1
    r = post(client, "/service/cards/loss", {"card_number": number, "reason": "member lost the wallet",
                                             "id_number": id_number_of(db, vault, fid)}, from_page="/service")
    assert r.status_code == 200
    assert card_status(db, number) == "lost"
