"""One receiver's email as the exact bytes every (re)send delivers: built once, when the
receiver is created."""

from __future__ import annotations

import datetime as dt
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from devmsg.render import one_line


def new_message_id(sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "devmsg.invalid"
    return make_msgid(domain=domain.encode("idna").decode("ascii"))


def build(
    *,
    sender: str,
    address: str,
    name: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    date: dt.datetime,
    smtputf8: bool,
) -> bytes:
    pol = policy.SMTPUTF8 if smtputf8 else policy.SMTP
    msg = EmailMessage(policy=pol)
    msg["From"] = sender
    local, _, domain = address.rpartition("@")
    msg["To"] = Address(display_name=one_line(name), username=local, domain=domain)
    msg["Subject"] = one_line(subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["MIME-Version"] = "1.0"
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes(policy=pol)
