"""The use cases: send, resend, resend_failed, list, show, purge.

Every delivery goes through one path: pick receivers -> deliver each over a reused SMTP
connection -> record its outcome in its own short transaction. No transaction is open
while talking to the SMTP server.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from devmsg import store
from devmsg.config import Config, load_config
from devmsg.errors import InputError, NotFoundError
from devmsg.inputs import Recipient, check_address
from devmsg.models import STATUSES, JSONField

Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class DeliveryReport:
    attempted: int = 0
    sent: int = 0
    failed: int = 0
    error: int = 0

    def count(self, status: str) -> None:
        self.attempted += 1
        setattr(self, status, getattr(self, status) + 1)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.error == 0

    def as_dict(self) -> dict:
        return {"attempted": self.attempted, "sent": self.sent, "failed": self.failed,
                "error": self.error}  # fmt: skip


@dataclass
class SendReport(DeliveryReport):
    message_id: int = 0
    receiver_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"message_id": self.message_id, "receivers": self.receiver_ids,
                **super().as_dict()}  # fmt: skip


@dataclass
class PurgeReport:
    receivers_deleted: int
    messages_deleted: int
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"receivers_deleted": self.receivers_deleted,
                "messages_deleted": self.messages_deleted}  # fmt: skip


def _eol(body: str) -> str:
    return body if not body or body.endswith("\n") else body + "\n"


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


class Outbox:
    """devmsg's Python API: one config, one open store."""

    def __init__(self, config: Config) -> None:
        from devmsg.db import open_database

        self.config = config
        self.db = open_database(config.database)

    @classmethod
    def open(cls, config_path: str | os.PathLike[str] | None = None) -> Outbox:
        return cls(load_config(config_path))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- send ----------------------------------------------------------------------------

    def send(
        self,
        *,
        type: str,
        recipients: Iterable[Recipient],
        template: str | None = None,
        context: dict | None = None,
        metadata: dict | None = None,
        language: str | None = None,
        subject: str | None = None,
        text: str | None = None,
        html: str | None = None,
        progress: Progress | None = None,
    ) -> SendReport:
        """Render for every recipient in their language, store all of it in one transaction,
        then deliver. Invalid input raises InputError and stores nothing."""
        from devmsg import i18n, mime
        from devmsg.htmltext import html_to_text
        from devmsg.render import Rendered, Renderer, one_line

        cfg = self.config
        context = dict(context or {})
        metadata = dict(metadata or {})
        if not type or not type.strip():
            raise InputError("--type must not be empty")
        for option, value in (("--context", context), ("--metadata", metadata)):
            try:
                JSONField().db_value(value)
            except (TypeError, ValueError, RecursionError) as exc:
                raise InputError(f"{option}: {exc}") from None
        if "receiver" in context:
            raise InputError("--context: the key 'receiver' is reserved for the receiver")
        if template is not None and (subject or text or html):
            raise InputError("give either --template or --subject/--text/--html, not both")
        if template is None:
            if not subject or not (text or html):
                raise InputError("without --template, give --subject and --text or --html")
            inline = Rendered(one_line(subject), text or html_to_text(html or ""), html or "")
        else:
            renderer = Renderer(
                cfg.templates, cfg.locales, cfg.languages, cfg.default_language, cfg.tzinfo
            )
            renderer.check_template(template)

        now = dt.datetime.now(dt.UTC)
        rows = []
        for position, recipient in enumerate(recipients, start=1):
            where = recipient.source or f"receiver {position}"
            checked = check_address(recipient.address, where)
            lang = i18n.negotiate(
                recipient.language or language, cfg.languages, cfg.default_language
            )
            name = one_line(recipient.name or "")
            if template is None:
                rendered = inline
            else:
                info = {"address": checked.address, "name": name, "language": lang}
                rendered = renderer.render(template, context, info, lang)
            # What is stored is exactly what is sent: MIME ends every part with a newline.
            rendered = Rendered(rendered.subject, _eol(rendered.text), _eol(rendered.html))
            message_id = mime.new_message_id(cfg.sender)
            rows.append(
                {
                    "address": checked.address,
                    "name": name,
                    "language": lang,
                    "subject": rendered.subject,
                    "body_text": rendered.text,
                    "body_html": rendered.html,
                    "message_id_header": message_id,
                    "mime": mime.build(
                        sender=cfg.sender,
                        address=checked.address if checked.smtputf8 else checked.envelope,
                        name=name,
                        subject=rendered.subject,
                        text=rendered.text,
                        html=rendered.html,
                        message_id=message_id,
                        date=now,
                        smtputf8=checked.smtputf8,
                    ),
                }
            )
        if not rows:
            raise InputError("no receivers: give --to or --receivers")

        message_id, ids = store.create_message(
            {
                "type": type.strip(),
                "template": template,
                "context": context,
                "metadata": metadata,
                "created_by": _current_user(),
                "sender": cfg.sender,
            },
            rows,
        )
        report = SendReport(message_id=message_id, receiver_ids=ids)
        self._deliver(ids, report, progress)
        return report

    # -- resend --------------------------------------------------------------------------

    def resend(self, ids: list[int], progress: Progress | None = None) -> DeliveryReport:
        """Send the chosen receivers again, whatever their status. Unknown ids: nothing sent."""
        ids = list(dict.fromkeys(ids))
        missing = sorted(set(ids) - store.existing_ids(ids))
        if missing:
            raise NotFoundError(f"no receiver with id {', '.join(map(str, missing))}")
        return self._deliver(ids, DeliveryReport(), progress)

    def resend_failed(self, progress: Progress | None = None) -> DeliveryReport:
        """Resend every `failed` receiver within resend_limit; `error` ones are left alone."""
        ids = store.failed_ids(self.config.resend_limit)
        return self._deliver(ids, DeliveryReport(), progress)

    def _deliver(self, ids: list[int], report, progress: Progress | None):
        from devmsg.transport import DeliveryFailure, SmtpTransport

        cfg = self.config
        envelope_from = cfg.sender_address
        total = len(ids)
        with SmtpTransport(cfg.smtp) as transport:
            for done, out in enumerate(store.outgoing(ids), start=1):
                to = cfg.redirect_to or check_address(out.address).envelope
                try:
                    transport.send(envelope_from, to, out.mime)
                except DeliveryFailure as failure:
                    status = store.record_failure(
                        out.id, failure.error, failure.traceback, cfg.resend_limit
                    )
                else:
                    status = store.record_success(out.id, to)
                report.count(status)
                if progress is not None:
                    progress(done, total)
        return report

    # -- read ----------------------------------------------------------------------------

    def list(
        self,
        *,
        statuses: list[str] | None = None,
        type: str | None = None,
        to: str | None = None,
        message: int | None = None,
        sent_since: str | dt.datetime | dt.date | None = None,
        sent_until: str | dt.datetime | dt.date | None = None,
        limit: int = 50,
    ) -> list[dict]:
        for status in statuses or []:
            if status not in STATUSES:
                raise InputError(f"--status: unknown status {status!r} ({', '.join(STATUSES)})")
        if limit < 0:
            raise InputError("--limit must be 0 (all) or more")
        since, _ = self._bound(sent_since, "--sent-since", end_of_day=False)
        until, exclusive = self._bound(sent_until, "--sent-until", end_of_day=True)
        return store.list_receivers(
            statuses=statuses,
            type=type,
            to=to,
            message=message,
            sent_since=since,
            sent_until=until,
            sent_until_exclusive=exclusive,
            limit=limit,
        )

    def _bound(self, value, option: str, end_of_day: bool) -> tuple[dt.datetime | None, bool]:
        """A date means the start of that day (since) or the whole day (until), in the
        configured time zone; a naive datetime is in that zone too."""
        if value is None or value == "":
            return None, False
        tz = self.config.tzinfo
        if isinstance(value, str):
            text = value.strip()
            try:
                value = (
                    dt.date.fromisoformat(text)
                    if len(text) == 10
                    else dt.datetime.fromisoformat(text)
                )
            except ValueError:
                raise InputError(f"{option}: not an ISO 8601 date or time: {text!r}") from None
        if isinstance(value, dt.datetime):
            return (value if value.tzinfo else value.replace(tzinfo=tz)), False
        start = dt.datetime.combine(value, dt.time(), tzinfo=tz)
        if end_of_day:
            return start + dt.timedelta(days=1), True
        return start, False

    def show(self, receiver_id: int) -> dict:
        return store.get_receiver(receiver_id)

    # -- purge ---------------------------------------------------------------------------

    def purge(
        self,
        older_than: dt.timedelta | None = None,
        orphans: bool = False,
        dry_run: bool = False,
    ) -> PurgeReport:
        if older_than is None and not orphans:
            raise InputError("give --older-than AGE or --orphans")
        if older_than is not None and orphans:
            raise InputError("give --older-than AGE or --orphans, not both")
        cutoff = None if older_than is None else dt.datetime.now(dt.UTC) - older_than
        receivers, messages = store.purge(cutoff, dry_run)
        return PurgeReport(receivers, messages, dry_run)


def parse_age(text: str) -> dt.timedelta:
    """`90d`, `12h`, `30m`, `2w`, or a bare number of days."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    value = text.strip().lower()
    unit = "d"
    if value and value[-1] in units:
        value, unit = value[:-1], value[-1]
    try:
        number = float(value)
    except ValueError:
        raise InputError(
            f"--older-than: not an age: {text!r} (use e.g. 90d, 12h, 30m or a number of days)"
        ) from None
    if number < 0 or number != number or number in (float("inf"),):
        raise InputError(f"--older-than: must be a positive age, got {text!r}")
    try:
        return dt.timedelta(**{units[unit]: number})
    except OverflowError:
        raise InputError(f"--older-than: age too large: {text!r}") from None


__all__ = [
    "DeliveryReport",
    "Outbox",
    "PurgeReport",
    "Recipient",
    "SendReport",
    "parse_age",
]
