"""Member service over HTTP: the forms record and refuse as the domain does, pages show what the
user may see, the home pages count what is overdue and due."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.customers.models import CustomerFile
from portal.membership import members
from portal.membership.models import Membership
from portal.membership.rules import programme_today
from portal.service.models import CareRecord, Complaint

from .browser import post, signed_in


def _member(db, story, tier="gold"):
    fid = uuid.UUID(story.files["alice"][0])
    with db.write() as s:
        members.enrol(s, story.actor(db, "alice"), fid, cause="application")
        s.scalar(select(Membership).where(Membership.customer_id == fid)).tier = tier
        return fid, s.get(CustomerFile, fid).file_no


def test_alice_records_a_complaint_and_cathy_works_it_from_the_queue(client, db, story):
    fid, file_no = _member(db, story)
    signed_in(client, "alice")
    r = post(client, "/complaints", {"member": file_no, "channel": "salesperson", "kind": "service",
                                     "content": "", "promised_on": "2001-01-01"}, from_page="/complaints/new")
    assert r.status_code == 400 and 'data-error="content"' in r.text and 'data-error="promised_on"' in r.text
    promised = (programme_today() + timedelta(days=2)).isoformat()
    r = post(client, "/complaints", {"member": file_no, "channel": "salesperson", "kind": "service",
                                     "content": "导购态度差", "promised_on": promised}, from_page="/complaints/new")
    assert r.status_code == 303
    cid = int(r.headers["location"].rsplit("/", 1)[1])
    page = client.get(f"/complaints/{cid}")
    assert "导购态度差" in page.text and 'data-testid="step-investigate"' in page.text
    client.cookies.clear()
    signed_in(client, "cathy")
    queue = client.get("/complaints")
    assert f'data-testid="complaint-{cid}"' in queue.text and 'class="badge"' in queue.text  # gold: priority
    assert "导购态度差" not in queue.text  # the queue never shows the content
    r = post(client, f"/complaints/{cid}/investigate", {"passed_to": "门店经理", "finding": "属实",
                                                       "cause": "staff_conduct", "responsible": "导购A"},
             from_page="/complaints")
    assert r.status_code == 303
    r = post(client, f"/complaints/{cid}/investigate", {"passed_to": "x", "finding": "x", "cause": "other",
                                                       "responsible": "x"}, from_page="/complaints")
    assert r.status_code == 409 and 'data-error="step"' in r.text
    with db.read() as s:
        assert s.get(Complaint, cid).status == "investigated"
    home = client.get("/")
    assert re.search(r'data-testid="complaints-open">\s*<a[^>]*><span class="figure">1<', home.text)


def test_an_overdue_complaint_shows_on_the_salespersons_home_page(client, db, vault, story, clock_at):
    from portal import clock
    from portal.service import complaints
    fid, file_no = _member(db, story)
    with db.write() as s:
        complaints.record_complaint(s, vault, story.actor(db, "alice"), {
            "channel": "hotline", "kind": "points", "content": "积分未到账",
            "promised_on": programme_today().isoformat()}, file_id=fid)
    clock_at(clock.now() + timedelta(days=2))
    signed_in(client, "alice")
    home = client.get("/")
    assert re.search(r'data-testid="complaints-overdue">\s*<a[^>]*><span class="figure">1<', home.text)
    assert 'class="overdue"' in client.get("/complaints?show=overdue").text


def test_a_benefit_beyond_the_allowance_is_refused_and_recorded(client, db, story):
    fid, _ = _member(db, story, tier="silver")  # one care package a year
    signed_in(client, "alice")
    assert post(client, f"/member-service/{fid}/care", {"benefit": "care_package", "note": "口腔护理套餐"},
                from_page=f"/member-service/{fid}").status_code == 303
    r = post(client, f"/member-service/{fid}/care", {"benefit": "care_package"}, from_page=f"/member-service/{fid}")
    assert r.status_code == 409 and 'data-error="benefit"' in r.text
    with db.read() as s:
        assert len(list(s.scalars(select(CareRecord)))) == 1
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(3)).all()
    assert any(e.action == "care.record" and e.outcome == "denied" for e in last)
    client.cookies.clear()
    signed_in(client, "bob")
    assert "口腔护理套餐" not in client.get("/care").text  # what was given, without the notes
    assert 'data-testid="care-records"' in client.get("/care").text


def test_alice_records_a_visit_with_the_survey_and_bob_changes_the_schedule(client, db, story):
    fid, _ = _member(db, story)
    signed_in(client, "alice")
    r = post(client, f"/member-service/{fid}/visits", {"kind": "survey", "reason": "schedule", "satisfaction": "5",
                                                       "outcome": "很满意", "q1": "5", "q2": "4", "q3": "7"},
             from_page=f"/member-service/{fid}")
    assert r.status_code == 400 and 'data-error="q3"' in r.text
    r = post(client, f"/member-service/{fid}/visits", {"kind": "survey", "reason": "schedule", "satisfaction": "5",
                                                       "outcome": "很满意", "q1": "5", "q2": "4"},
             from_page=f"/member-service/{fid}")
    assert r.status_code == 303
    assert "很满意" in client.get(f"/member-service/{fid}").text
    client.cookies.clear()
    signed_in(client, "bob")
    page = client.get("/member-service/settings")
    assert 'name="every_gold" value="91"' in page.text
    form = {k: v for k, v in re.findall(r'<input name="([a-z_]+)" value="([^"]*)"', page.text)}
    form |= {"survey_questions": "满意度", "every_gold": "30", "effective_from": programme_today().isoformat(),
             "note": "金卡每月回访"}
    r = post(client, "/member-service/settings", form, from_page="/member-service/settings")
    assert r.status_code == 303, r.text[:2000]
    assert 'name="every_gold" value="30"' in client.get("/member-service/settings").text
