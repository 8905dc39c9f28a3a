"""`portal bench seed-purchases`: the members, cards, tier history, points and purchases it writes
in bulk are what the programme would have written (balances equal their entries, each member's
last tier change is their tier, card numbers come from the region's sequence), so the reports
read them the same way; a second run adds nothing, and the programme goes on after it."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from portal import clock
from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.bench.seed_purchases import COMPANY_LEADER, seed_purchases
from portal.customers import service as customers
from portal.customers.models import CustomerFile
from portal.membership import members
from portal.membership.models import (CardAccount, MemberCard, Membership, PointsEntryRow, Purchase,
                                      PurchaseLineRow, TierChange)
from portal.membership.rules import programme_today
from portal.org.models import OrgUnit
from portal.reports.filters import Period, ReportFilter
from portal.reports.tiers import month_end_counts

from .factories import PASSWORD, customer_input


def test_seeded_members_and_purchases_are_what_the_programme_would_have_written(db, vault, story):
    with db.write() as s:  # the story's files, created two years ago
        s.execute(update(CustomerFile).values(created_at=clock.now() - timedelta(days=700)))
    report = seed_purchases(db, share=1.0, batch=3, seed=7, password=PASSWORD)
    today = programme_today()
    with db.read() as s:
        assert report.members == 7 == s.scalar(select(func.count()).select_from(Membership))
        assert report.purchases == s.scalar(select(func.count()).select_from(Purchase)) >= 7
        assert s.scalar(select(func.count()).select_from(PurchaseLineRow)) == report.purchases
        lo, hi = s.execute(select(func.min(Purchase.purchased_on), func.max(Purchase.purchased_on))).one()
        assert today - timedelta(days=730) < lo and hi < today
        # Each account's cached balance is the sum of its entries.
        sums = dict(s.execute(select(PointsEntryRow.account_id, func.sum(PointsEntryRow.points))
                              .group_by(PointsEntryRow.account_id)).all())
        accts = list(s.scalars(select(CardAccount)))
        assert [a.points_balance for a in accts] == [sums.get(a.id, 0) for a in accts]
        assert sum(sums.values()) > 0
        # Each member's tier history starts by joining and ends at the tier they hold.
        for m in s.scalars(select(Membership)):
            rows = list(s.scalars(select(TierChange).where(TierChange.membership_id == m.id).order_by(TierChange.id)))
            assert (rows[0].from_tier, rows[0].to_tier, rows[0].changed_on) == ("", "regular", m.joined_on)
            assert rows[-1].to_tier == m.tier
        numbers = list(s.scalars(select(MemberCard.number)))
        assert len(set(numbers)) == 7 and all(n.startswith(("755 ", "010 ")) for n in numbers)
        u = s.scalar(select(User).where(User.username == COMPANY_LEADER))
        lhq = accounts.actor_for(u, s.get(OrgUnit, u.unit_id))
        now = dict(s.execute(select(Membership.tier, func.count()).group_by(Membership.tier)).all())
        year = ReportFilter(Period("year", today.replace(month=1, day=1), today.replace(month=12, day=31)))
        last = month_end_counts(s, lhq, year, today)[-1]  # the company-wide view sees every member
        assert {t: last[t] for t in now} == now and last["active"] == 7
    assert seed_purchases(db, share=1.0, password=PASSWORD).members == 0  # every file is a member now
    with db.write() as s:  # the programme goes on: new ids and card numbers do not collide with the seeded ones
        f = customers.create_file(s, vault, story.actor(db, "alice"), customer_input(50))
        m = members.enrol(s, story.actor(db, "alice"), f.id, cause="application")
        assert members.current_card(s, members.primary_account(s, m).id).number not in numbers
