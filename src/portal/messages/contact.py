"""A member's contact preferences (e-mail address, language, channel) and opt-outs.

Opt-out is open to the member without an account: the link in every e-mail carries a token
(the message id signed with the app secret) and every SMS says to reply "T"; either records a
withdrawal of that message's purpose on that channel in the consent history.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..audit import service as audit
from ..accounts.actor import Actor
from ..consent import service as consent
from ..customers.models import CustomerFile
from ..customers.rules import normalise_mobile
from ..customers.service import InvalidInput
from ..vault import Vault
from . import outbox
from .models import MemberContact, OutboxMessage
from .templates import LANGUAGES, OPT_OUT_KEYWORDS

EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s.]{2,63}")


@dataclass
class ContactView:
    email: str
    language: str
    channel: str


def view_contact(s: Session, vault: Vault, customer_id: uuid.UUID) -> ContactView:
    c = s.get(MemberContact, customer_id)
    if c is None:
        return ContactView("", "zh_CN", "sms")
    email = vault.decrypt(c.email_ct, table="member_contact", column="email", row_id=c.customer_id) or ""
    return ContactView(email, c.language, c.channel)


def set_contact(s: Session, vault: Vault, actor: Actor, f: CustomerFile, *, email: str, language: str,
                channel: str) -> MemberContact:
    """Save the e-mail address (encrypted), language and preferred channel; audited. The caller
    has authorised the actor on the file."""
    email = email.strip()
    errors = {}
    if email and (len(email) > 254 or not EMAIL_RE.fullmatch(email)):
        errors["email"] = "Enter an e-mail address like name@example.com."
    if language not in LANGUAGES:
        errors["language"] = "Choose a language."
    if channel not in ("sms", "email"):
        errors["channel"] = "Choose a channel."
    elif channel == "email" and not email:
        errors["channel"] = "E-mail needs an e-mail address."
    if errors:
        raise InvalidInput(errors)
    c = s.get(MemberContact, f.id)
    if c is None:
        c = MemberContact(customer_id=f.id, updated_at=clock.now())
        s.add(c)
    c.email_ct = vault.encrypt(email, table="member_contact", column="email", row_id=f.id) if email else None
    c.language, c.channel, c.updated_by_id, c.updated_at = language, channel, actor.user_id, clock.now()
    s.flush()
    audit.record(s, actor, "messages.contact", object_type="customer", object_id=f.file_no,
                 fields=["email"] if email else [], detail=f"language {language} channel {channel}")
    return c


def opt_out(s: Session, vault: Vault, token: str, *, everything: bool = False) -> OutboxMessage | None:
    """The member's opt-out through a message's link: withdraws that message's purpose on its
    channel (and, with ``everything``, the other purpose too). None: the token is not valid."""
    msg = outbox.message_for_token(s, vault, token)
    if msg is None:
        return None
    purposes = consent.PURPOSES if everything else (msg.purpose,)
    for purpose in purposes:
        if consent.allows(s, msg.customer_id, msg.channel, purpose):
            consent.record(s, None, msg.customer_id, channel=msg.channel, purpose=purpose, given=False,
                           method="email_link" if msg.channel == "email" else "sms_reply",
                           note="opt-out by the member", message_id=msg.id)
    return msg


def sms_reply(s: Session, vault: Vault, mobile: str, text: str) -> int:
    """A reply to an SMS as the gateway reports it: an opt-out keyword ("T", "TD", "退订", "STOP")
    withdraws every purpose on SMS for the files with that mobile. Returns how many files."""
    if text.strip().upper() not in OPT_OUT_KEYWORDS:
        return 0
    try:
        bidx = vault.blind_index("mobile", normalise_mobile(mobile))
    except Exception:  # not a mobile number we could have sent to
        return 0
    files = list(s.scalars(select(CustomerFile).where(CustomerFile.mobile_bidx == bidx)))
    for f in files:
        for purpose in consent.PURPOSES:
            if consent.allows(s, f.id, "sms", purpose):
                consent.record(s, None, f.id, channel="sms", purpose=purpose, given=False,
                               method="sms_reply", note="SMS reply keyword")
    return len(files)
