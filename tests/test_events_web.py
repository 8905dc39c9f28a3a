"""Member events in the browser-like client: bob plans and adds an event, alice registers her
clients, charlie is refused hers, cathy checks one in; the summary is a leader's."""
from __future__ import annotations

import re

from sqlalchemy import select

from portal import clock
from portal.audit.models import AuditEvent
from portal.events.models import Event, EventRegistration

from .browser import post, signed_in
from .test_events import EVENT_DAY, JUNE_1, cards, enrol, make_event  # noqa: F401 - the fixture

EVENT_FORM = {"kind": "experience", "theme": "品酒会", "place": "前海会所", "content": "",
              "starts_at": "2026-06-20T14:00", "ends_at": "2026-06-20T17:00",
              "registration_opens_at": "2026-06-10T09:00", "capacity": "1", "budget": "8000.00",
              "points": "150"}


def last_seq(db) -> int:
    with db.read() as s:
        return s.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) or 0


def test_bob_plans_a_year_and_adds_an_event_with_its_tiers(client, db, story, clock_at):
    clock_at(JUNE_1)
    signed_in(client, "bob")
    r = post(client, "/events/plans", {"unit": "755A", "year": "2026", "budget": "120000"}, from_page="/events")
    assert r.status_code == 303
    plan_url = r.headers["location"]
    bad = post(client, f"{plan_url}/events", {**EVENT_FORM, "capacity": "0", "tiers": "silver"},
               from_page=plan_url)
    assert bad.status_code == 400 and 'data-error="capacity"' in bad.text
    with db.read() as s:
        assert s.scalar(select(Event.id)) is None  # nothing half-written
    r = client.post(f"{plan_url}/events", data={**EVENT_FORM, "tiers": ["gold", "platinum"],
                                                  "_csrf": _csrf(client, plan_url)}, follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    with db.read() as s:
        ev = s.scalar(select(Event))
    assert (ev.tiers, ev.capacity, ev.budget_fen, ev.points) == ("gold,platinum", 1, 800_000, 150)
    page = client.get(plan_url)
    assert "品酒会" in page.text and "¥8,000.00" in page.text


def _csrf(client, path):
    from .browser import csrf_of
    return csrf_of(client.get(path).text)


def test_alice_registers_her_clients_the_second_waits_and_charlie_is_refused(client, db, story, cards):
    ev = make_event(db, story, capacity=1, leader="grace", unit="755")  # the region's: charlie sees it
    signed_in(client, "alice")
    r = post(client, f"/events/{ev}/registrations", {"card": cards["a0"]}, from_page=f"/events/{ev}")
    assert r.status_code == 303 and "done=registered" in r.headers["location"]
    r = post(client, f"/events/{ev}/registrations", {"card": cards["a1"]}, from_page=f"/events/{ev}")
    assert "done=waitlisted" in r.headers["location"] and "n=1" in r.headers["location"]
    page = client.get(f"/events/{ev}")
    assert cards["a0"] in page.text and cards["a1"] in page.text
    # The registrations fragment (HTMX) is the same table.
    frag = client.get(f"/events/{ev}", headers={"HX-Request": "true"})
    assert "<html" not in frag.text and cards["a1"] in frag.text
    signed_in(client, "charlie")
    before = last_seq(db)
    r = post(client, f"/events/{ev}/registrations", {"card": cards["a2"]}, from_page=f"/events/{ev}")
    # Another team's card: refused plainly on the form (a mistyped number?), still audited.
    assert r.status_code == 400 and 'data-error="card"' in r.text and cards["a2"] in r.text
    with db.read() as s:
        denied = list(s.scalars(select(AuditEvent).where(AuditEvent.seq > before, AuditEvent.outcome == "denied")))
    assert [e.action for e in denied] == ["event.register"]
    # charlie sees the event but none of alice's clients' registrations.
    page = client.get(f"/events/{ev}")
    assert page.status_code == 200 and cards["a0"] not in page.text
    bad = post(client, f"/events/{ev}/registrations", {"card": "nonsense"}, from_page=f"/events/{ev}")
    assert bad.status_code == 400 and 'data-error="card"' in bad.text


def test_cathy_checks_a_member_in_once_and_the_leader_reads_the_summary(client, db, story, cards):
    ev = make_event(db, story, points=200)
    signed_in(client, "alice")
    post(client, f"/events/{ev}/registrations", {"card": cards["a0"]}, from_page=f"/events/{ev}")
    with db.read() as s:
        rid = s.scalar(select(EventRegistration.id))
    clock.set_now(EVENT_DAY)
    signed_in(client, "cathy")
    url = f"/events/{ev}/registrations/{rid}/check-in"
    first = post(client, url, from_page=f"/events/{ev}")
    again = post(client, url, from_page=f"/events/{ev}")
    assert "done=checked_in" in first.headers["location"] and "n=200" in first.headers["location"]
    assert "done=already" in again.headers["location"]
    assert client.get(f"/events/{ev}/summary").status_code == 403  # figures are a leader's
    signed_in(client, "bob")
    page = client.get(f"/events/{ev}/summary")
    assert page.status_code == 200
    assert re.search(r'data-figure="attended">\s*1<', page.text)
    assert re.search(r'data-figure="points">\s*200<', page.text)
    assert cards["a0"] not in page.text  # no personal data in the summary


def test_a_salesperson_cannot_plan_or_invite(client, db, story, cards):
    ev = make_event(db, story)
    signed_in(client, "alice")
    assert post(client, "/events/plans", {"unit": "755A", "year": "2026", "budget": "1"},
                from_page="/events").status_code == 403
    assert post(client, f"/events/{ev}/invitations", from_page="/events").status_code == 403
    signed_in(client, "henry")  # a leader of another region: does not even see 755A's event
    assert client.get(f"/events/{ev}").status_code == 403
    assert post(client, f"/events/{ev}/invitations", from_page="/events").status_code == 403
