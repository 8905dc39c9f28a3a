"""Member-service demo data: complaints in every state (one overdue, one reopened and still open,
one that went round twice and was closed), visits done with the survey (one whose issues wait for
an answer), visits due, and care given against the tier's allowance. Made through the use cases as
cathy, alice, bob and charlie would have, dated over the last three weeks; idempotent."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock
from .accounts import service as accounts
from .accounts.models import User
from .membership.models import Membership
from .membership.rules import PROGRAMME_TZ, programme_today
from .org.models import OrgUnit
from .service import care, complaints, visits
from .service.models import Complaint
from .vault import Vault

INVESTIGATION = {"passed_to": "物流部 王经理", "finding": "快递途中外箱受压，礼盒破损", "cause": "logistics",
                 "responsible": "合作快递公司"}


def seed(s: Session, vault: Vault, summary) -> None:
    if s.scalar(select(Complaint.id).limit(1)) is not None:
        return
    people = {u.username: accounts.actor_for(u, s.get(OrgUnit, u.unit_id))
              for u in s.scalars(select(User).where(User.username.in_(("alice", "bob", "charlie", "cathy"))))}
    owners = {a.user_id: name for name, a in people.items()}
    by_owner: dict[str, list[Membership]] = {}
    for m in s.scalars(select(Membership).where(Membership.status == "active").order_by(Membership.id)):
        if m.owner_id in owners:
            by_owner.setdefault(owners[m.owner_id], []).append(m)
    alices = sorted(by_owner.get("alice", []), key=lambda m: (m.tier not in ("gold", "platinum"), m.id))
    if len(people) < 4 or len(alices) < 5 or not by_owner.get("charlie"):
        summary.warnings.append("no member-service demo: the membership demo's members are missing")
        return
    today = programme_today()
    previous = getattr(clock, "_override", None)

    def on(days_ago: int, step):
        day = today - timedelta(days=days_ago)
        clock.set_now(datetime.combine(day, time(12), PROGRAMME_TZ).astimezone(timezone.utc))
        return step(day)

    def record(who, m, days_ago, promise_in, **form):
        data = {"channel": "hotline", "kind": "product", "content": "礼盒破损，要求更换", **form}
        return on(days_ago, lambda d: complaints.record_complaint(
            s, vault, people[who], {**data, "promised_on": (d + timedelta(days=promise_in)).isoformat()},
            file_id=m.customer_id, today=d)).id

    def step(who, cid, days_ago, name, **form):
        on(days_ago, lambda d: complaints.take_step(s, vault, people[who], cid, name, form, today=d))

    def round_trip(cid, start, verdict, **extra):
        step("cathy", cid, start, "investigate", **INVESTIGATION)
        step("bob", cid, start - 1, "propose", resolution="补发新礼盒并赠送 500 积分")
        step("cathy", cid, start - 2, "tell", how="phone", reply="已为您补发新礼盒，并赠送 500 积分致歉。")
        step("cathy", cid, start - 3, "satisfaction", verdict=verdict, **extra)

    try:
        gold, second, third, fourth, fifth = alices[:5]
        # Round twice: not satisfied, reopened, then satisfied and closed (its follow-up visit is due).
        closed = record("cathy", gold, 20, 3)
        round_trip(closed, 19, "not_satisfied", note="希望当面致歉", promised_on=(today - timedelta(days=11)).isoformat())
        round_trip(closed, 15, "satisfied")
        # Reopened and still open.
        reopened = record("alice", second, 9, 3, channel="salesperson", kind="service", content="送货员态度恶劣")
        step("cathy", reopened, 8, "investigate", **{**INVESTIGATION, "cause": "staff_conduct"})
        step("bob", reopened, 7, "propose", resolution="更换送货员并书面致歉")
        step("alice", reopened, 6, "tell", how="in_person", reply="已当面致歉")
        step("cathy", reopened, 5, "satisfaction", verdict="not_satisfied", note="要求赔偿运费",
             promised_on=(today + timedelta(days=2)).isoformat())
        # Overdue: promised a week ago, still being investigated.
        overdue = record("cathy", third, 10, 3, channel="email", kind="points", content="上月消费积分未到账")
        step("cathy", overdue, 9, "investigate", **{**INVESTIGATION, "cause": "system", "passed_to": "信息部"})
        # Just recorded; and charlie's member told, waiting for the satisfaction.
        record("cathy", fourth, 1, 2, channel="online", kind="price", content="同款商品门店价格不一致")
        told = record("charlie", by_owner["charlie"][0], 6, 3, channel="in_store", kind="delivery", content="配送延误三天")
        step("charlie", told, 5, "investigate", **{**INVESTIGATION, "cause": "logistics"})
        step("charlie", told, 4, "propose", resolution="退还运费")
        step("charlie", told, 3, "tell", how="sms", reply="运费已退还")
        # Visits with the survey (three, so that the analysis may show them), one with issues to answer.
        for m, days_ago, score, issues in ((second, 40, 4, ""), (third, 35, 5, ""), (fifth, 30, 3, "希望增加品鉴会")):
            form = {"kind": "survey", "reason": "schedule", "satisfaction": str(score), "outcome": "电话回访，会员反馈良好",
                    "issues": issues, "passed_to": "市场部" if issues else "", "q1": str(score), "q2": "4", "q3": "4"}
            on(days_ago, lambda d, m=m, form=form: visits.record_visit(s, vault, people["alice"], m.customer_id,
                                                                      {**form, "visited_on": d.isoformat()}, today=d))
        # Care: a care package for the gold member; a birthday gift.
        on(3, lambda d: care.give(s, vault, people["alice"], gold.customer_id, "care_package", "口腔护理套餐", today=d))
        on(2, lambda d: care.give(s, vault, people["alice"], second.customer_id, "birthday_gift", "生日礼盒", today=d))
    finally:
        clock.set_now(previous)
    summary.notes.append("member service: /complaints (cathy works the queue, gold and platinum first; one overdue, "
                         "one reopened, one closed after a second round), /visits (alice's due visits), "
                         "/member-service/<file> (complaints, visits, care), /care and /complaints/analysis (bob)")
