"""Helpers for the message tests: a local SMTP server (aiosmtpd) that keeps what arrives, members."""
from __future__ import annotations

import email
import socket
from datetime import date

from aiosmtpd.controller import Controller

from portal.consent import service as consent
from portal.customers import service as customers
from portal.membership import members
from portal.messages import contact

from .factories import customer_input, valid_id


def free_port() -> int:
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


class Inbox:
    """aiosmtpd handler: every message that arrives, parsed."""

    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content)
        msg["X-Rcpt"] = ",".join(envelope.rcpt_tos)
        self.messages.append(msg)
        return "250 OK"

    def subjects(self) -> list[str]:
        return sorted(str(email.header.make_header(email.header.decode_header(m["Subject"])))
                      for m in self.messages)


class SmtpServer:
    def __init__(self):
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def new_member(db, vault, story, *, owner="alice", n=40, born: date | None = None, email_addr: str = "",
               channel: str = "sms", language: str = "zh_CN", marketing: bool = False):
    """A new file of ``owner``'s with contact preferences (and marketing consent), then enrolled."""
    actor = story.actor(db, owner)
    birth = (born or date(1990, 3, 7)).strftime("%Y%m%d")
    with db.write() as s:
        f = customers.create_file(s, vault, actor, customer_input(n, id_number=valid_id(birth=birth, seq=f"{n:03d}"),
                                                                  mobile=f"1390013{n:04d}"))
        contact.set_contact(s, vault, actor, f, email=email_addr, language=language, channel=channel)
        if marketing:
            consent.record(s, actor, f.id, channel=channel, purpose="marketing", given=True, method="paper_form",
                           collected="name,mobile,email" if email_addr else "name,mobile")
    with db.write() as s:
        members.enrol(s, actor, f.id, cause="application")
    return f.id
