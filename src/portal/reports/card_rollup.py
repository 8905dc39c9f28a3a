"""The card_month summary (card tracking and the card issue list's total): card steps per (month,
owner, unit path, tier, kind) of the members as they stand now. Written where the facts are:
a card step appended to a member's history (``members.event``), a card account's expiry set or
moved (issue, renewal), a card number issued (``members.new_card``, also listed in card_issue for
the issue list); a member's counts and card_issue rows move with
them when the owner, unit or tier changes; bulk loads rebuild it from the facts in one INSERT ... SELECT.
"""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session

from ..membership.models import CardAccount, MemberCard, MemberEvent, Membership
from .models import CardIssue as CI, CardMonth as CM
from .sqlfn import SHANGHAI_HOURS, month_of
from ..upsert import add_up

# member_event kinds that are card steps (the tracking table's columns, with "expired" and the
# issue list's "card").
EVENT_KINDS = ("card_issued", "replace", "loss", "freeze", "renew", "cancel")
EXPIRED, CARD = "expired", "card"
Key = tuple[int, str, str]  # owner_id, unit_path, tier


def key_of(m: Membership) -> Key:
    return (m.owner_id, m.unit_path, m.tier)


def _month(on: date) -> str:
    return f"{on.year:04d}-{on.month:02d}"


def _event_month(at: datetime) -> str:
    return _month((at + timedelta(hours=SHANGHAI_HOURS)).date())


def _add(s: Session, key: Key, counts: dict[tuple[str, str], int], sign: int = 1) -> None:
    """Add (sign -1: take away) counts per (month, kind) under a key: an upsert with increments."""
    rows = [{"month": mo, "owner_id": key[0], "unit_path": key[1], "tier": key[2], "kind": kind, "n": sign * n}
            for (mo, kind), n in counts.items()]
    add_up(s, CM, ("month", "owner_id", "unit_path", "tier", "kind"), ("n",), rows)


def step_added(s: Session, m: Membership, kind: str, at: datetime) -> None:
    """A member_event was appended: counted when it is a card step."""
    if kind in EVENT_KINDS:
        _add(s, key_of(m), {(_event_month(at), kind): 1})


def expiry_set(s: Session, membership_id: int, old: date | None, new: date | None) -> None:
    """A card account's expiry was set (old None) or moved."""
    if old == new:
        return
    m = s.get(Membership, membership_id)
    counts: Counter = Counter()
    if old is not None:
        counts[(_month(old), EXPIRED)] -= 1
    if new is not None:
        counts[(_month(new), EXPIRED)] += 1
    _add(s, key_of(m), counts)


def card_issued(s: Session, account: CardAccount, card: MemberCard) -> None:
    """A card number was issued on an account (a first card or a replacement)."""
    m = s.get(Membership, account.membership_id)
    _add(s, key_of(m), {(_month(card.issued_on), CARD): 1})
    s.execute(CI.__table__.insert().values(card_id=card.id, membership_id=m.id, issued_on=card.issued_on,
                                           number=card.number, owner_id=m.owner_id, unit_path=m.unit_path,
                                           tier=m.tier))


def _facts(where=()):
    """(membership id, month, kind) of every card fact, in SQL."""
    events = (select(MemberEvent.membership_id.label("mid"), month_of(MemberEvent.at, SHANGHAI_HOURS).label("month"),
                     MemberEvent.kind.label("kind"))
              .where(MemberEvent.kind.in_(EVENT_KINDS), *[w(MemberEvent.membership_id) for w in where]))
    expiries = select(CardAccount.membership_id, month_of(CardAccount.expires_on), literal(EXPIRED)) \
        .where(*[w(CardAccount.membership_id) for w in where])
    cards = (select(CardAccount.membership_id, month_of(MemberCard.issued_on), literal(CARD))
             .join(CardAccount, CardAccount.id == MemberCard.account_id)
             .where(*[w(CardAccount.membership_id) for w in where]))
    return union_all(events, expiries, cards).subquery()


def member_history(s: Session, membership_id: int) -> Counter:
    s.flush()
    f = _facts([lambda col: col == membership_id])
    return Counter({(mo, kind): n for mo, kind, n in s.execute(
        select(f.c.month, f.c.kind, func.count()).group_by(f.c.month, f.c.kind))})


def member_moved(s: Session, membership_id: int, old: Key, new: Key) -> None:
    """The member's owner, unit or tier changed: their counts go from the old key to the new."""
    if old == new:
        return
    history = member_history(s, membership_id)
    _add(s, old, history, -1)
    _add(s, new, history, 1)
    s.execute(CI.__table__.update().where(CI.membership_id == membership_id)
              .values(owner_id=new[0], unit_path=new[1], tier=new[2]))


def rebuild(conn) -> None:
    """Recompute the summary from the facts in the database (bulk loads, the demo, tests)."""
    f = _facts()
    conn.execute(CM.__table__.delete())
    q = (select(f.c.month, Membership.owner_id, Membership.unit_path, Membership.tier, f.c.kind, func.count())
         .join(Membership, Membership.id == f.c.mid)
         .group_by(f.c.month, Membership.owner_id, Membership.unit_path, Membership.tier, f.c.kind))
    conn.execute(CM.__table__.insert().from_select(["month", "owner_id", "unit_path", "tier", "kind", "n"], q))
    conn.execute(CI.__table__.delete())
    conn.execute(CI.__table__.insert().from_select(
        ["card_id", "membership_id", "issued_on", "number", "owner_id", "unit_path", "tier"],
        select(MemberCard.id, Membership.id, MemberCard.issued_on, MemberCard.number, Membership.owner_id,
               Membership.unit_path, Membership.tier)
        .join(CardAccount, CardAccount.id == MemberCard.account_id)
        .join(Membership, Membership.id == CardAccount.membership_id)))
