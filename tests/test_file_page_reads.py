"""The file page reads the file once: its membership section reuses the decision read_file made
(customers.open_card_for) instead of opening the file again. It must decide exactly as
open_for() does, for every viewer and every state of a grant, in the same snapshot."""
from __future__ import annotations

import uuid

import pytest

from portal.customers import service as customers
from portal.policy import Action, PermissionDenied
from portal.views import membership as member_views

from .test_access import actor, grant_in_state

VIEWERS = ("alice", "bob", "charlie", "grace", "henry", "dave", "erin", "cathy", "frank")


def _decision(fn):
    try:
        f, grant_id = fn()
    except PermissionDenied:
        return "refused"
    return (str(f.id), grant_id)


@pytest.mark.parametrize("state", ["none", "active", "active_edit", "expired", "revoked"])
def test_the_membership_section_decides_as_open_for_for_every_viewer(db, vault, story, state):
    fid = uuid.UUID(story.files["alice"][0])
    with db.read() as s:
        file_no = s.get(customers.CustomerFile, fid).file_no
    if state != "none":
        grant_in_state(db, file_no, state)
    for name in VIEWERS:
        who = actor(db, name)
        with db.read() as s:
            expected = _decision(lambda: customers.open_for(s, who, fid, Action.MEMBER_VIEW))
            try:
                card, _note = customers.read_file(s, vault, who, fid)
            except PermissionDenied:
                card = None  # the page is refused before any section is read
            if card is not None:
                got = _decision(lambda: customers.open_card_for(s, who, card, Action.MEMBER_VIEW))
                assert got == expected, (name, state)
                # ... and the section is shown exactly when open_for allows it.
                section = member_views.file_context(s, who, fid, card)
                assert bool(section) == (expected != "refused"), (name, state)
            elif expected != "refused":
                # Membership without the file itself would be a new way in: none exists today.
                pytest.fail(f"{name} ({state}) may see membership but not the file")


def test_the_section_from_the_card_is_the_section_read_afresh(db, vault, story):
    """Same figures whether the section opens the file itself or reuses the page's read."""
    fid = uuid.UUID(story.files["alice"][0])
    who = actor(db, "alice")
    with db.read() as s:
        card, _note = customers.read_file(s, vault, who, fid)
        reused = member_views.file_context(s, who, fid, card)
        fresh = member_views.file_context(s, who, fid)
    assert reused == fresh and reused
