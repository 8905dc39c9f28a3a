"""E-mail through an SMTP server (smtplib: STARTTLS and login when set), or into a maildir."""
from __future__ import annotations

import mailbox
import smtplib
import socket
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from . import Outgoing, PermanentFailure, TransientFailure


def build(msg: Outgoing, sender: str) -> EmailMessage:
    em = EmailMessage()
    em["From"] = sender
    em["To"] = msg.address
    em["Subject"] = msg.subject
    em["Date"] = formatdate(localtime=False)
    em["Message-ID"] = make_msgid(idstring=f"outbox-{msg.message_id}")
    em["X-Portal-Message"] = str(msg.message_id)
    if msg.opt_out_url:
        # RFC 2369 / 8058: mail clients show an "unsubscribe" button.
        em["List-Unsubscribe"] = f"<{msg.opt_out_url}>"
    em.set_content(msg.body)
    return em


class SmtpMail:
    """One connection per send: simple, and a broken connection never poisons the next message."""

    def __init__(self, host: str, port: int = 587, *, starttls: bool = True, user: str = "",
                 password: str = "", sender: str = "", timeout: float = 30.0):
        self.host, self.port, self.starttls = host, port, starttls
        self.user, self.password, self.sender, self.timeout = user, password, sender, timeout

    def send(self, msg: Outgoing) -> str:
        em = build(msg, self.sender)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls()
                    smtp.ehlo()
                if self.user:
                    smtp.login(self.user, self.password)
                smtp.send_message(em)
        except smtplib.SMTPRecipientsRefused:
            raise PermanentFailure("recipient refused") from None
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise TransientFailure(f"smtp {exc.smtp_code}") from None
            raise PermanentFailure(f"smtp {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError, socket.timeout) as exc:
            raise TransientFailure(f"smtp {type(exc).__name__}") from None
        return em["Message-ID"]


class MaildirMail:
    """Writes each message into a maildir (the demo's and a developer's 'mail server')."""

    def __init__(self, path: Path | str, sender: str = ""):
        self.path, self.sender = Path(path), sender

    def send(self, msg: Outgoing) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        box = mailbox.Maildir(str(self.path), create=True)
        em = build(msg, self.sender)
        key = box.add(em)
        return f"maildir:{key}"
