"""Member coupons (seed 001): campaigns, birthday coupons by tier, use at a purchase, withdrawal, expiry.

A campaign is issued by a leader to the members of their units (or by an administrator to every
member) in some tiers; a birthday coupon is the tier's benefit, issued by ``portal jobs coupons``
on the member's birthday, once a year. Each coupon is one member's, with a random code, and is
used once: its ledger (``CouponEntry``, append-only) takes one ending (used, expired, voided),
written in the same transaction as the ``status`` it caches. At a purchase the coupon row is
locked (SELECT ... FOR UPDATE) and its status moved from "issued" by a compare-and-set, and the
ledger's unique (coupon, kind) stands behind both: of two purchases using one coupon at once,
one wins and the other is refused. Every step is audited.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.birthday import birthday_of, candidates_on
from ..customers.models import CustomerFile
from ..customers.service import InvalidInput, NotFound
from ..policy import Action, PermissionDenied, can, may_perform
from ..policy.enforcer import allowed_relations
from ..policy.actions import Relation
from ..policy.scope import member_scope, subtree_range
from ..vault import Vault
from .coupon_rules import (CouponEntryKind, CouponKind, CouponRefused, CouponTerms, check_usable, new_code,
                           next_entry, normalise_code, refuse_ended, tiers_text)
from .members import require_reason
from .models import Coupon, CouponCampaign, CouponEntry, Membership
from .programme import settings_on
from .pricing import birthday_days
from .rules import birthday_applies, programme_today
from .settings import Tier

log = logging.getLogger(__name__)

__all__ = ["CouponJobReport", "campaign_terms", "campaigns_in_reach", "coupon_for_purchase", "coupons_of",
           "expire_due", "issue_birthday_coupons", "issue_campaign", "mark_used", "run_coupon_jobs",
           "terms_of", "void_coupon"]

NAME_MAX = 100


def terms_of(c: Coupon | CouponCampaign) -> CouponTerms:
    return CouponTerms(kind=c.kind, valid_from=c.valid_from, valid_until=c.valid_until,
                       tiers=tuple(t for t in c.tiers.split(",") if t), amount_fen=c.amount_fen,
                       rate_per_mille=c.rate_per_mille, min_spend_fen=c.min_spend_fen)


def _new_coupon(membership_id: int, terms: CouponTerms, *, source: str, campaign_id: int | None = None,
                benefit_key: str | None = None) -> Coupon:
    now = clock.now()
    return Coupon(code=new_code(), membership_id=membership_id, campaign_id=campaign_id, source=source,
                  benefit_key=benefit_key, kind=terms.kind.value, amount_fen=terms.amount_fen,
                  rate_per_mille=terms.rate_per_mille, min_spend_fen=terms.min_spend_fen,
                  valid_from=terms.valid_from, valid_until=terms.valid_until, tiers=",".join(terms.tiers),
                  status=CouponEntryKind.ISSUED.value, created_at=now, updated_at=now)


def _issued_entries(s: Session, actor: Actor, coupons: list[Coupon], on: date, note: str) -> None:
    s.flush()  # the coupons' ids
    now = clock.now()
    s.add_all([CouponEntry(coupon_id=c.id, kind=next_entry([], "issued").value, on=on, note=note[:500],
                           actor_id=actor.user_id, created_at=now) for c in coupons])
    s.flush()


# ---------------------------------------------------------------- campaigns

def campaign_terms(*, kind: str, amount_fen: int | None, rate_per_mille: int | None, min_spend_fen: int,
                   valid_from: date | None, valid_until: date | None, tiers: list[str],
                   today: date) -> CouponTerms:
    """The campaign's terms, or InvalidInput naming every bad field (amount, discount, min_spend,
    valid_from, valid_until, tiers)."""
    errors: dict[str, str] = {}
    if kind not in (CouponKind.AMOUNT, CouponKind.DISCOUNT):
        errors["kind"] = "Choose an amount off or a discount."
    elif kind == CouponKind.AMOUNT and not (amount_fen and 1 <= amount_fen <= 100_000_000):
        errors["amount"] = "Enter the amount off in yuan, from 0.01 to 1,000,000."
    elif kind == CouponKind.DISCOUNT and not (rate_per_mille and 1 <= rate_per_mille < 1000):
        errors["discount"] = "Enter the discount in 折, below 10 (e.g. 9 for 10 percent off)."
    if not 0 <= min_spend_fen <= 100_000_000:
        errors["min_spend"] = "Enter the minimum spend in yuan, from 0 to 1,000,000."
    if valid_from is None or valid_from < today:
        errors["valid_from"] = "The first day is today or later."
    if valid_until is None or (valid_from is not None and valid_until < valid_from):
        errors["valid_until"] = "The last day is on or after the first."
    elif valid_until > today + timedelta(days=3 * 366):
        errors["valid_until"] = "A coupon is valid for at most three years."
    try:
        chosen = tiers_text(tiers) if tiers else ""
    except ValueError:
        chosen = ""
    if not chosen:
        errors["tiers"] = "Choose at least one tier."
    if errors:
        raise InvalidInput(errors)
    return CouponTerms(kind=kind, valid_from=valid_from, valid_until=valid_until, tiers=tuple(chosen.split(",")),
                       amount_fen=amount_fen or 0 if kind == CouponKind.AMOUNT else 0,
                       rate_per_mille=rate_per_mille if kind == CouponKind.DISCOUNT else 1000,
                       min_spend_fen=min_spend_fen)


def issue_campaign(s: Session, actor: Actor, *, name: str, terms: CouponTerms, reason: str) -> CouponCampaign:
    """One coupon for every active member in the issuer's reach (``member_scope`` of coupon.issue:
    a leader's units, everyone for an administrator) whose tier is among the terms' tiers."""
    if not may_perform(actor, Action.COUPON_ISSUE):
        raise PermissionDenied(Action.COUPON_ISSUE)
    name = " ".join((name or "").split())
    if not name or len(name) > NAME_MAX:
        raise InvalidInput({"name": "Name the campaign (at most 100 characters)."})
    reason = require_reason(reason)
    ids = list(s.scalars(select(Membership.id).where(
        member_scope(actor, Action.COUPON_ISSUE), Membership.status == "active",
        Membership.tier.in_(terms.tiers)).order_by(Membership.id)))
    campaign = CouponCampaign(name=name, kind=terms.kind.value, amount_fen=terms.amount_fen,
                              rate_per_mille=terms.rate_per_mille, min_spend_fen=terms.min_spend_fen,
                              valid_from=terms.valid_from, valid_until=terms.valid_until,
                              tiers=",".join(terms.tiers), unit_path=actor.unit_path or "/",
                              issued_count=len(ids), note=reason, created_by_id=actor.user_id,
                              created_at=clock.now())
    s.add(campaign)
    s.flush()
    coupons = [_new_coupon(mid, terms, source="campaign", campaign_id=campaign.id) for mid in ids]
    s.add_all(coupons)
    _issued_entries(s, actor, coupons, programme_today(), f"campaign {campaign.id}")
    audit.record(s, actor, "coupon.issue", object_type="coupon_campaign", object_id=str(campaign.id),
                 reason=reason, detail=f"{len(ids)} coupon(s) to {campaign.tiers}: {name}")
    return campaign


def _campaign_scope(actor: Actor):
    if Relation.ANY in allowed_relations(actor.role, Action.COUPON_VIEW):
        return None
    if actor.role == "leader" and actor.unit_path:
        lo, hi = subtree_range(actor.unit_path)
        return (CouponCampaign.unit_path >= lo) & (CouponCampaign.unit_path < hi)
    return CouponCampaign.id.is_(None)  # nothing


@dataclass
class CampaignRow:
    campaign: CouponCampaign
    counts: dict[str, int] = field(default_factory=dict)  # status -> coupons


def campaigns_in_reach(s: Session, actor: Actor, limit: int = 50) -> list[CampaignRow]:
    """The campaigns issued within the viewer's reach, newest first, with how many coupons are in
    each state (figures only)."""
    if not may_perform(actor, Action.COUPON_VIEW):
        raise PermissionDenied(Action.COUPON_VIEW)
    q = select(CouponCampaign).order_by(CouponCampaign.id.desc()).limit(limit)
    scope = _campaign_scope(actor)
    if scope is not None:
        q = q.where(scope)
    rows = [CampaignRow(c) for c in s.scalars(q)]
    by_id = {r.campaign.id: r for r in rows}
    if by_id:
        for cid, status, n in s.execute(select(Coupon.campaign_id, Coupon.status, func.count())
                                        .where(Coupon.campaign_id.in_(by_id)).group_by(Coupon.campaign_id, Coupon.status)):
            by_id[cid].counts[status] = n
    return rows


# ---------------------------------------------------------------- the tier's birthday coupon

def issue_birthday_coupons(s: Session, vault: Vault, today: date) -> int:
    """Today's birthday coupons: the tier's amount (settings; 0 = none), valid from today for
    ``birthday_coupon_days`` days, once a year per member (``benefit_key``)."""
    settings = settings_on(s, today)
    actor = Actor.system("jobs.coupons")
    key = f"birthday:{today.year}"
    tiers = tuple(t.value for t in Tier)
    rows = s.execute(select(Membership, CustomerFile).join(CustomerFile, CustomerFile.id == Membership.customer_id)
                     .where(Membership.status == "active", CustomerFile.birthday_ct.is_not(None),
                            candidates_on(vault, birthday_days(today)),
                            ~Membership.id.in_(select(Coupon.membership_id).where(Coupon.benefit_key == key)))
                     .order_by(Membership.id)).all()
    issued: list[Coupon] = []
    for m, f in rows:
        amount = settings.birthday_coupon_fen(Tier(m.tier))
        born = birthday_of(vault, f)
        if not amount or born is None or not birthday_applies(born, today):
            continue
        terms = CouponTerms(kind=CouponKind.AMOUNT, valid_from=today,
                            valid_until=today + timedelta(days=settings.birthday_coupon_days - 1),
                            tiers=tiers, amount_fen=amount)
        issued.append(_new_coupon(m.id, terms, source="birthday", benefit_key=key))
    if issued:
        s.add_all(issued)
        _issued_entries(s, actor, issued, today, f"birthday {today.year}")
        audit.record(s, actor, "coupon.birthday", object_type="coupon", object_id=key,
                     detail=f"{len(issued)} birthday coupon(s)")
    return len(issued)


# ---------------------------------------------------------------- use, withdrawal, expiry

def _end(s: Session, actor: Actor, c: Coupon, kind: CouponEntryKind, on: date, *,
         purchase_id: int | None = None, note: str = "") -> CouponEntry:
    """Move an issued coupon to its one ending and append the entry, or CouponRefused."""
    moved = s.execute(update(Coupon).where(Coupon.id == c.id, Coupon.status == CouponEntryKind.ISSUED.value)
                      .values(status=kind.value, updated_at=clock.now())
                      .execution_options(synchronize_session="fetch")).rowcount
    if moved != 1:  # another transaction ended it first
        s.refresh(c)
        refuse_ended(c.status)
        raise CouponRefused("coupon.used", "This coupon has already been used: a coupon is used once.")
    kinds = list(s.scalars(select(CouponEntry.kind).where(CouponEntry.coupon_id == c.id).order_by(CouponEntry.id)))
    entry = CouponEntry(coupon_id=c.id, kind=next_entry(kinds, kind).value, on=on, purchase_id=purchase_id,
                        note=note[:500], actor_id=actor.user_id, created_at=clock.now())
    s.add(entry)
    s.flush()
    return entry


def coupon_for_purchase(s: Session, membership_id: int, raw_code: str, tier: Tier, on: date) -> Coupon:
    """The buyer's coupon with this code, locked, usable on ``on`` at ``tier``; CouponRefused
    otherwise. A code that is not this member's is "no such coupon" (never whose it is)."""
    code = normalise_code(raw_code)
    c = s.scalar(select(Coupon).where(Coupon.code == code).with_for_update()
                 .execution_options(populate_existing=True)) if code else None
    if c is None or c.membership_id != membership_id:
        raise CouponRefused("coupon.unknown", "No such coupon for this member: check the code.")
    check_usable(terms_of(c), state=c.status, tier=tier, on=on)
    return c


def mark_used(s: Session, actor: Actor, c: Coupon, purchase_id: int, on: date, receipt_no: str) -> None:
    _end(s, actor, c, CouponEntryKind.USED, on, purchase_id=purchase_id, note=f"receipt {receipt_no}")


def void_coupon(s: Session, actor: Actor, raw_code: str, reason: str) -> Coupon:
    """Withdraw an unused coupon (issued in error, a member's request), by a leader above the
    member or an administrator; audited with the reason."""
    code = normalise_code(raw_code)
    if code is None:
        raise InvalidInput({"code": "Enter the coupon's code, like 7KQ2-M9XB-A4TD."})
    c = s.scalar(select(Coupon).where(Coupon.code == code).with_for_update())
    if c is None:
        raise NotFound("no such coupon")
    m = s.get(Membership, c.membership_id)
    if not can(actor, Action.COUPON_VOID, owner_id=m.owner_id, unit_path=m.unit_path):
        raise PermissionDenied(Action.COUPON_VOID, str(c.id))
    reason = require_reason(reason)
    if c.status != CouponEntryKind.ISSUED:
        raise InvalidInput({"code": "Only an unused coupon can be withdrawn."})
    _end(s, actor, c, CouponEntryKind.VOIDED, programme_today(), note=reason)
    f = s.get(CustomerFile, m.customer_id)
    audit.record(s, actor, "coupon.void", object_type="coupon", object_id=str(c.id), reason=reason,
                 detail=f"file {f.file_no}")
    return c


def expire_due(s: Session, today: date) -> int:
    """An ``expired`` entry for every unused coupon whose last day is before ``today`` (idempotent)."""
    actor = Actor.system("jobs.coupons")
    due = list(s.scalars(select(Coupon).where(Coupon.status == CouponEntryKind.ISSUED.value,
                                              Coupon.valid_until < today).order_by(Coupon.id).with_for_update()))
    for c in due:
        _end(s, actor, c, CouponEntryKind.EXPIRED, c.valid_until + timedelta(days=1))
    if due:
        audit.record(s, actor, "coupon.expire", object_type="coupon", object_id=today.isoformat(),
                     detail=f"{len(due)} coupon(s) expired")
    return len(due)


def coupons_of(s: Session, membership_id: int, limit: int = 30) -> list[Coupon]:
    return list(s.scalars(select(Coupon).where(Coupon.membership_id == membership_id)
                          .order_by(Coupon.id.desc()).limit(limit)))


@dataclass
class CouponJobReport:
    expired: int = 0
    birthday: int = 0


def run_coupon_jobs(db, vault: Vault, today: date | None = None) -> CouponJobReport:
    """``portal jobs coupons``: expire what is past its last day, then issue today's birthday coupons."""
    today = today or programme_today()
    report = CouponJobReport()
    with db.write() as s:
        report.expired = expire_due(s, today)
    with db.write() as s:
        report.birthday = issue_birthday_coupons(s, vault, today)
    return report
