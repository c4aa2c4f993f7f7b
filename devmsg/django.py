"""A Django email backend: every mail a Django app sends (send_mail, send_mass_mail,
mail_admins, EmailMessage, EmailMultiAlternatives) stored in devmsg's record, one receiver
per mailbox, and delivered by `devmsg worker` (or resend-failed from cron).

    EMAIL_BACKEND = "devmsg.django.EmailBackend"
    DEVMSG_CONFIG = "/srv/app/devmsg.toml"  # else $DEVMSG_CONFIG, then ./devmsg.toml
    DEVMSG_QUEUE = True  # store only: the worker delivers. False: deliver in the call
    DEVMSG_TYPE = "django"  # the message type; a message's X-Devmsg-Type header overrides

Django is not a dependency of devmsg: install `devmsg[django]`."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from email.utils import getaddresses
from typing import Any

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

from devmsg.errors import DevmsgError
from devmsg.inputs import Recipient
from devmsg.outbox import Outbox

TYPE_HEADER = "X-Devmsg-Type"

_outboxes: dict[str | None, Outbox] = {}
_lock = threading.Lock()


def outbox() -> Outbox:
    """The process's one Outbox for DEVMSG_CONFIG, opened on first use and shared by every
    thread: its templates, connections and store stay open between calls."""
    path = getattr(settings, "DEVMSG_CONFIG", None)
    key = None if path is None else str(path)
    with _lock:
        box = _outboxes.get(key)
        if box is None:
            box = _outboxes[key] = Outbox.open(key)
        return box


class EmailBackend(BaseEmailBackend):
    """Stores each message as Django built it (attachments, alternatives, cc, reply_to,
    headers), for the envelope Django gives (to, cc and bcc: the Bcc header is never
    written). `send_messages` returns how many messages were stored."""

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        if not email_messages:
            return 0
        try:
            box = outbox()
        except DevmsgError:
            if self.fail_silently:
                return 0
            raise
        queue = bool(getattr(settings, "DEVMSG_QUEUE", True))
        default_type = getattr(settings, "DEVMSG_TYPE", "django")
        stored = 0
        for message in email_messages:
            addresses = getaddresses(message.recipients())
            recipients = [Recipient(address, name) for name, address in addresses if address]
            if not recipients:
                continue  # as Django's SMTP backend: a message to nobody is not sent
            try:
                mime = message.message()
                kind = mime.get(TYPE_HEADER)
                del mime[TYPE_HEADER]
                box.send_email(mime, type=str(kind or default_type), recipients=recipients,
                               queue=queue)  # fmt: skip
            except DevmsgError:
                if not self.fail_silently:
                    raise
                continue
            stored += 1
        return stored
