"""Demo data for messages to members: contact preferences and consent on a few of alice's
members, and this month's care message from bob, which reaches only those who agreed.

`make run` then runs `portal jobs send`: without PORTAL_SMTP_HOST the e-mails land in the
maildir PORTAL_MAIL_DIR (./var/mail) and, without PORTAL_SMS_GATEWAY_URL, the SMS in
PORTAL_SMS_FILE (./var/sms.jsonl); bob and cathy see them on /outbox.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .accounts.actor import Actor
from .accounts.models import User
from .consent import service as consent
from .customers.models import CustomerFile
from .membership.models import Membership
from .membership.rules import programme_today
from .messages import contact, occasions
from .messages.models import MemberContact
from .org.models import OrgUnit
from .vault import Vault


def _actor(s: Session, username: str) -> Actor | None:
    from .accounts import service as accounts
    u = s.scalar(select(User).where(User.username == username))
    return accounts.actor_for(u, s.get(OrgUnit, u.unit_id), "127.0.0.1") if u else None


def seed(s: Session, vault: Vault, summary) -> None:
    """Idempotent: once alice's first member has contact preferences, nothing more is done."""
    alice, bob = _actor(s, "alice"), _actor(s, "bob")
    if alice is None or bob is None:
        return
    files = list(s.scalars(select(CustomerFile).join(Membership, Membership.customer_id == CustomerFile.id)
                           .where(Membership.owner_id == alice.user_id, Membership.status == "active")
                           .order_by(Membership.id).limit(3)))
    if len(files) < 3:
        return
    by_email, by_sms_en, withdrawn = files
    month = programme_today().strftime("%Y-%m")
    if s.get(MemberContact, by_email.id) is None:
        _seed(s, vault, alice, bob, by_email, by_sms_en, withdrawn, month)
    summary.notes.append(
        f"messages: file {by_email.file_no} gets e-mail (marketing agreed), {by_sms_en.file_no} SMS in English, "
        f"{withdrawn.file_no} withdrew marketing (see each file's 'Consent and messages'); bob's care message "
        f"went to the first two only. `portal jobs send` delivers what is due (e-mail into ./var/mail, SMS into "
        f"./var/sms.jsonl unless PORTAL_SMTP_HOST / PORTAL_SMS_GATEWAY_URL are set; no SMS 21:00-08:00); "
        f"bob and cathy see /outbox")


def _seed(s: Session, vault: Vault, alice: Actor, bob: Actor, by_email, by_sms_en, withdrawn, month: str) -> None:
    contact.set_contact(s, vault, alice, by_email, email=f"vip{by_email.file_no.replace(' ', '')}@example.com", language="zh_CN",
                        channel="email")
    consent.record(s, alice, by_email.id, channel="email", purpose="marketing", given=True, method="paper_form",
                   collected="name,email,birthday,purchases", note="会员申请表 (demo)")
    contact.set_contact(s, vault, alice, by_sms_en, email="", language="en", channel="sms")
    consent.record(s, alice, by_sms_en.id, channel="sms", purpose="marketing", given=True, method="verbal",
                   collected="name,mobile,purchases")
    consent.record(s, alice, withdrawn.id, channel="sms", purpose="marketing", given=True, method="paper_form",
                   collected="name,mobile")
    consent.record(s, alice, withdrawn.id, channel="sms", purpose="marketing", given=False, method="phone",
                   note="asked on the phone not to get offers")
    occasions.send_care(s, bob, month=month, offer_zh="本月会员专享：新品品鉴会预告，精选酒品八八折。",
                        offer_en="This month for members: a new-wine tasting preview and 12% off selected wines.")
