"""A small, hand-computed book of members for the report tests (rows written directly, so every
figure below is known): the story's files of alice (3), charlie (2), bob (1) and frank (1) as
members, with purchases, tier moves, card steps and points in 2025.

    member  owner    unit  tier     joined      cause            purchases in 2025 (yuan)
    A1      alice    755A  gold     2025-01-10  single_purchase  12 x 4,000 (10th of each month)   = 48,000
    A2      alice    755A  silver   2025-02-15  cumulative       2025-02-15 7,000; 2025-08-20 17,000 = 24,000
    A3      alice    755A  regular  2024-06-01  import           2025-07-15 7,000
    C1      charlie  755B  regular  2025-04-01  application      2025-04-01 2,000
    C2      charlie  755B  regular  2025-04-02  application      2025-04-02 3,000
    B1      bob      755A  regular  2025-07-01  application      2025-07-01 1,500
    F1      frank    010A  regular  2025-03-03  application      2025-03-03   900

Tiers over time (TIER_HISTORY): A1 gold from 2025-03-05, A2 silver from 2025-08-20, C1 silver from
2025-06-01 to 2025-10-01, A3 ended from 2024-03-01 to its restart on 2024-06-01.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select

from portal.customers.models import CustomerFile
from portal.reports import card_rollup, rollup
from portal.membership.models import (CardAccount, MemberCard, MemberEvent, Membership, PointsEntryRow, Purchase,
                                      PurchaseLineRow, TierChange)

SH = timezone(timedelta(hours=8))
MEMBERS = {  # key: (owner, file index, tier, joined, cause, points balance, stored value fen, expires)
    "A1": ("alice", 0, "gold", date(2025, 1, 10), "single_purchase", 11_000, 0, date(2027, 1, 10)),
    "A2": ("alice", 1, "silver", date(2025, 2, 15), "cumulative", 0, 50_000, date(2027, 2, 15)),
    "A3": ("alice", 2, "regular", date(2024, 6, 1), "import", 7_000, 0, date(2025, 11, 30)),
    "C1": ("charlie", 0, "regular", date(2025, 4, 1), "application", 0, 0, date(2027, 4, 1)),
    "C2": ("charlie", 1, "regular", date(2025, 4, 2), "application", 0, 0, date(2027, 4, 2)),
    "B1": ("bob", 0, "regular", date(2025, 7, 1), "application", 1_500, 0, date(2027, 7, 1)),
    "F1": ("frank", 0, "regular", date(2025, 3, 3), "application", 0, 0, date(2027, 3, 3)),
}
PURCHASES = ([("A1", date(2025, m, 10), 400_000, "茅台") for m in range(1, 13)]
             + [("A2", date(2025, 2, 15), 700_000, "五粮液"), ("A2", date(2025, 8, 20), 1_700_000, "茅台"),
                ("A3", date(2025, 7, 15), 700_000, "剑南春"), ("C1", date(2025, 4, 1), 200_000, "五粮液"),
                ("C2", date(2025, 4, 2), 300_000, "剑南春"), ("B1", date(2025, 7, 1), 150_000, "茅台"),
                ("F1", date(2025, 3, 3), 90_000, "茅台")])
# (member, kind, from, to, cause, day, actor)
EVENTS = [("A1", "tier", "regular", "gold", "upgrade", date(2025, 3, 5), "alice"),
          ("A2", "tier", "regular", "silver", "upgrade", date(2025, 8, 20), "alice"),
          ("C1", "tier", "silver", "regular", "downgrade", date(2025, 10, 1), None),
          ("A2", "loss", "current", "lost", "", date(2025, 9, 1), "alice"),
          ("C2", "freeze", "active", "frozen", "", date(2025, 10, 10), "charlie")]
# The tiers over time (tier_change), as the reports count members by tier at a date: every member
# joins at regular; A3 first joined in 2023, ended in March 2024 and restarted on 2024-06-01; C1 was
# silver from June to October 2025 (member, day, from, to, cause).
TIER_HISTORY = [("A1", date(2025, 1, 10), "", "regular", "single_purchase"),
                ("A1", date(2025, 3, 5), "regular", "gold", "upgrade"),
                ("A2", date(2025, 2, 15), "", "regular", "cumulative"),
                ("A2", date(2025, 8, 20), "regular", "silver", "upgrade"),
                ("A3", date(2023, 5, 1), "", "regular", "import"),
                ("A3", date(2024, 3, 1), "regular", "ended", "no_purchase"),
                ("A3", date(2024, 6, 1), "ended", "regular", "import"),
                ("C1", date(2025, 4, 1), "", "regular", "application"),
                ("C1", date(2025, 6, 1), "regular", "silver", "upgrade"),
                ("C1", date(2025, 10, 1), "silver", "regular", "downgrade"),
                ("C2", date(2025, 4, 2), "", "regular", "application"),
                ("B1", date(2025, 7, 1), "", "regular", "application"),
                ("F1", date(2025, 3, 3), "", "regular", "application")]
# Points in July 2025: earned by A1, A3, B1; A1 redeems 1,000.
POINTS = [("A1", "earn", 12_000, date(2025, 7, 10)), ("A3", "earn", 7_000, date(2025, 7, 15)),
          ("B1", "earn", 1_500, date(2025, 7, 1)), ("A1", "redeem", -1_000, date(2025, 7, 20))]


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), SH).astimezone(timezone.utc)


def build_book(db, story) -> dict[str, int]:
    """Write the book; returns member key -> membership id."""
    ids: dict[str, int] = {}
    accounts: dict[str, int] = {}
    seq = 900
    with db.write() as s:
        for key, (owner, i, tier, joined, cause, balance, stored, expires) in MEMBERS.items():
            f = s.get(CustomerFile, uuid.UUID(story.files[owner][i]))
            now = at(joined)
            m = Membership(customer_id=f.id, owner_id=f.owner_id, unit_path=f.unit_path, tier=tier, status="active",
                           joined_on=joined, join_cause=cause, created_at=now, updated_at=now)
            s.add(m)
            s.flush()
            ids[key] = m.id
            acct = CardAccount(membership_id=m.id, card_type="standard", issued_on=joined, expires_on=expires,
                               points_balance=balance, stored_value_fen=stored, created_at=now, updated_at=now)
            s.add(acct)
            s.flush()
            accounts[key] = acct.id
            seq += 1
            card = MemberCard(number=f"T{seq}", region_code="T", seq=seq, account_id=acct.id, issued_on=joined,
                              created_at=now)
            s.add(card)
            s.add(MemberEvent(membership_id=m.id, account_id=acct.id, kind="card_issued", to_value=card.number,
                              cause="standard", actor_id=story.users[owner], at=now))
            s.flush()
            if key == "A2":  # lost on 2025-09-01, replaced the next day by alice
                new = MemberCard(number="T999", region_code="T", seq=999, account_id=acct.id,
                                 issued_on=date(2025, 9, 2), replaces_id=card.id, created_at=at(date(2025, 9, 2)))
                s.add(new)
                s.add(MemberEvent(membership_id=m.id, account_id=acct.id, kind="replace", from_value=card.number,
                                  to_value="T999", actor_id=story.users["alice"], at=at(date(2025, 9, 2))))
        for n, (key, day, fen, product) in enumerate(PURCHASES):
            p = Purchase(receipt_no=f"RPT-{n:03d}", customer_id=None, membership_id=ids[key], account_id=accounts[key],
                         purchased_on=day, payment_method="cash", list_total_fen=fen, discount_total_fen=0,
                         paid_total_fen=fen, rate_per_mille=1000, discount_reason="none", created_at=at(day))
            s.add(p)
            s.flush()
            s.add(PurchaseLineRow(purchase_id=p.id, line_no=1, product=product, quantity=1, unit_price_fen=fen,
                                  list_fen=fen, paid_fen=fen))
        for key, kind, frm, to, cause, day, who in EVENTS:
            s.add(MemberEvent(membership_id=ids[key], account_id=accounts[key], kind=kind, from_value=frm,
                              to_value=to, cause=cause, actor_id=story.users[who] if who else None, at=at(day)))
        for key, day, frm, to, cause in TIER_HISTORY:
            s.add(TierChange(membership_id=ids[key], changed_on=day, from_tier=frm, to_tier=to, cause=cause,
                             at=at(day)))
        for key, kind, points, day in POINTS:
            s.add(PointsEntryRow(account_id=accounts[key], kind=kind, points=points, on=day, created_at=at(day)))
        s.flush()
        rollup.rebuild(s)  # written in bulk, as a seeder does: the summaries from the facts
        card_rollup.rebuild(s)
    return ids
