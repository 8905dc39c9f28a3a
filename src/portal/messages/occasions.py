"""Messages the calendar causes: birthday wishes on the day, points-expiry reminders a month
ahead, and the monthly care message (a batch a leader previews and then sends).

Each is written through ``outbox.enqueue`` with an occasion key (``reference``): the year of a
birthday, the card account and day of an expiring lot, the month of a care message; so a job
run twice, or by two processes at once, writes each occasion once.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit import service as audit
from ..accounts.actor import Actor
from ..customers.birthday import birthday_of, candidates_on
from ..customers.models import CustomerFile
from ..customers.rules import mask_name
from ..membership.members import current_card
from ..membership.models import CardAccount, Membership, PointsEntryRow
from ..membership.points import expiring_lots
from ..membership.programme import settings_on
from ..membership.pricing import birthday_days
from ..membership.rules import birthday_applies
from ..policy import Action
from ..policy.scope import member_scope
from ..vault import Vault
from . import outbox
from .rules import rules_at
from .templates import render

JOB = Actor.system("jobs")


@dataclass
class OccasionReport:
    birthdays: int = 0
    expiry_reminders: int = 0
    skipped: int = 0  # written before, or no consented channel


def benefit_texts(per_mille: int) -> dict:
    """The birthday discount as words: 850 -> 8.5折 / 15% off."""
    return {"benefit_zh": f"{per_mille / 100:g}折优惠", "benefit_en": f"{(1000 - per_mille) / 10:g}% off"}


def enqueue_birthdays(s: Session, vault: Vault, today: date) -> tuple[int, int]:
    settings = settings_on(s, today)
    written = skipped = 0
    rows = s.execute(select(Membership, CustomerFile).join(CustomerFile, CustomerFile.id == Membership.customer_id)
                     .where(Membership.status == "active", CustomerFile.birthday_ct.is_not(None),
                            candidates_on(vault, birthday_days(today)))
                     .order_by(Membership.id)).all()
    for m, f in rows:
        born = birthday_of(vault, f)
        if born is None or not birthday_applies(born, today):
            continue
        account = s.scalars(select(CardAccount).where(CardAccount.membership_id == m.id,
                                                      CardAccount.status != "cancelled")
                            .order_by(CardAccount.id).limit(1)).first()
        card = current_card(s, account.id) if account else None
        ctx = {"card_number": card.number if card else "", "tier": m.tier,
               **benefit_texts(settings.birthday_discount_per_mille)}
        if outbox.enqueue(s, customer_id=f.id, kind="birthday", purpose="service", context=ctx,
                          reference=f"birthday:{today.year}", actor=JOB) is None:
            skipped += 1
        else:
            written += 1
    return written, skipped


def enqueue_expiry_reminders(s: Session, today: date) -> tuple[int, int]:
    days = rules_at(s).expiry_notice_days
    horizon = today + timedelta(days=days)
    accounts = s.execute(
        select(CardAccount, Membership).join(Membership, Membership.id == CardAccount.membership_id)
        .where(Membership.status == "active", CardAccount.status != "cancelled", CardAccount.points_balance > 0,
               CardAccount.id.in_(select(PointsEntryRow.account_id).where(
                   PointsEntryRow.points > 0, PointsEntryRow.expires_on > today,
                   PointsEntryRow.expires_on <= horizon)))
        .order_by(CardAccount.id)).all()
    written = skipped = 0
    for account, m in accounts:
        lots = [lot for lot in expiring_lots(s, account, today) if lot.expires_on <= horizon]
        if not lots:
            continue
        first = lots[0].expires_on
        points = sum(lot.remaining for lot in lots if lot.expires_on == first)
        card = current_card(s, account.id)
        ctx = {"card_number": card.number if card else "", "points": points, "expires_on": first.isoformat(),
               "tier": m.tier}
        if outbox.enqueue(s, customer_id=m.customer_id, kind="points_expiry", purpose="service", context=ctx,
                          reference=f"expiry:{account.id}:{first.isoformat()}", actor=JOB) is None:
            skipped += 1
        else:
            written += 1
    return written, skipped


def enqueue_occasions(db, vault: Vault, today: date) -> OccasionReport:
    """Today's birthday wishes and the points-expiry reminders due (one transaction)."""
    report = OccasionReport()
    with db.write() as s:
        report.birthdays, skipped_b = enqueue_birthdays(s, vault, today)
        report.expiry_reminders, skipped_e = enqueue_expiry_reminders(s, today)
        report.skipped = skipped_b + skipped_e
    return report


# ---------------------------------------------------------------- the monthly care message

@dataclass
class CareBatch:
    month: str                       # "2026-11"
    offer_zh: str
    offer_en: str
    rows: list[dict] = field(default_factory=list)   # masked preview rows
    consented: int = 0
    without_consent: int = 0
    samples: dict = field(default_factory=dict)       # language -> rendered text (a real member's)


def _care_candidates(s: Session, actor: Actor):
    return s.execute(select(Membership, CustomerFile).join(CustomerFile, CustomerFile.id == Membership.customer_id)
                     .where(Membership.status == "active", member_scope(actor, Action.MESSAGES_CARE))
                     .order_by(Membership.id)).all()


def _points(s: Session, m: Membership) -> int:
    return sum(a.points_balance for a in s.scalars(select(CardAccount).where(CardAccount.membership_id == m.id)))


def preview_care(s: Session, vault: Vault, actor: Actor, *, month: str, offer_zh: str, offer_en: str) -> CareBatch:
    """Who would get this month's care message (masked) and what it says, before anything is written."""
    batch = CareBatch(month, offer_zh, offer_en)
    rows = _care_candidates(s, actor)
    audit.record(s, actor, "messages.care_preview", object_type="care", object_id=month,
                 fields=["name"], detail=f"{len(rows)} members in scope")
    for m, f in rows:
        reach = outbox.channel_for(s, f, "marketing")
        name = vault.decrypt(f.name_ct, table="customer_file", column="name", row_id=f.id) or ""
        if reach is None:
            batch.without_consent += 1
        else:
            batch.consented += 1
            channel, language = reach
            if language not in batch.samples:
                values = {"name": name, "month": month[-2:].lstrip("0"), "offer_zh": offer_zh,
                          "offer_en": offer_en, "points": _points(s, m), "opt_out_url": "…"}
                batch.samples[language] = render("care", language, channel, values)
        batch.rows.append({"file_no": f.file_no, "name": mask_name(name), "tier": m.tier,
                           "channel": reach[0] if reach else "", "language": reach[1] if reach else ""})
    return batch


def send_care(s: Session, actor: Actor, *, month: str, offer_zh: str, offer_en: str) -> tuple[int, int]:
    """Write this month's care message for every consenting member in the actor's scope, once each."""
    batch_id = f"care:{month}:{uuid.uuid4().hex[:8]}"
    written = skipped = 0
    for m, f in _care_candidates(s, actor):
        ctx = {"month": month[-2:].lstrip("0"), "offer_zh": offer_zh, "offer_en": offer_en,
               "points": _points(s, m)}
        if outbox.enqueue(s, customer_id=f.id, kind="care", purpose="marketing", context=ctx,
                          reference=f"care:{month}", actor=actor, batch_id=batch_id) is None:
            skipped += 1
        else:
            written += 1
    audit.record(s, actor, "messages.care_send", object_type="care", object_id=month,
                 detail=f"{written} written, {skipped} without consent or already sent; batch {batch_id}")
    return written, skipped
