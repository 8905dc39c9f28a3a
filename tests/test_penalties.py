"""Penalties for leaking or reselling customer files (seed 000), told with the story's people:
bob leads alice's team (755A), grace the 755 region, henry another region, dave audits."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.customers.service import InvalidInput
from portal.penalties import service as penalties
from portal.penalties.models import Penalty
from portal.policy import PermissionDenied

from .browser import post, signed_in


def evidence_seq(db) -> str:
    with db.read() as s:
        return str(s.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)))


def record(db, story, who, **kw):
    args = dict(username="alice", kind="leak", evidence_type="audit", evidence_id=evidence_seq(db),
                reason="a client list was sent to a competitor", leak_fine_fen=500_000)
    args.update(kw)
    with db.write() as s:
        return penalties.record_penalty(s, story.actor(db, who), **args)


def test_a_leak_costs_5000_yuan_each_time(db, story):
    """Seed 000: "no one is allowed to leak them. If there is any leakage, 5,000 yuan will be given
    each time Fines and penalties"."""
    p = record(db, story, "bob")
    assert (p.kind, p.amount_fen, p.measures) == ("leak", 500_000, "")
    assert record(db, story, "bob").amount_fen == 500_000  # each time


def test_resale_withholds_wages_and_pursues_legal_responsibility(db, story):
    """Seed 000: "If there is a phenomenon of reselling the company's customer resources, all wages,
    bonuses and benefits will be withheld, and corresponding legal responsibilities will be pursued"."""
    p = record(db, story, "grace", kind="resale")
    assert p.amount_fen == 0 and "legal responsibility" in p.measures


def test_only_a_leader_above_the_person_records_a_penalty(db, story):
    for who in ("henry", "charlie"):
        with pytest.raises(PermissionDenied):
            record(db, story, who)
    with pytest.raises(InvalidInput) as exc:
        record(db, story, "bob", username="bob")
    assert "username" in exc.value.errors


def test_a_penalty_needs_existing_evidence_and_a_full_reason(db, story):
    with pytest.raises(InvalidInput) as exc:
        record(db, story, "bob", evidence_type="export", evidence_id="999999", reason="short")
    assert set(exc.value.errors) == {"evidence_id", "reason"}
    with db.read() as s:
        assert s.scalar(select(Penalty.id)) is None


def test_leaders_above_and_auditors_see_penalties_others_do_not(db, story):
    record(db, story, "bob")
    seen = {}
    for who in ("bob", "grace", "henry", "dave"):
        with db.write() as s:
            seen[who] = [r.person for r in penalties.list_penalties(s, story.actor(db, who))]
    assert seen == {"bob": ["alice"], "grace": ["alice"], "henry": [], "dave": ["alice"]}


@pytest.mark.parametrize("user", ["alice", "charlie", "cathy", "erin"])
def test_strangers_are_refused_the_penalty_pages(client, db, story, user):
    signed_in(client, user)
    assert client.get("/penalties").status_code == 403
    assert client.get("/penalties", headers={"HX-Request": "true"}).status_code == 403
    r = post(client, "/penalties", {"username": "frank", "kind": "leak", "evidence_type": "audit",
                                    "evidence_id": evidence_seq(db), "reason": "an attempt by a stranger"},
             from_page="/inbox")
    assert r.status_code == 403
    with db.read() as s:
        assert s.scalar(select(Penalty.id)) is None


def test_bob_records_a_penalty_in_the_browser_and_dave_reads_it(client, db, story):
    signed_in(client, "bob")
    r = post(client, "/penalties", {"username": "alice", "kind": "leak", "evidence_type": "audit",
                                    "evidence_id": "nope", "reason": "x"}, from_page="/penalties")
    assert r.status_code == 400 and 'data-error="evidence_id"' in r.text and 'data-error="reason"' in r.text
    r = post(client, "/penalties", {"username": "alice", "kind": "leak", "evidence_type": "audit",
                                    "evidence_id": evidence_seq(db),
                                    "reason": "客户名单被发给了竞争对手，证据见审计记录"}, from_page="/penalties")
    assert r.status_code == 303
    signed_in(client, "dave")
    r = client.get("/penalties")
    assert r.status_code == 200 and 'data-testid="penalties"' in r.text and "alice" in r.text
    assert 'data-testid="record-penalty"' not in r.text
