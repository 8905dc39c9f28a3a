"""count_in_scope (the home page's files figure) counts one arm of the scope at a time: it must
give the number of files customer_scope() selects, each file once, however the arms overlap."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal import clock
from portal.access.models import AccessRequest
from portal.customers.models import CustomerFile
from portal.policy import Action, count_in_scope, customer_scope


def _grant(s, user_id: int, file_id: uuid.UUID, *, hours: int = 8, revoked: bool = False) -> None:
    f = s.get(CustomerFile, file_id)
    now = clock.now()
    s.add(AccessRequest(requester_id=user_id, file_id=f.id, file_no=f.file_no, unit_path=f.unit_path,
                        reason="covering this week", scope="view", hours_requested=hours, status="approved",
                        created_at=now, decided_at=now, hours_granted=hours,
                        expires_at=now + timedelta(hours=hours), revoked_at=now if revoked else None))


def _by_or(s, actor, action) -> int:
    return s.scalar(select(func.count()).select_from(CustomerFile).where(customer_scope(actor, action)))


@pytest.fixture
def overlapping(db, story):
    """Grants that overlap the other arms: bob (a leader) granted a file his units already hold,
    alice granted charlie's file twice (one grant revoked) and one of her own."""
    with db.write() as s:
        _grant(s, story.users["bob"], uuid.UUID(story.files["alice"][0]))  # in bob's units
        _grant(s, story.users["alice"], uuid.UUID(story.files["charlie"][0]))
        _grant(s, story.users["alice"], uuid.UUID(story.files["charlie"][0]), hours=2)  # the same file again
        _grant(s, story.users["alice"], uuid.UUID(story.files["charlie"][1]), revoked=True)
        _grant(s, story.users["alice"], uuid.UUID(story.files["alice"][1]))  # her own


@pytest.mark.parametrize("user", ["alice", "bob", "charlie", "grace", "henry", "cathy", "dave", "erin"])
@pytest.mark.parametrize("action", [Action.CUSTOMER_LIST, Action.CUSTOMER_EXPORT])
def test_counting_arm_by_arm_gives_what_the_scope_selects(db, story, overlapping, user, action):
    actor = story.actor(db, user)
    with db.read() as s:
        assert count_in_scope(s, actor, action) == _by_or(s, actor, action)


def test_overlaps_are_counted_once(db, story, overlapping):
    with db.read() as s:
        alice = story.actor(db, "alice")
        own = s.scalar(select(func.count()).select_from(CustomerFile)
                       .where(CustomerFile.owner_id == story.users["alice"]))
        assert count_in_scope(s, alice, Action.CUSTOMER_LIST) == own + 1  # charlie's live grant, once
        bob = story.actor(db, "bob")
        lo, hi = bob.unit_path, bob.unit_path[:-1] + "0"
        led = s.scalar(select(func.count()).select_from(CustomerFile)
                       .where(CustomerFile.unit_path >= lo, CustomerFile.unit_path < hi))
        assert led > 0 and count_in_scope(s, bob, Action.CUSTOMER_LIST) == led


def test_one_prebuilt_statement_counts_each_actor_with_their_own_values_read_now(db, story, overlapping):
    """Alice and charlie share the statement (the same shape); each gets their own files, and a
    grant revoked after the statement was built drops out of the next count."""
    alice, charlie = story.actor(db, "alice"), story.actor(db, "charlie")
    with db.read() as s:
        before = count_in_scope(s, alice, Action.CUSTOMER_LIST)
        owns = s.scalar(select(func.count()).select_from(CustomerFile)
                        .where(CustomerFile.owner_id == story.users["charlie"]))
        assert count_in_scope(s, charlie, Action.CUSTOMER_LIST) == owns
    with db.write() as s:
        for g in s.scalars(select(AccessRequest).where(AccessRequest.requester_id == story.users["alice"],
                                                        AccessRequest.revoked_at.is_(None))):
            g.revoked_at = clock.now()
    with db.read() as s:
        assert count_in_scope(s, alice, Action.CUSTOMER_LIST) == before - 1 == _by_or(s, alice, Action.CUSTOMER_LIST)


# ---------------------------------------------------------------- customer_file_tally

def test_the_tally_follows_files_created_and_reassigned_and_the_count_with_it(db, vault, story, overlapping):
    from portal.customers import service as customers
    from portal.customers import tally
    with db.read() as s:
        assert tally.differences(s) == []
    from portal.accounts import service as accounts
    with db.write() as s:  # on team 755B (ivan's): the file changes owner and unit
        accounts.add_user(s, "kim", "salesperson", "755B", "Tea-house-2026!", display_name="Kim")
    with db.write() as s:
        customers.reassign_file(s, story.actor(db, "grace"), uuid.UUID(story.files["alice"][0]), "kim",
                                "alice moved to retail")
        customers.reassign_file(s, story.actor(db, "bob"), uuid.UUID(story.files["alice"][1]), "bob",
                                "alice is on leave")  # the same unit, another owner
    with db.write() as s:
        customers.create_file(s, vault, story.actor(db, "charlie"), customers.CustomerInput(
            name="陈新", gender="M", mobile="13900009999", category="A"))
    with db.read() as s:
        assert tally.differences(s) == []
        for user in ("alice", "charlie", "bob", "grace", "henry"):
            actor = story.actor(db, user)
            assert count_in_scope(s, actor, Action.CUSTOMER_LIST) == _by_or(s, actor, Action.CUSTOMER_LIST), user


def test_portal_customers_tally_finds_a_difference_and_rebuilds(db, settings, story):
    from click.testing import CliRunner
    from sqlalchemy import update

    from portal.cli import main
    from portal.customers import tally
    from portal.customers.models import CustomerFileTally
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file)}
    ok = CliRunner().invoke(main, ["customers", "tally"], env=env)
    assert ok.exit_code == 0 and "tally matches the files" in ok.output, ok.output
    with db.write() as s:  # a hand edit
        s.execute(update(CustomerFileTally).where(CustomerFileTally.owner_id == story.users["alice"])
                  .values(files=CustomerFileTally.files + 5))
    bad = CliRunner().invoke(main, ["customers", "tally"], env=env)
    assert bad.exit_code == 1 and "tallied" in bad.output and "--rebuild" in bad.output, bad.output
    fixed = CliRunner().invoke(main, ["customers", "tally", "--rebuild"], env=env)
    assert fixed.exit_code == 0 and "tally rebuilt" in fixed.output, fixed.output
    with db.read() as s:
        assert tally.differences(s) == []
