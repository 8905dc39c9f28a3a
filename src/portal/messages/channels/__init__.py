"""Channels that deliver a rendered message: e-mail (SMTP, or a maildir when no server is set)
and SMS (an HTTP gateway, or a file for the demo and tests).

A channel's ``send(msg)`` returns the provider's id for the message, or raises
``TransientFailure`` (try again later: connection refused, 4xx, throttled) or
``PermanentFailure`` (the address is refused: never retried). Errors carry no personal data.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outgoing:
    message_id: int
    channel: str
    address: str
    subject: str
    body: str
    language: str
    opt_out_url: str = ""


class TransientFailure(Exception):
    """Try again later."""


class PermanentFailure(Exception):
    """Never retry."""


def channels_from(settings) -> dict:
    """The channel for each of sms and email, as the PORTAL_* settings name them."""
    from .sms_file import FileSms
    from .sms_http import HttpSmsGateway
    from .smtp import MaildirMail, SmtpMail

    if settings.smtp_host:
        email = SmtpMail(settings.smtp_host, settings.smtp_port, starttls=settings.smtp_starttls,
                         user=settings.smtp_user, password=settings.smtp_password, sender=settings.smtp_from)
    else:
        email = MaildirMail(settings.mail_dir, sender=settings.smtp_from)
    if settings.sms_gateway_url:
        sms = HttpSmsGateway(settings.sms_gateway_url, access_key=settings.sms_access_key,
                             secret=settings.sms_secret, sign_name=settings.sms_sign_name)
    else:
        sms = FileSms(settings.sms_file)
    return {"email": email, "sms": sms}
