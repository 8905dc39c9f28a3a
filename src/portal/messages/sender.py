"""`portal jobs send`: claim due messages, render them, send them once, record each outcome.

Per channel, in rounds: one short write transaction claims a batch (outbox.claim) and renders
it (the member's name and address are decrypted and the rendered address, subject and body
stored encrypted as what is sent); then each message is sent outside any transaction; then
its outcome is recorded in its own transaction, under the claim (a sender that lost its claim
records nothing). A transient failure is retried with doubling back-off until the rules'
``max_attempts``; a permanent one fails at once. A message whose consent was withdrawn since
it was written, or whose member has no address any more, is suppressed, not sent.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from .. import clock
from ..consent import service as consent
from ..customers.models import CustomerFile
from ..vault import Vault
from . import outbox
from .channels import Outgoing, PermanentFailure, TransientFailure
from .models import MemberContact, OutboxMessage
from .rules import rules_at
from .templates import render

log = logging.getLogger("portal.messages")
CHANNEL_ORDER = ("email", "sms")


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    suppressed: int = 0
    held: dict[str, str] = field(default_factory=dict)  # channel -> why nothing more was claimed


def values_for(s: Session, vault: Vault, msg: OutboxMessage) -> dict:
    """The template's values: the message's context, the member's name, any personal text."""
    f = s.get(CustomerFile, msg.customer_id)
    values = json.loads(msg.context or "{}")
    values["name"] = vault.decrypt(f.name_ct, table="customer_file", column="name", row_id=f.id) or ""
    if msg.text_ct is not None:
        values["text"] = vault.decrypt(msg.text_ct, table=outbox.TABLE, column="text", row_id=msg.id)
    return values


def address_of(s: Session, vault: Vault, msg: OutboxMessage) -> str | None:
    if msg.channel == "sms":
        f = s.get(CustomerFile, msg.customer_id)
        return vault.decrypt(f.mobile_ct, table="customer_file", column="mobile", row_id=f.id)
    contact = s.get(MemberContact, msg.customer_id)
    if contact is None:
        return None
    return vault.decrypt(contact.email_ct, table="member_contact", column="email", row_id=contact.customer_id)


def _prepare(s: Session, vault: Vault, msg: OutboxMessage, public_url: str) -> Outgoing | None:
    """Render a claimed message and keep what is sent, encrypted. None: suppressed."""
    if not consent.allows(s, msg.customer_id, msg.channel, msg.purpose):
        msg.status, msg.last_error, msg.claim_token = "suppressed", "no consent", None
        return None
    address = address_of(s, vault, msg)
    if not address:
        msg.status, msg.last_error, msg.claim_token = "suppressed", "no address", None
        return None
    token = outbox.opt_out_token(vault, msg.id)
    values = values_for(s, vault, msg)
    url = f"{public_url}/optout/{token}"
    values["opt_out_url"] = url
    r = render(msg.kind, msg.language, msg.channel, values)
    enc = dict(table=outbox.TABLE, row_id=msg.id, key_id=vault.current_key())
    msg.address_ct = vault.encrypt(address, column="address", **enc)
    msg.subject_ct = vault.encrypt(r.subject, column="subject", **enc)
    msg.body_ct = vault.encrypt(r.body, column="body", **enc)
    return Outgoing(msg.id, msg.channel, address, r.subject, r.body, msg.language,
                    opt_out_url=url if msg.channel == "email" else "")


def send_due(db, vault: Vault, channels: dict, *, public_url: str, batch: int = 50,
             max_messages: int = 10_000) -> SendReport:
    """Send what is due on every channel until nothing more may be claimed now."""
    report = SendReport()
    token = outbox.new_token()
    handled = 0
    for channel in CHANNEL_ORDER:
        while handled < max_messages:
            with db.write() as s:
                rules = rules_at(s)
                now = clock.now()
                if rules.quiet(channel, now):
                    report.held[channel] = "quiet hours"
                    break
                claimed = outbox.claim(s, channel, rules, limit=batch, token=token, now=now)
                ready = []
                for msg in claimed:
                    out = _prepare(s, vault, msg, public_url)
                    if out is None:
                        report.suppressed += 1
                        log.info("message %s suppressed", msg.id)
                    else:
                        ready.append((out, msg.attempts))
            if not claimed:
                break
            handled += len(claimed)
            for out, attempts in ready:
                _deliver(db, channels[channel], out, attempts, rules, token, report)
    return report


def _deliver(db, ch, out: Outgoing, attempts: int, rules, token: str, report: SendReport) -> None:
    try:
        provider_id = ch.send(out)
        outcome = outbox.Outcome("sent", provider_id=provider_id or "")
        report.sent += 1
        log.info("message %s sent", out.message_id)
    except TransientFailure as exc:
        if attempts >= rules.max_attempts:
            outcome = outbox.Outcome("failed", error=str(exc))
            report.failed += 1
        else:
            outcome = outbox.Outcome("pending", error=str(exc), retry_at=clock.now() + rules.backoff(attempts))
            report.retried += 1
        log.warning("message %s: %s (attempt %d)", out.message_id, exc, attempts)
    except PermanentFailure as exc:
        outcome = outbox.Outcome("failed", error=str(exc))
        report.failed += 1
        log.warning("message %s failed: %s", out.message_id, exc)
    except Exception as exc:  # an adapter's bug must not lose the claim silently (type only: no data)
        outcome = outbox.Outcome("pending", error=f"error {type(exc).__name__}",
                                 retry_at=clock.now() + rules.backoff(attempts))
        report.retried += 1
        log.error("message %s: unexpected %s", out.message_id, type(exc).__name__)
    with db.write() as s:
        outbox.finish(s, out.message_id, token, outcome)
