"""The use cases: send, resend, resend_failed, list, show, purge.

Every delivery goes through one path: pick receivers -> deliver each over a reused SMTP
connection -> record its outcome in its own short transaction. No transaction is open
while talking to the SMTP server.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import peewee

from devmsg import store
from devmsg.arguments import check_ids, check_type, parse_bound
from devmsg.compose import build_rows, check_receivers
from devmsg.config import Config, load_config
from devmsg.db import make_durable, open_store, store_error
from devmsg.delivery import DeliveryReport, Progress, Run
from devmsg.errors import BusyError, InputError, NotFoundError, UsageError
from devmsg.inputs import Recipient
from devmsg.models import SENDING, STATUSES
from devmsg.operating import store_errors
from devmsg.submitting import SendReport, Submitting, check_json, check_schedule
from devmsg.words import plural

if TYPE_CHECKING:
    from devmsg.render import Rendered, Renderer


@dataclass
class PurgeReport:
    receivers_deleted: int
    messages_deleted: int

    def as_dict(self) -> dict:
        return {"receivers_deleted": self.receivers_deleted,
                "messages_deleted": self.messages_deleted}  # fmt: skip


class Outbox(Submitting):
    """devmsg's Python API: one config, one open store."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.db = open_store(config)

    @functools.cached_property
    def _renderer(self) -> Renderer:
        """One Renderer for the Outbox's life, shared by every call and thread: each
        template is compiled once (and again only when its file changes)."""
        from devmsg.render import Renderer

        cfg = self.config
        return Renderer(cfg.templates, cfg.locales, cfg.languages, cfg.default_language,
                        cfg.tzinfo)  # fmt: skip

    @classmethod
    def open(cls, config_path: str | os.PathLike[str] | None = None) -> Outbox:
        return cls(load_config(config_path))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- send ----------------------------------------------------------------------------

    @store_errors
    def send(
        self,
        *,
        type: str,
        recipients: Iterable[Recipient | str],
        template: str | None = None,
        context: dict | None = None,
        metadata: dict | None = None,
        language: str | None = None,
        subject: str | None = None,
        text: str | None = None,
        html: str | None = None,
        queue: bool = False,
        send_at: dt.datetime | None = None,
        expires_at: dt.datetime | None = None,
        attachments: Iterable | None = None,
        reply_to: str | None = None,
        headers: dict[str, str] | None = None,
        progress: Progress | None = None,
    ) -> SendReport:
        """Render for every recipient in their language, store it all, then deliver (or, with
        `queue`, leave it `not_sent` for resend-failed). `attachments` are paths or
        (filename, bytes, content_type); `headers` are added to every receiver's (none
        devmsg writes itself). Invalid input raises InputError and stores nothing."""
        cfg = self.config
        context = self._check_send(type, template, context, metadata, language, subject, text,
                                   html, reply_to, headers)  # fmt: skip
        schedule, later = check_schedule(send_at, expires_at)
        inline, render = self._content(template, subject, text, html)
        extra = self._extra_headers(headers or {}, reply_to)
        files = self._attachments(attachments)
        checked, duplicates, fallbacks = check_receivers(recipients, language, cfg)

        from devmsg import mime

        date = mime.date_header(dt.datetime.now(dt.UTC))

        def rows_for(chunk: list, listed: dict) -> list[dict]:
            return build_rows(chunk, cfg, template, context, render, inline, date, listed,
                              extra, files)  # fmt: skip

        message = {"type": type.strip(), "template": template, "context": context,
                   "metadata": dict(metadata or {}), "sender": cfg.sender}  # fmt: skip
        return self._submit(
            message, checked, rows_for, queue=queue or later, schedule=schedule,
            duplicates=duplicates, fallbacks=fallbacks, progress=progress,
        )  # fmt: skip

    # Validating, planning, storing: send's three steps, each on its own.

    @staticmethod
    def _check_send(
        type: str, template: str | None, context: dict | None, metadata: dict | None,
        language: str | None, subject: str | None, text: str | None, html: str | None,
        reply_to: str | None, headers: dict | None,
    ) -> dict:  # fmt: skip
        """Every argument's type and the combinations that cannot go together; the context
        to render with (a copy)."""
        check_type("type", type, str)
        for name, value in (("template", template), ("language", language),
                            ("subject", subject), ("text", text), ("html", html),
                            ("reply_to", reply_to)):  # fmt: skip
            check_type(name, value, str, optional=True)
        check_type("context", context, dict, optional=True)
        check_type("headers", headers, dict, optional=True)
        check_json(context=context, metadata=metadata)
        if not type.strip():
            raise InputError("type must not be empty", param="type")
        context = dict(context or {})
        if "receiver" in context:
            raise InputError(
                "context: the key 'receiver' is reserved for the receiver", param="context"
            )
        if template is not None and (subject or text or html):
            raise UsageError(
                "give either template or subject/text/html, not both",
                cli="give either --template or --subject/--text/--html, not both",
            )
        if template is None and (not subject or not (text or html)):
            raise UsageError(
                "without a template, give subject and text or html",
                cli="without --template, give --subject and --text or --html",
            )
        return context

    def _content(
        self, template: str | None, subject: str | None, text: str | None, html: str | None
    ) -> tuple[Rendered | None, Callable[..., Rendered] | None]:
        """(the Rendered of a message without a template, or the template's renderer)."""
        from devmsg.render import Rendered, one_line

        if template is None:
            from devmsg.htmltext import html_to_text

            plain = text or html_to_text(html or "")
            return Rendered(one_line(subject or ""), plain, html or ""), None
        renderer = self._renderer
        renderer.check_template(template)
        return None, renderer.render

    def _extra_headers(self, headers: dict, reply_to: str | None) -> tuple[tuple[str, str], ...]:
        from devmsg.config import format_sender
        from devmsg.headers import extra_header

        checked = []
        for name, value in headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise InputError("headers: names and values must be text", param="headers")
            checked.append(extra_header(name, value, f"headers[{name!r}]"))
        names = [name.lower() for name, _ in checked]
        if len(set(names)) < len(names):
            raise InputError("headers: a header is given twice", param="headers")
        if reply_to is not None:
            if "reply-to" in names:
                raise InputError("give Reply-To once: reply_to or headers", param="reply_to")
            try:
                checked.append(("Reply-To", format_sender(reply_to)))
            except ValueError:
                raise InputError(
                    f"reply_to: not an email address: {reply_to!r}",
                    cli=f"--reply-to: not an email address: {reply_to!r}",
                ) from None
        return tuple(checked)

    def _attachments(self, attachments: Iterable | None) -> tuple:
        from devmsg.attachments import attachment

        if attachments is None:
            return ()
        if isinstance(attachments, str | bytes | tuple) or not hasattr(attachments, "__iter__"):
            raise InputError("attachments: give a list of paths or (filename, bytes, "
                             "content_type)", param="attachments")  # fmt: skip
        return tuple(attachment(item, f"attachments[{i}]") for i, item in enumerate(attachments))

    # -- resend --------------------------------------------------------------------------

    @store_errors
    def resend(
        self, ids: list[int], progress: Progress | None = None, force: bool = False
    ) -> DeliveryReport:
        """Send the chosen receivers again, whatever their status. Unknown ids, ids another
        process is delivering right now, or sending paused (unless `force`): nothing is
        sent."""
        ids = list(dict.fromkeys(check_ids("ids", ids)))
        if not ids:
            raise UsageError("ids is empty", cli="give the IDs of the receivers to resend")
        missing = sorted(set(ids) - store.existing_ids(ids))
        if missing:
            raise NotFoundError(f"no receiver with id {', '.join(map(str, missing))}")
        pause = store.paused()
        if pause is not None and not force:
            raise BusyError(f"{self.pause_text(pause)}; nothing was sent (--force sends anyway)")
        report = DeliveryReport()
        run = Run(self.config, report, progress, recheck=False, honour_pause=not force)
        store.recover_expired(run.policy)
        held = store.claim_ids(run.owner, ids, run.lease_until())
        if held:
            rid, owner = sorted(held.items())[0]
            raise BusyError(
                f"receiver {rid} is being delivered by {owner} right now; nothing was sent"
                + (f" ({plural(len(held), 'receiver')} held)" if len(held) > 1 else "")
            )
        try:
            run.deliver_ids(ids)
        finally:
            make_durable(self.db)
        return report

    @store_errors
    def resend_failed(self, progress: Progress | None = None) -> DeliveryReport:
        """Deliver everything due: `failed` receivers within resend_limit whose backoff has
        passed, `not_sent` receivers nobody holds (queued, or left by a killed run), and
        receivers whose claim expired. `error` ones are left alone."""
        report = DeliveryReport(pause=store.paused())
        if report.pause is not None:
            return report  # paused: nothing is delivered
        try:
            Run(self.config, report, progress).deliver_due()
        finally:
            if report.attempted:
                make_durable(self.db)
        return report

    # -- pause ---------------------------------------------------------------------------

    # -- read ----------------------------------------------------------------------------

    @store_errors
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
        check_type("statuses", statuses, list, optional=True)
        check_type("type", type, str, optional=True)
        check_type("to", to, str, optional=True)
        check_type("message", message, int, optional=True)
        check_type("limit", limit, int)
        for status in statuses or []:
            if status not in (*STATUSES, SENDING):
                known = ", ".join((*STATUSES, SENDING))
                raise InputError(f"statuses: unknown status {status!r} ({known})", param="statuses")
        if limit < 0:
            raise InputError("limit must be 0 (all) or more", param="limit")
        tz = self.config.tzinfo
        since, _ = parse_bound(sent_since, "sent_since", tz, end_of_day=False)
        until, exclusive = parse_bound(sent_until, "sent_until", tz, end_of_day=True)
        return store.list_receivers(
            statuses=statuses,
            type=type,
            to=to,
            message=message,
            sent_since=since,
            sent_until=until,
            sent_until_exclusive=exclusive,
            limit=limit,
            max_age=self.config.max_age,
        )

    @store_errors
    def show(self, receiver_id: int) -> dict:
        """One receiver, with its headers and attachments as its email carries them."""
        from devmsg.eml import describe

        check_type("receiver_id", receiver_id, int)
        detail = store.get_receiver(receiver_id, self.config.max_age)
        detail.update(describe(detail.pop("email")))
        return detail

    @store_errors
    def email(self, receiver_id: int) -> bytes:
        """The exact bytes stored for the receiver: what every (re)send delivers."""
        check_type("receiver_id", receiver_id, int)
        return store.receiver_email(receiver_id)

    @store_errors
    def stats(self, by: str | None = None) -> dict:
        """The queue at a glance (see `devmsg stats`); `by="type"` breaks the receivers'
        counts down per message type."""
        if by not in (None, "type"):
            raise InputError(f"by: can only break down by 'type', not {by!r}", param="by")
        from devmsg.delivery import policy_of

        return store.stats(
            policy_of(self.config), by_type=by == "type", lease=self.config.claim_lease
        )

    # -- store ---------------------------------------------------------------------------

    def copy_to(
        self, target: str, replace: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> dict[str, int]:
        """Copy this whole store into `target` (a PostgreSQL URL, sqlite:///path or a path)."""
        from dataclasses import replace as with_changes

        from devmsg.config import database as _database
        from devmsg.transfer import copy_store

        check_type("target", target, str)
        path, url = _database(target, Path.cwd(), "target", from_file=False)
        if (url or str(path.resolve())) == (
            self.config.database_url or str(Path(self.config.database).resolve())
        ):
            raise InputError("target: that is the store being copied", param="target")
        target_config = with_changes(self.config, database=path, database_url=url)
        target_db = open_store(target_config, bind=False)
        try:
            return copy_store(self.db, target_db, target_config.store_name, replace, progress)
        except peewee.DatabaseError as exc:
            name, timeout = target_config.store_name, target_config.busy_timeout
            raise store_error(name, timeout, exc) from None
        finally:
            target_db.close()

    # -- purge ---------------------------------------------------------------------------

    @store_errors
    def purge(
        self,
        older_than: dt.timedelta | None = None,
        orphans: bool = False,
        dry_run: bool = False,
    ) -> PurgeReport:
        check_type("older_than", older_than, dt.timedelta, optional=True)
        if older_than is None and not orphans:
            raise UsageError(
                "give older_than or orphans=True", cli="give --older-than AGE or --orphans"
            )
        if older_than is not None and orphans:
            raise UsageError(
                "give older_than or orphans=True, not both",
                cli="give --older-than AGE or --orphans, not both",
            )
        cutoff = None if older_than is None else dt.datetime.now(dt.UTC) - older_than
        receivers, messages = store.purge(cutoff, dry_run)
        return PurgeReport(receivers, messages)


__all__ = [
    "DeliveryReport",
    "Outbox",
    "PurgeReport",
    "Recipient",
    "SendReport",
]
