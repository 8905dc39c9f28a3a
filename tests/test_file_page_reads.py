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


# ---------------------------------------------------------------- the section's reads on the driver's cursor

def _as_orm(row, obj) -> tuple:
    """The ORM object's values of the row's fields, in the row's order."""
    return tuple(getattr(obj, name) for name in row._fields)


def test_the_sections_reads_on_the_drivers_cursor_read_what_the_orm_reads(db, vault, story, clock_at):
    """membership/file_reads.py: the membership, its card accounts with their cards, its coupons
    and the file's latest purchases with their lines, as the ORM reads them (values and types)."""
    from datetime import date, datetime, timezone

    from sqlalchemy import select

    from portal.membership import cards, coupon_rules, coupons, file_reads, members, purchases
    from portal.membership.models import Coupon, Purchase, PurchaseLineRow
    from portal.membership.outcomes import PurchaseRequest
    from portal.membership.rules import PurchaseLine

    clock_at(datetime(2026, 3, 10, 4, tzinfo=timezone.utc))
    alice, bob = actor(db, "alice"), actor(db, "bob")
    member, buyer, nothing = (uuid.UUID(story.files["alice"][i]) for i in range(3))
    with db.write() as s:
        m = members.enrol(s, alice, member, cause="application")
        number = members.current_card(s, members.primary_account(s, m).id).number
        members.issue_card(s, alice, m, s.get(customers.CustomerFile, member), card_type="standard")
    with db.write() as s:
        cards.report_loss(s, alice, number, "customer lost wallet")
    with db.write() as s:
        number = cards.replace(s, alice, number, "replacement after loss").number
    for i, (who, on) in enumerate(((member, 10), (member, 8), (member, 10), (buyer, 9), (buyer, 9))):
        lines = (PurchaseLine("茅台 <b>", 1 + i, 1_000 + i, i == 1), PurchaseLine("Vase", 2, 500, False, i == 2))
        with db.write() as s:
            purchases.record_purchase(s, vault, alice, PurchaseRequest(
                receipt_no=f"R-{i}", lines=lines[:1 + i % 2], payment_method="cash", customer_id=who,
                purchased_on=date(2026, 3, on)))
    with db.write() as s:
        purchases.return_purchase(s, vault, bob, "R-0", "customer brought it back")
    for amount in (5_000, 2_000):
        with db.write() as s:
            coupons.issue_campaign(s, bob, name="Spring", reason="spring campaign for members",
                                   terms=coupon_rules.CouponTerms(kind="amount", amount_fen=amount,
                                                                  valid_from=date(2026, 3, 10),
                                                                  valid_until=date(2026, 3, 31),
                                                                  tiers=("regular", "silver")))
    with db.read() as s:
        conn = s.connection()
        m = members.membership_of(s, member)
        row = file_reads.membership_row(conn, member)
        assert row == _as_orm(row, m) and row.id == m.id
        assert file_reads.membership_row(conn, buyer) is None

        got, want = file_reads.accounts_with_cards(conn, m.id), cards.cards_of(s, m.id)
        assert [(_as_orm(a, a), [tuple(c) for c in cs]) for a, cs in got] == \
            [(_as_orm(got[i][0], a), [_as_orm(got[0][1][0], c) for c in cs]) for i, (a, cs) in enumerate(want)]
        assert [len(cs) for _, cs in got] == [2, 1]  # the replaced card and its replacement; the second card
        assert type(got[0][0].named) is bool and isinstance(got[0][0].expires_on, date)

        mine = file_reads.coupons(conn, m.id)
        theirs = coupons.coupons_of(s, m.id)
        assert len(mine) == 2 and [tuple(c) for c in mine] == [_as_orm(mine[0], c) for c in theirs]
        assert [tuple(c) for c in file_reads.coupons(conn, m.id, limit=1)] == [tuple(mine[0])]

        for fid in (member, buyer, nothing):
            for limit in (30, 2):
                shown = file_reads.purchases(conn, fid, limit)
                bought = list(s.scalars(select(Purchase).where(Purchase.customer_id == fid)
                                        .order_by(Purchase.purchased_on.desc(), Purchase.id.desc()).limit(limit)))
                assert [r["purchase"].id for r in shown] == [p.id for p in bought]
                for r, p in zip(shown, bought):
                    assert tuple(r["purchase"]) == _as_orm(r["purchase"], p)
                    lines = s.scalars(select(PurchaseLineRow).where(PurchaseLineRow.purchase_id == p.id)
                                      .order_by(PurchaseLineRow.line_no))
                    assert [tuple(ln) for ln in r["lines"]] == [_as_orm(r["lines"][0], ln) for ln in lines]
                    assert all(type(ln.special_price) is bool and type(ln.group_buy) is bool for ln in r["lines"])
        everything = file_reads.purchases(conn, member)
        assert [r["purchase"].receipt_no for r in everything] == ["R-2", "R-0", "R-1"]  # day, then latest recorded
        assert [len(r["lines"]) for r in everything] == [1, 1, 2] and everything[1]["purchase"].status == "returned"
        assert file_reads.purchases(conn, nothing) == []
