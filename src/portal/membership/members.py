"""Joining and standing: enrolment, card issue, referrals, tiers and the member's history.

Callers authorise (views through the policy, jobs as the system actor); the functions named
after a use case (``set_tier``; ``applications.submit_application`` and the rest) authorise
themselves through ``customers.service.open_for`` so every path reaches the same decision.
"""
from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import bindparam, func, or_, select, text
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..customers.rules import InvalidField
from ..customers.service import InvalidInput, NotFound, open_for
from ..driver_sql import Prebuilt
from ..messages import outbox
from ..org.models import OrgUnit
from ..org.service import region_of
from ..policy import Action
from ..reports import card_rollup, class_window, rollup, summaries
from .models import (ENDED, CardAccount, MemberCard, MemberEvent, Membership, PointsEntryRow, Purchase,
                     TierChange)
from .programme import settings_on
from .rules import (ProgrammeSettings, Tier, TierCause, card_expires_on, evaluate_tier,
                    format_card_number, programme_today, referral_points, window_start)

REASON_MIN = 5


def require_reason(reason: str, field: str = "reason") -> str:
    reason = (reason or "").strip()
    if len(reason) < REASON_MIN:
        raise InvalidInput({field: f"Give a reason of at least {REASON_MIN} characters."})
    if len(reason) > 500:
        raise InvalidInput({field: "At most 500 characters."})
    return reason


_MEMBERSHIP_OF = select(Membership).where(Membership.customer_id == bindparam("cid"))


def membership_of(s: Session, customer_id: uuid.UUID) -> Membership | None:
    return s.scalar(_MEMBERSHIP_OF, {"cid": customer_id})


def event(s: Session, m: Membership, actor: Actor, kind: str, *, account_id: int | None = None,
          from_value: str = "", to_value: str = "", cause: str = "", reason: str = "") -> MemberEvent:
    """One line of the member's history (append-only)."""
    ev = MemberEvent(membership_id=m.id, account_id=account_id, kind=kind, from_value=from_value[:64],
                     to_value=to_value[:64], cause=cause[:32], reason=reason[:500],
                     actor_id=actor.user_id, at=clock.now())
    s.add(ev)
    if kind == "tier":  # the reports' upgrades and downgrades, in this transaction
        summaries.tier_event(s, m, ev.at, ev.from_value, ev.to_value, cause)
    card_rollup.step_added(s, m, kind, ev.at)
    return ev


def tier_history(s: Session, m: Membership, on: date, from_tier: str, to_tier: str, cause: str = "") -> None:
    """One row of the member's tier over time (append-only; see ``TierChange``), in the caller's
    transaction: joining ("" or "ended" -> regular), a tier change, and the end (tier -> "ended")."""
    s.add(TierChange(membership_id=m.id, changed_on=on, from_tier=from_tier, to_tier=to_tier,
                     cause=cause[:32], at=clock.now()))
    summaries.tier_changed(s, m, on, from_tier, to_tier)  # the reports' tiers over time


# ---------------------------------------------------------------- cards

def region_code_for(s: Session, f: CustomerFile) -> str:
    unit = s.get(OrgUnit, f.unit_id)
    return region_of(s, unit).code


def next_card_number(s: Session, region_code: str) -> tuple[str, int]:
    """Take the next card number of a region in the caller's transaction; never reused."""
    s.execute(text("INSERT INTO card_number_sequence (region_code, next_seq) VALUES (:r, 1) "
                   "ON CONFLICT (region_code) DO NOTHING"), {"r": region_code})
    seq = s.execute(text("UPDATE card_number_sequence SET next_seq = next_seq + 1 "
                         "WHERE region_code = :r RETURNING next_seq - 1"), {"r": region_code}).scalar_one()
    return format_card_number(region_code, seq), seq


def new_card(s: Session, account: CardAccount, region_code: str, on: date,
             replaces: MemberCard | None = None) -> MemberCard:
    number, seq = next_card_number(s, region_code)
    card = MemberCard(number=number, region_code=region_code, seq=seq, account_id=account.id,
                      status="current", issued_on=on, replaces_id=replaces.id if replaces else None,
                      created_at=clock.now())
    s.add(card)
    s.flush()
    summaries.card_issued(s, account.membership_id, on, replaces is not None)  # the reports' new cards
    card_rollup.card_issued(s, account, card)
    return card


def issue_card(s: Session, actor: Actor, m: Membership, f: CustomerFile, *, card_type: str,
               on: date | None = None,
               settings: ProgrammeSettings | None = None) -> tuple[CardAccount, MemberCard]:
    """A new card account with its first card (validity and named/bearer from the programme settings)."""
    on = on or programme_today()
    settings = settings or settings_on(s, on)
    named = settings.card_type(card_type).named  # InvalidField for an unknown type
    now = clock.now()
    account = CardAccount(membership_id=m.id, card_type=card_type, named=named, status="active",
                          issued_on=on, expires_on=card_expires_on(on, settings), created_at=now,
                          updated_at=now)
    s.add(account)
    s.flush()
    summaries.account_opened(s, m.id)
    card_rollup.expiry_set(s, m.id, None, account.expires_on)
    card = new_card(s, account, region_code_for(s, f), on)
    event(s, m, actor, "card_issued", account_id=account.id, to_value=card.number, cause=card_type)
    audit.record(s, actor, "card.issue", object_type="card", object_id=card.number,
                 detail=f"file {f.file_no} type {card_type}")
    return account, card


def current_card(s: Session, account_id: int) -> MemberCard | None:
    return s.scalar(select(MemberCard).where(MemberCard.account_id == account_id,
                                             MemberCard.status == "current"))


def primary_account(s: Session, m: Membership) -> CardAccount | None:
    """The member's oldest account that is not cancelled (where purchases by file land).

    Only the current membership period's accounts count: a membership that ended and restarted
    got a new card (``enrol``), and the old one, issued before the new ``joined_on``, must not
    keep catching the purchases.
    """
    accounts = (select(CardAccount).where(CardAccount.membership_id == m.id, CardAccount.status != "cancelled")
                .order_by(CardAccount.id).limit(1))
    return s.scalar(accounts.where(CardAccount.issued_on >= m.joined_on)) or s.scalar(accounts)


# ---------------------------------------------------------------- joining

def enrol(s: Session, actor: Actor, customer_id: uuid.UUID, *, cause: str, card_type: str = "standard",
          on: date | None = None, referrer: Membership | None = None,
          pay_referral: bool = True) -> Membership:
    """Make a file a member (regular tier) and issue its first card. The caller has authorised.

    A membership that ended (24 months without a purchase) is restarted rather than duplicated.
    The referrer's points are paid once, by the tier at which the member joins: here (regular)
    unless ``pay_referral`` is off, in which case the caller pays them with ``credit_referral``
    once the joining sale has set the tier.
    """
    # Locked: enrolments of one file (a joining purchase, an approval) run one at a time, so the
    # second sees the first's membership instead of failing on UNIQUE(customer_id).
    f = s.get(CustomerFile, customer_id, with_for_update=True)
    if f is None:
        raise NotFound("no such file")
    on = on or programme_today()
    settings = settings_on(s, on)
    now = clock.now()
    m = membership_of(s, f.id)
    if m is not None and m.status == "active":
        raise InvalidField("customer", "member.already", "This customer is already a member.")
    before = "" if m is None else ENDED
    if m is None:
        m = Membership(customer_id=f.id, owner_id=f.owner_id, unit_path=f.unit_path,
                       tier=Tier.REGULAR.value, status="active", joined_on=on, join_cause=cause,
                       referrer_id=referrer.id if referrer else None, created_at=now, updated_at=now)
        s.add(m)
        s.flush()
        summaries.member_restated(s, m.id, None, "", rollup.key_of(m), m.status)
        summaries.joined(s, m)
        class_window.refresh(s, m.id)
    else:
        old_key, old_status = rollup.key_of(m), m.status
        old_join = (m.joined_on, m.join_cause, m.referrer_id is not None)
        m.status, m.tier, m.joined_on, m.join_cause, m.updated_at = "active", Tier.REGULAR.value, on, cause, now
        m.last_purchase_on = None  # the 24 months without a purchase count from the new joining
        if referrer is not None and m.referrer_id is None:
            m.referrer_id = referrer.id
        # The report summaries: the joining moves to its new month and cause, then the member's
        # rows move to the new key (tier regular, status active).
        summaries.join_replaced(s, old_key, old_join, (m.joined_on, m.join_cause, m.referrer_id is not None))
        rollup.member_moved(s, m.id, old_key, rollup.key_of(m), old_status=old_status)
        card_rollup.member_moved(s, m.id, old_key, rollup.key_of(m))
        class_window.refresh(s, m.id)
    event(s, m, actor, "joined", to_value=Tier.REGULAR.value, cause=cause)
    tier_history(s, m, on, before, m.tier, cause)
    # Lock order: card accounts before the audit head (audit.record locks it until commit), so
    # the referrer's account is locked before this transaction writes its first audit entry.
    referrer_account = _referrer_account(s, m)
    if referrer_account is not None:
        from .points import lock_account  # points imports members: keep the cycle at call time
        lock_account(s, referrer_account.id)
        if pay_referral:
            credit_referral(s, actor, m, on)
    audit.record(s, actor, "member.join", object_type="customer", object_id=f.file_no, detail=cause)
    _, card = issue_card(s, actor, m, f, card_type=card_type, on=on, settings=settings)
    # The joining notice (card number, never a password), in this transaction (messages/outbox.py).
    outbox.enqueue(s, customer_id=f.id, kind="joining", purpose="service", actor=actor,
                   context={"card_number": card.number, "tier": m.tier}, reference=f"card:{card.number}")
    return m


def _referrer_account(s: Session, m: Membership) -> CardAccount | None:
    if m.referrer_id is None or m.referrer_id == m.id:
        return None
    referrer = s.get(Membership, m.referrer_id)
    return primary_account(s, referrer) if referrer and referrer.status == "active" else None


def referrer_by_card(s: Session, raw: str) -> Membership | None:
    """The active membership whose card in use has number ``raw`` (None if it has ended)."""
    from .cards import normalise_number  # cards imports members: keep the cycle at call time
    card = s.scalar(select(MemberCard).where(MemberCard.number == normalise_number(raw)))
    if card is None or card.status != "current":
        raise InvalidField("referrer_card", "referrer.unknown", "No card in use has this number.")
    m = s.get(Membership, s.get(CardAccount, card.account_id).membership_id)
    return m if m.status == "active" else None


def credit_referral(s: Session, actor: Actor, m: Membership, on: date) -> int:
    """Referral points for whoever referred ``m``, once, by the tier ``m`` holds on joining.

    Seed 001: "推薦普通會員入會,推薦人可獲100積分;推薦銀卡會員入會,推薦人可獲300積分;..."
    A later upgrade (by spend or by a leader) pays nothing more.
    """
    if m.referral_credited_tier is not None:
        return 0
    account = _referrer_account(s, m)
    if account is None:
        return 0
    owed = referral_points(Tier(m.tier), settings_on(s, on))
    m.referral_credited_tier = m.tier
    if owed <= 0:
        return 0
    from .points import credit_points  # points imports members: keep the cycle at call time
    credit_points(s, actor, account, owed, kind="referral", on=on, ref=f"member:{m.id}",
                  note=f"referral, joined as {m.tier}")
    return owed


# ---------------------------------------------------------------- tiers

def points_in_window(s: Session, m: Membership, today: date, months: int) -> int:
    """Purchase points earned in the window, net of reversals."""
    start = window_start(today, months)
    accounts = select(CardAccount.id).where(CardAccount.membership_id == m.id)
    total = s.scalar(select(func.coalesce(func.sum(PointsEntryRow.points), 0)).where(
        PointsEntryRow.account_id.in_(accounts), PointsEntryRow.kind.in_(("earn", "reversal")),
        PointsEntryRow.on > start, PointsEntryRow.on <= today))
    return max(0, int(total or 0))


def tier_points(s: Session, m: Membership, today: date, settings, *, since: date | None = None) -> int:
    """The points that count toward tiers, as the settings say.

    Accumulated (seed 004: "普通会员积分达10000分可晋级为银卡"): every purchase point, net of
    reversals, since joining or since the last validity review, whichever is later (a review
    starts the count again, as it starts a new validity period), or since ``since``. Otherwise
    the rolling tier window's points.
    """
    if not settings.tier_points_accumulated:
        return points_in_window(s, m, today, settings.tier_window_months)
    start = m.joined_on
    s.flush()  # the statements run on the session's connection: nothing of this session unwritten
    conn = s.connection()
    [(last_review,)] = _LAST_REVIEW.all(conn, {"mid": m.id})
    for day in (since, date.fromisoformat(last_review) if last_review else None):
        if day is not None and day > start:
            start = day
    [(total,)] = _ACCUMULATED.all(conn, {"mid": m.id, "start": start, "today": today})
    return max(0, int(total or 0))


# Built once (the file page reads them on every view of a member), run on the driver's cursor.
_LAST_REVIEW = Prebuilt(select(func.max(MemberEvent.to_value)).where(
    MemberEvent.membership_id == bindparam("mid"), MemberEvent.kind == "validity_review"))
_ACCUMULATED = Prebuilt(select(func.coalesce(func.sum(PointsEntryRow.points), 0)).where(
    PointsEntryRow.account_id.in_(select(CardAccount.id).where(CardAccount.membership_id == bindparam("mid"))),
    or_(PointsEntryRow.kind == "earn", PointsEntryRow.kind == "reversal"),  # (an IN list would need values to compile)
    PointsEntryRow.on >= bindparam("start"), PointsEntryRow.on <= bindparam("today")))


def _window_statement(since: bool):
    p = Purchase.__table__.c
    q = select(func.coalesce(func.max(p.spend_counted_fen), 0), func.coalesce(func.sum(p.spend_counted_fen), 0)
               ).where(p.customer_id == bindparam("cid"), p.status == "complete",
                       p.purchased_on > bindparam("start"), p.purchased_on <= bindparam("today"))
    return q.where(p.purchased_on >= bindparam("since")) if since else q


# Built once (the file page reads them on every view), run on the driver's cursor.
_WINDOW = {False: Prebuilt(_window_statement(False)), True: Prebuilt(_window_statement(True))}


def window_spend_fen(s: Session, customer_id: uuid.UUID, today: date, months: int,
                     since: date | None = None) -> tuple[int, int]:
    """(the biggest, the total) counted spend (special-price lines excluded) of kept purchases in
    the window, and on or after ``since`` when given (a membership's ``spend_counted_from``)."""
    params = {"cid": customer_id, "start": window_start(today, months), "today": today}
    if since is not None:
        params["since"] = since
    s.flush()  # as the ORM query would (autoflush): purchases this session added count
    [(biggest, total)] = _WINDOW[since is not None].all(s.connection(), params)
    return int(biggest or 0), int(total or 0)


def spend_in_window_fen(s: Session, customer_id: uuid.UUID, today: date, months: int,
                        since: date | None = None) -> int:
    """Counted spend of kept purchases in the window (see ``window_spend_fen``)."""
    return window_spend_fen(s, customer_id, today, months, since)[1]


def change_tier(s: Session, actor: Actor, m: Membership, tier: Tier, cause: str, reason: str = "",
                on: date | None = None) -> None:
    f = s.get(CustomerFile, m.customer_id)
    old, old_key = m.tier, rollup.key_of(m)
    m.tier, m.updated_at = Tier(tier).value, clock.now()
    rollup.member_moved(s, m.id, old_key, rollup.key_of(m))
    card_rollup.member_moved(s, m.id, old_key, rollup.key_of(m))
    class_window.refresh(s, m.id)
    event(s, m, actor, "tier", from_value=old, to_value=m.tier, cause=cause, reason=reason)
    tier_history(s, m, on or programme_today(), old, m.tier, cause)
    audit.record(s, actor, "member.tier", object_type="customer", object_id=f.file_no,
                 reason=reason, detail=f"{old} -> {m.tier} ({cause})")


def reevaluate(s: Session, actor: Actor, m: Membership, today: date, *,
               at_validity_end: bool = False, purchase_fen: int = 0) -> Tier | None:
    """Apply the tier rules now; returns the new tier when it changed.

    No tier changes while the member's card is cancelled (seed 003). At the end of a card's
    validity the whole validity period's spend is reviewed (seed 002: "在两年内"), and a single
    purchase of ``purchase_fen`` may give a tier at once when the settings say so.
    """
    if m.status != "active":
        return None
    if primary_account(s, m) is None:  # every card cancelled
        return None
    settings = settings_on(s, today)
    since = m.spend_counted_from
    period = spend_in_window_fen(s, m.customer_id, today, 12 * settings.card_validity_years, since) \
        if at_validity_end else None
    decision = evaluate_tier(
        Tier(m.tier), tier_points(s, m, today, settings, since=today if at_validity_end else since),
        spend_in_window_fen(s, m.customer_id, today, settings.tier_window_months, since),
        at_validity_end=at_validity_end, floor=Tier(m.tier_floor) if m.tier_floor else None,
        ceiling=Tier(m.tier_ceiling) if m.tier_ceiling else None, settings=settings,
        period_spend_fen=period, purchase_fen=purchase_fen)
    if not decision.changed:
        return None
    change_tier(s, actor, m, decision.tier, (decision.cause or TierCause.UPGRADE).value, on=today)
    return decision.tier


def _tier_or_none(raw: str, field: str, errors: dict[str, str]) -> Tier | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return Tier(raw)
    except ValueError:
        errors[field] = "Choose regular, silver, gold or platinum."
        return None


def set_tier(s: Session, actor: Actor, customer_id, *, tier: str, floor: str = "", ceiling: str = "",
             reason: str) -> Membership:
    """A leader's decision: a tier (platinum only this way), and optionally a floor or ceiling."""
    f, _grant = open_for(s, actor, customer_id, Action.MEMBER_TIER)
    m = membership_of(s, f.id)
    if m is None or m.status != "active":
        raise InvalidInput({"tier": "This customer is not a member."})
    errors: dict[str, str] = {}
    new = _tier_or_none(tier, "tier", errors) or Tier(m.tier)
    lo = _tier_or_none(floor, "floor", errors)
    hi = _tier_or_none(ceiling, "ceiling", errors)
    if lo and hi and lo > hi:
        errors["ceiling"] = "The ceiling cannot be below the floor."
    if lo and new < lo:
        errors["tier"] = "The tier cannot be below the floor."
    if hi and new > hi:
        errors["tier"] = "The tier cannot be above the ceiling."
    try:
        reason = require_reason(reason)
    except InvalidInput as exc:
        errors.update(exc.errors)
    if errors:
        raise InvalidInput(errors)
    bounds_before = (m.tier_floor, m.tier_ceiling)
    m.tier_floor, m.tier_ceiling = (lo.value if lo else None), (hi.value if hi else None)
    if bounds_before != (m.tier_floor, m.tier_ceiling):
        event(s, m, actor, "tier_bounds", from_value=f"{bounds_before[0] or '-'}..{bounds_before[1] or '-'}",
              to_value=f"{m.tier_floor or '-'}..{m.tier_ceiling or '-'}", cause="manual", reason=reason)
        audit.record(s, actor, "member.tier", object_type="customer", object_id=f.file_no, reason=reason,
                     detail=f"floor {m.tier_floor or '-'} ceiling {m.tier_ceiling or '-'}")
    if new.value != m.tier:
        change_tier(s, actor, m, new, "manual", reason)
    return m
