"""Member service in the domain: a complaint goes round until the member is satisfied, the queue
puts gold and platinum first and keeps to the policy's scope, visits fall due by tier, after a
resolved complaint and after a large purchase, care stays within the tier's allowance (also when
given at the same moment twice), and the analysis counts without singling anyone out."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from portal import clock
from portal.accounts.actor import Actor
from portal.customers.service import InvalidInput
from portal.membership import members as membership
from portal.membership.models import Membership, Purchase
from portal.membership.rules import programme_today
from portal.policy import PermissionDenied
from portal.service import analysis, care, complaints, settings, visits
from portal.service.models import Complaint, ComplaintStep

from .concurrency import race
from .factories import stored_values

CONTENT = "会员投诉：礼盒破损，要求更换"


def make_member(db, story, owner="alice", n=0, tier="regular", joined_days_ago=10):
    fid = uuid.UUID(story.files[owner][n])
    with db.write() as s:
        m = membership.enrol(s, Actor.system("test"), fid, cause="import")
        m.tier = tier
        m.joined_on = programme_today() - timedelta(days=joined_days_ago)
    return fid


def complaint_form(file_no, **over):
    return {"member": file_no, "channel": "hotline", "kind": "product", "content": CONTENT,
            "promised_on": (programme_today() + timedelta(days=3)).isoformat(), **over}


def file_no(db, fid):
    from portal.customers.models import CustomerFile
    with db.read() as s:
        return s.get(CustomerFile, fid).file_no


def record(db, vault, story, user, fid, **over):
    with db.write() as s:
        return complaints.record_complaint(s, vault, story.actor(db, user), complaint_form(file_no(db, fid), **over)).id


def step(db, vault, story, user, cid, name, **form):
    with db.write() as s:
        return complaints.take_step(s, vault, story.actor(db, user), cid, name, form).status


INVESTIGATION = dict(passed_to="物流部", finding="快递途中挤压", cause="logistics", responsible="顺丰华南")


def test_a_complaint_goes_round_until_the_member_is_satisfied(db, vault, story):
    fid = make_member(db, story, tier="gold")
    cid = record(db, vault, story, "cathy", fid)
    assert step(db, vault, story, "cathy", cid, "investigate", **INVESTIGATION) == "investigated"
    assert step(db, vault, story, "cathy", cid, "propose", resolution="更换礼盒") == "proposed"
    assert step(db, vault, story, "cathy", cid, "tell", how="phone", reply="已安排更换") == "told"
    new_promise = (programme_today() + timedelta(days=5)).isoformat()
    assert step(db, vault, story, "cathy", cid, "satisfaction", verdict="not_satisfied",
                note="还想要补偿", promised_on=new_promise) == "reopened"
    assert step(db, vault, story, "bob", cid, "investigate", **INVESTIGATION) == "investigated"
    assert step(db, vault, story, "bob", cid, "propose", resolution="更换并赠送积分") == "proposed"
    assert step(db, vault, story, "alice", cid, "tell", how="in_person", reply="当面致歉") == "told"
    assert step(db, vault, story, "cathy", cid, "satisfaction", verdict="satisfied") == "closed"
    with db.write() as s:
        view = complaints.view_complaint(s, vault, story.actor(db, "cathy"), cid)
    assert view.content == CONTENT and view.reopen_count == 1 and view.closed_at is not None
    assert [h.step for h in view.history] == [
        "recorded", "investigated", "proposed", "told", "satisfaction", "reopened",
        "investigated", "proposed", "told", "satisfaction", "closed"]
    assert [h.by for h in view.history][6:9] == ["bob", "bob", "alice"]
    # Content and notes are ciphertext at rest.
    dump = b"".join(stored_values(db))
    for secret in (CONTENT, "快递途中挤压", "还想要补偿", "当面致歉"):
        assert secret.encode() not in dump


def test_a_step_out_of_turn_is_refused_and_changes_nothing(db, vault, story):
    cid = record(db, vault, story, "alice", make_member(db, story))
    with pytest.raises(InvalidInput) as exc:
        step(db, vault, story, "alice", cid, "tell", how="phone", reply="x")
    assert "step" in exc.value.errors
    with pytest.raises(InvalidInput) as exc:
        step(db, vault, story, "alice", cid, "investigate", passed_to="", finding="", cause="nonsense", responsible="")
    assert set(exc.value.errors) == {"passed_to", "finding", "cause", "responsible"}
    with db.read() as s:
        assert s.get(Complaint, cid).status == "recorded"
        assert len(list(s.scalars(select(ComplaintStep).where(ComplaintStep.complaint_id == cid)))) == 1


def test_bad_complaint_input_is_named_field_by_field(db, vault, story):
    fid = make_member(db, story)
    with pytest.raises(InvalidInput) as exc:
        with db.write() as s:
            complaints.record_complaint(s, vault, story.actor(db, "alice"), complaint_form(
                "NOPE-1", channel="pigeon", kind="", content=" ", promised_on="2001-01-01"))
    assert set(exc.value.errors) == {"member", "channel", "kind", "content", "promised_on"}
    with db.read() as s:
        assert s.scalar(select(Complaint.id)) is None


def test_charlie_cannot_record_a_complaint_on_alices_client(db, vault, story):
    fid = make_member(db, story)
    with pytest.raises(PermissionDenied):
        record(db, vault, story, "charlie", fid)


def test_gold_and_platinum_come_first_and_the_queue_keeps_to_scope(db, vault, story):
    regular = make_member(db, story, n=0)
    gold = make_member(db, story, n=1, tier="gold")
    charlies = make_member(db, story, owner="charlie", n=0, tier="platinum")
    first = record(db, vault, story, "cathy", regular, promised_on=(programme_today() + timedelta(days=1)).isoformat())
    second = record(db, vault, story, "cathy", gold)
    third = record(db, vault, story, "cathy", charlies)
    def ids(user):
        with db.write() as s:
            return [r.id for r in complaints.queue(s, story.actor(db, user))]
    assert ids("cathy") == [second, third, first]
    assert ids("alice") == [second, first]
    assert ids("bob") == [second, first]
    assert ids("charlie") == [third]
    assert ids("grace") == [second, third, first]
    assert ids("henry") == []


def test_the_prebuilt_queue_reads_what_the_scoped_orm_query_read(db, vault, story):
    """complaints.queue runs one statement per scope shape, state and filter on the driver; for
    every user, state and a member's own filter its rows are those of the ORM query over
    customer_scope, in the same order and with the same values."""
    from sqlalchemy import case

    from portal.access.models import AccessRequest
    from portal.customers.models import CustomerFile
    from portal.policy import Action, customer_scope
    members = [make_member(db, story, n=0), make_member(db, story, n=1, tier="gold"),
               make_member(db, story, owner="charlie", n=0, tier="platinum"), make_member(db, story, owner="frank")]
    made = [record(db, vault, story, "cathy", fid, promised_on=(programme_today() + timedelta(days=d)).isoformat())
            for d, fid in zip((1, 2, 3, 4, 2), members + [members[1]])]
    with db.write() as s:
        s.get(Complaint, made[1]).promised_on = programme_today() - timedelta(days=2)  # overdue
        s.get(Complaint, made[3]).status = "closed"
        f, now = s.get(CustomerFile, members[2]), clock.now()
        s.add(AccessRequest(requester_id=story.users["alice"], file_id=f.id, file_no=f.file_no, unit_path=f.unit_path,
                            reason="covering this week", scope="view", hours_requested=8, status="approved",
                            created_at=now, decided_at=now, hours_granted=8, expires_at=now + timedelta(hours=8)))
    today = programme_today()

    def by_orm(s, actor, state, customer_id):
        from portal.customers.models import CustomerFile as F
        q = (select(Complaint, F.file_no, Membership.tier).join(F, F.id == Complaint.customer_id)
             .outerjoin(Membership, Membership.customer_id == Complaint.customer_id)
             .where(customer_scope(actor, Action.COMPLAINT_VIEW)))
        q = {"open": q.where(Complaint.status != "closed"), "closed": q.where(Complaint.status == "closed"),
             "overdue": q.where(Complaint.status.in_(complaints.UNTOLD), Complaint.promised_on < today)}.get(state, q)
        if customer_id is not None:
            q = q.where(Complaint.customer_id == customer_id)
        q = q.order_by(case((Membership.tier.in_(complaints.PRIORITY_TIERS), 0), else_=1), Complaint.promised_on,
                       Complaint.id)
        return [(c.id, n, t or "", c.channel, c.kind, c.status, c.promised_on, c.recorded_at, c.reopen_count)
                for c, n, t in s.execute(q).all()]

    seen = set()
    for user in ("alice", "bob", "charlie", "grace", "henry", "cathy", "frank"):
        actor = story.actor(db, user)
        for state in ("open", "closed", "overdue", "all"):
            for customer_id in (None, members[1]):
                with db.write() as s:
                    ours = complaints.queue(s, actor, state=state, customer_id=customer_id, today=today)
                    theirs = by_orm(s, actor, state, customer_id)
                assert [(r.id, r.file_no, r.tier, r.channel, r.kind, r.status, r.promised_on, r.recorded_at,
                         r.reopen_count) for r in ours] == theirs, (user, state, customer_id)
                assert all(r.overdue == (r.status in complaints.UNTOLD and r.promised_on < today) for r in ours)
                seen.update(r.id for r in ours)
    assert seen == set(made)
    with db.write() as s:  # a grant on charlie's file does not share his member's complaints (policy.csv)
        assert made[2] not in [r.id for r in complaints.queue(s, story.actor(db, "alice"), state="all")]


def test_a_complaint_past_its_promised_date_is_overdue_until_the_member_is_told(db, vault, story):
    cid = record(db, vault, story, "alice", make_member(db, story))
    later = programme_today() + timedelta(days=4)
    with db.read() as s:
        assert complaints.overdue_count(s, story.actor(db, "alice"), later) == 1
        assert complaints.overdue_count(s, story.actor(db, "charlie"), later) == 0
        assert complaints.overdue_count(s, story.actor(db, "alice"), programme_today()) == 0
    step(db, vault, story, "alice", cid, "investigate", **INVESTIGATION)
    step(db, vault, story, "alice", cid, "propose", resolution="更换")
    step(db, vault, story, "alice", cid, "tell", how="phone", reply="已更换")
    with db.read() as s:
        assert complaints.overdue_count(s, story.actor(db, "alice"), later) == 0


def test_a_complaints_history_cannot_be_rewritten(db, vault, story):
    cid = record(db, vault, story, "alice", make_member(db, story))
    for sql in ("UPDATE complaint_step SET step = 'closed'", "DELETE FROM complaint_step"):
        with pytest.raises(DBAPIError):
            with db.write() as s:
                s.execute(text(sql))
    with db.read() as s:
        assert [x.step for x in s.scalars(select(ComplaintStep).where(ComplaintStep.complaint_id == cid))] == ["recorded"]


# ---------------------------------------------------------------- visits

def due(db, story, user, today=None):
    with db.write() as s:
        return [(v.customer_id, v.reason) for v in visits.due_visits(s, story.actor(db, user), today=today, ahead_days=0)]


VISIT = {"kind": "phone", "satisfaction": "4", "outcome": "满意", "q1": "5", "q2": "4"}


def test_a_gold_member_is_due_a_visit_every_quarter(db, vault, story):
    gold = make_member(db, story, tier="gold", joined_days_ago=100)
    silver = make_member(db, story, n=1, tier="silver", joined_days_ago=10)  # due in 172 days
    assert due(db, story, "alice") == [(gold, "schedule")]
    assert due(db, story, "charlie") == []
    with db.write() as s:
        visits.record_visit(s, vault, story.actor(db, "alice"), gold, {**VISIT, "reason": "schedule"})
    assert due(db, story, "alice") == []
    assert due(db, story, "alice", programme_today() + timedelta(days=91)) == [(gold, "schedule")]
    with db.read() as s:
        assert visits.due_count(s, story.actor(db, "bob"), programme_today() + timedelta(days=91)) == 1
    assert silver not in {c for c, _ in due(db, story, "alice", programme_today() + timedelta(days=60))}


def test_a_resolved_complaint_and_a_large_purchase_each_make_a_visit_due(db, vault, story):
    fid = make_member(db, story)
    cid = record(db, vault, story, "alice", fid)
    for name, form in (("investigate", INVESTIGATION), ("propose", {"resolution": "换"}),
                       ("tell", {"how": "sms", "reply": "好"}), ("satisfaction", {"verdict": "satisfied"})):
        step(db, vault, story, "alice", cid, name, **form)
    with db.write() as s:
        m = s.scalar(select(Membership).where(Membership.customer_id == fid))
        s.add(Purchase(receipt_no="BIG-1", customer_id=fid, membership_id=m.id, purchased_on=programme_today(),
                       payment_method="cash", list_total_fen=2_000_000, discount_total_fen=0,
                       paid_total_fen=2_000_000, rate_per_mille=1000, discount_reason="none", created_at=clock.now()))
    assert due(db, story, "alice") == []  # not yet: due a week after
    week = programme_today() + timedelta(days=7)
    assert sorted(r for _, r in due(db, story, "alice", week)) == ["complaint", "purchase"]
    with db.write() as s:
        visits.record_visit(s, vault, story.actor(db, "alice"), fid, {**VISIT, "reason": "complaint", "ref": str(cid)})
    assert [r for _, r in due(db, story, "alice", week)] == ["purchase"]


def test_a_visit_needs_a_score_and_an_outcome_and_its_issues_get_an_answer(db, vault, story):
    fid = make_member(db, story)
    with pytest.raises(InvalidInput) as exc:
        with db.write() as s:
            visits.record_visit(s, vault, story.actor(db, "alice"), fid, {"kind": "survey", "reason": "schedule",
                                                                           "satisfaction": "9", "issues": "送货慢"})
    assert set(exc.value.errors) == {"satisfaction", "outcome", "passed_to", "kind"}
    with db.write() as s:
        v = visits.record_visit(s, vault, story.actor(db, "alice"), fid, {
            **VISIT, "reason": "schedule", "issues": "送货慢", "passed_to": "物流部"})
    with db.write() as s:
        visits.answer_issues(s, vault, story.actor(db, "bob"), v.id, "已换快递公司")
    with db.read() as s:
        [view] = visits.visits_of(s, vault, fid)
    assert (view.issues, view.passed_to, view.answer) == ("送货慢", "物流部", "已换快递公司")
    with pytest.raises(PermissionDenied):
        with db.write() as s:
            visits.answer_issues(s, vault, story.actor(db, "charlie"), v.id, "x")


# ---------------------------------------------------------------- care

def give(db, vault, story, user, fid, benefit="care_package"):
    with db.write() as s:
        return care.give(s, vault, story.actor(db, user), fid, benefit)


@pytest.mark.parametrize("tier, allowed", [("regular", 0), ("silver", 1), ("gold", 2), ("platinum", 4)])
def test_nobody_gets_more_care_packages_than_the_tier_gives(db, vault, story, tier, allowed):
    fid = make_member(db, story, tier=tier)
    for _ in range(allowed):
        give(db, vault, story, "alice", fid)
    with pytest.raises(care.AllowanceUsed):
        give(db, vault, story, "alice", fid)
    with db.read() as s:
        assert care.given_count(s, fid, "care_package", programme_today().year) == allowed
    give(db, vault, story, "alice", fid, "birthday_gift")  # another benefit has its own allowance


def test_a_file_that_is_not_a_member_gets_no_tier_benefit_and_charlie_none_of_alices(db, vault, story):
    with pytest.raises(InvalidInput):
        give(db, vault, story, "alice", uuid.UUID(story.files["alice"][2]))
    fid = make_member(db, story, tier="gold")
    with pytest.raises(PermissionDenied):
        give(db, vault, story, "charlie", fid)


def test_two_people_giving_at_once_cannot_pass_the_allowance(db, vault, story):
    fid = make_member(db, story, tier="gold")  # two a year
    results = race(4, lambda i: give(db, vault, story, ("alice", "bob")[i % 2], fid))
    assert sum(1 for kind, _ in results if kind == "ok") == 2
    assert all(isinstance(r, care.AllowanceUsed) for kind, r in results if kind == "error")


def test_leaders_see_what_was_given_in_their_units(db, vault, story):
    fid = make_member(db, story, tier="gold")
    give(db, vault, story, "alice", fid)
    year = programme_today().year
    with db.write() as s:
        assert care.given_in_scope(s, story.actor(db, "bob"), year).by_benefit_tier == {("care_package", "gold"): 1}
        assert care.given_in_scope(s, story.actor(db, "henry"), year).by_benefit_tier == {}


# ---------------------------------------------------------------- analysis and settings

def test_the_analysis_counts_in_scope_and_hides_small_groups(db, vault, story):
    a, b = make_member(db, story, n=0), make_member(db, story, n=1)
    for fid, kind in ((a, "product"), (a, "product"), (b, "product"), (b, "price")):
        record(db, vault, story, "alice", fid, kind=kind)
    with db.write() as s:
        result = analysis.complaint_analysis(s, story.actor(db, "cathy"))
        charlies = analysis.complaint_analysis(s, story.actor(db, "grace"))
    assert result.total == 4
    assert {g.key: g.count for g in result.by_kind} == {"price": None, "product": 3}
    assert result.reopen_rate == 0.0 and result.satisfaction_rate is None
    assert charlies.total == 4
    with db.write() as s:
        assert analysis.complaint_analysis(s, story.actor(db, "bob")).by_unit[0].count == 4


def test_a_leader_sets_the_schedule_as_a_new_version(db, story):
    form = settings.form_values(settings.DEFAULTS) | {"every_gold": "30"}
    with db.write() as s:
        settings.save_version(s, story.actor(db, "bob"), settings.from_form(form), programme_today(), "每月回访金卡")
    with db.read() as s:
        assert settings.current(s).visit_every_days["gold"] == 30
        assert settings.current(s).allowance("care_package", "platinum") == 4
    with pytest.raises(InvalidInput) as exc:
        settings.from_form(form | {"every_gold": "-1", "survey_questions": ""})
    assert set(exc.value.errors) == {"every_gold", "survey_questions"}
