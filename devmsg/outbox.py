"""The use cases: send, resend, resend_failed, list, show, purge.

Every delivery goes through one path: pick receivers -> deliver each over a reused SMTP
connection -> record its outcome in its own short transaction. No transaction is open
while talking to the SMTP server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import getpass
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import peewee

from devmsg import store
from devmsg.compose import build_rows, check_receivers
from devmsg.config import Config, load_config
from devmsg.db import make_durable, open_store, store_error
from devmsg.delivery import DeliveryReport, Progress, Run, check_stop
from devmsg.errors import BusyError, InputError, NotFoundError
from devmsg.inputs import Recipient, mailbox_key
from devmsg.models import SENDING, STATUSES, JSONField

RENDER_CHUNK = 500


@dataclass
class SendReport(DeliveryReport):
    message_id: int = 0
    receiver_ids: list[int] = field(default_factory=list)
    queued: bool = False
    duplicates: int = 0  # receivers merged: the same mailbox given twice or more

    def as_dict(self) -> dict:
        return {"message_id": self.message_id, "receivers": self.receiver_ids,
                "queued": self.queued, **super().as_dict(),
                "paused": self.pause is not None, "duplicates": self.duplicates}  # fmt: skip


@dataclass
class PurgeReport:
    receivers_deleted: int
    messages_deleted: int

    def as_dict(self) -> dict:
        return {"receivers_deleted": self.receivers_deleted,
                "messages_deleted": self.messages_deleted}  # fmt: skip


def _store_errors(method):
    """Database trouble becomes one clear StoreError naming the store."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except peewee.DatabaseError as exc:
            raise store_error(self.config.store_name, self.config.busy_timeout, exc) from None

    return wrapper


@functools.cache
def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


class Outbox:
    """devmsg's Python API: one config, one open store."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.db = open_store(config)

    @functools.cached_property
    def _renderer(self):
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

    def __exit__(self, *exc) -> None:
        self.close()

    # -- send ----------------------------------------------------------------------------

    @_store_errors
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
        queue: bool = False,
        send_at: dt.datetime | None = None,
        expires_at: dt.datetime | None = None,
        progress: Progress | None = None,
    ) -> SendReport:
        """Render for every recipient in their language, store it all, then deliver (or, with
        `queue`, leave it `not_sent` for resend-failed). Invalid input raises InputError and
        stores nothing."""
        from devmsg.htmltext import html_to_text
        from devmsg.render import Rendered, one_line

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
        now = dt.datetime.now(dt.UTC)
        for option, value in (("--at", send_at), ("--expires", expires_at)):
            if value is not None and value.tzinfo is None:
                raise InputError(f"{option}: give a time with a time zone")
        if expires_at is not None and expires_at <= max(now, send_at or now):
            raise InputError("--expires: that time has passed (or comes before --at)")
        schedule = None
        if send_at is not None or expires_at is not None:
            schedule = (send_at, expires_at, send_at)
        if send_at is not None and send_at > now:
            queue = True  # delivered by resend-failed once due
        if template is not None and (subject or text or html):
            raise InputError("give either --template or --subject/--text/--html, not both")
        inline, render = None, None
        if template is None:
            if not subject or not (text or html):
                raise InputError("without --template, give --subject and --text or --html")
            inline = Rendered(one_line(subject), text or html_to_text(html or ""), html or "")
        else:
            renderer = self._renderer
            renderer.check_template(template)
            render = renderer.render

        from devmsg import mime

        checked, duplicates = check_receivers(recipients, language, cfg)
        listed = store.suppressed(address.address for address, _, _ in checked)

        pause = store.paused()
        if pause is not None:
            queue = True  # stored as not_sent; resend-failed delivers once sending resumes
        report = SendReport(queued=queue, pause=pause, duplicates=duplicates)
        skipped = {i for i, (address, _, _) in enumerate(checked)
                   if mailbox_key(address.address) in listed}  # fmt: skip
        report.suppressed = len(skipped)
        run = Run(cfg, report, progress)
        date = mime.date_header(dt.datetime.now(dt.UTC))
        owner = None if queue else run.owner
        message = {
            "type": type.strip(),
            "template": template,
            "context": context,
            "metadata": metadata,
            "created_by": _current_user(),
            "sender": cfg.sender,
        }

        def rows_for(chunk) -> list[dict]:
            return build_rows(chunk, cfg, template, context, render, inline, date, listed)

        if len(checked) <= RENDER_CHUNK:
            # One transaction: the application's one-receiver-per-event path.
            rows = rows_for(checked)
            check_stop("while storing the message: nothing was stored or sent")
            message_id, ids = store.store_message(message, rows, owner, run.lease_until(), schedule)
        else:
            # Streamed in chunks, invisible to every other process until it is complete.
            message_id = store.begin_message(message, run.lease_until())
            try:
                for start in range(0, len(checked), RENDER_CHUNK):
                    rows = rows_for(checked[start : start + RENDER_CHUNK])
                    check_stop("while storing the message: nothing was stored or sent")
                    store.add_receivers(message_id, rows, owner, run.lease_until(), schedule)
                    if not queue:
                        run.maybe_renew()
                ids = store.finish_message(message_id)
            except BaseException:
                # What it stored goes; if even that fails (a full disk), the message stays
                # invisible ("storing") and recovery removes it once its lease runs out.
                with contextlib.suppress(peewee.DatabaseError):
                    store.discard_message(message_id)
                raise
        report.message_id, report.receiver_ids = message_id, ids
        try:
            if not queue:
                run.deliver_ids([rid for i, rid in enumerate(ids) if i not in skipped])
        finally:
            make_durable(self.db)
        return report

    # -- resend --------------------------------------------------------------------------

    @_store_errors
    def resend(
        self, ids: list[int], progress: Progress | None = None, force: bool = False
    ) -> DeliveryReport:
        """Send the chosen receivers again, whatever their status. Unknown ids, ids another
        process is delivering right now, or sending paused (unless `force`): nothing is
        sent."""
        ids = list(dict.fromkeys(ids))
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
                + (f" ({len(held)} receivers held)" if len(held) > 1 else "")
            )
        try:
            run.deliver_ids(ids)
        finally:
            make_durable(self.db)
        return report

    @_store_errors
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

    @_store_errors
    def pause(self, for_: dt.timedelta | None = None, reason: str | None = None) -> dict:
        """Pause all sending, for every process and host on this store (until `resume`, or
        for `for_`)."""
        import socket

        return store.pause(f"{_current_user()}@{socket.gethostname()}", for_, reason)

    @_store_errors
    def resume(self) -> dict | None:
        return store.resume()

    @_store_errors
    def paused(self) -> dict | None:
        return store.paused()

    def pause_text(self, pause: dict, verb: str = "is") -> str:
        """`sending is paused by ola@host since 2026-12-01 10:02 CET until ...: reason`."""

        when = self.config.minute
        text = f"sending {verb} paused by {pause['paused_by']} since {when(pause['paused_at'])}"
        if pause["until"] is not None:
            text += f" until {when(pause['until'])}"
        return text + (f": {pause['reason']}" if pause["reason"] else "")

    # -- read ----------------------------------------------------------------------------

    @_store_errors
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
            if status not in (*STATUSES, SENDING):
                known = ", ".join((*STATUSES, SENDING))
                raise InputError(f"--status: unknown status {status!r} ({known})")
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
            max_age=self.config.max_age,
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

    @_store_errors
    def show(self, receiver_id: int) -> dict:
        return store.get_receiver(receiver_id, self.config.max_age)

    @_store_errors
    def control(
        self, action: str, selection, reason: str | None = None, dry_run: bool = False
    ) -> store.ControlReport:
        """hold, release or cancel the selected receivers (a `store.Selection`)."""
        if action not in store.control.ACTIONS:
            raise InputError(f"unknown action {action!r}")
        if selection.empty():
            raise InputError(
                "choose receivers: give IDs, --message, --type, --to, --status or --all"
            )
        for status in selection.statuses:
            if status not in STATUSES:
                raise InputError(f"--status: unknown status {status!r} ({', '.join(STATUSES)})")
        if selection.ids:
            missing = sorted(set(selection.ids) - store.existing_ids(selection.ids))
            if missing:
                raise NotFoundError(f"no receiver with id {', '.join(map(str, missing))}")
        when = self.config.minute(dt.datetime.now(dt.UTC))
        text = store.reason_text(action, _current_user(), when, reason)
        return store.change(action, selection, text, dry_run)

    @_store_errors
    def stats(self, by: str | None = None) -> dict:
        """The queue at a glance (see `devmsg stats`); `by="type"` breaks the receivers'
        counts down per message type."""
        if by not in (None, "type"):
            raise InputError(f"--by: can only break down by 'type', not {by!r}")
        from devmsg.delivery import policy_of

        return store.stats(policy_of(self.config), by_type=by == "type")

    # -- store ---------------------------------------------------------------------------

    def copy_to(self, target: str, replace: bool = False, progress=None) -> dict[str, int]:
        """Copy this whole store into `target` (a PostgreSQL URL, sqlite:///path or a path)."""
        from dataclasses import replace as with_changes

        from devmsg.config import _database
        from devmsg.transfer import copy_store

        path, url = _database(target, Path.cwd(), "--to")
        if (url or str(path.resolve())) == (
            self.config.database_url or str(Path(self.config.database).resolve())
        ):
            raise InputError("--to: that is the store being copied")
        target_config = with_changes(self.config, database=path, database_url=url)
        target_db = open_store(target_config, bind=False)
        try:
            return copy_store(self.db, target_db, target_config.store_name, replace, progress)
        except peewee.DatabaseError as exc:
            name, timeout = target_config.store_name, target_config.busy_timeout
            raise store_error(name, timeout, exc) from None
        finally:
            target_db.close()

    # -- rate limits and the suppression list ----------------------------------------------

    @_store_errors
    def limits(self) -> list[dict]:
        """Each configured rate limit: count, window, used now, when the next permit frees."""
        from devmsg.limits import usage

        return usage(self.config.rate_limits)

    @_store_errors
    def suppressions(self) -> list[dict]:
        return store.list_suppressions()

    @_store_errors
    def suppress(self, addresses: list[str], reason: str | None = None) -> tuple[int, int]:
        """Put addresses on the suppression list (all checked first). (added, already
        listed), each mailbox counted once however it is written."""
        from devmsg.inputs import check_address

        checked = [check_address(address, "ADDRESS").address for address in addresses]
        unique: dict[str, str] = {}  # the first spelling of each mailbox
        for address in checked:
            unique.setdefault(mailbox_key(address), address)
        by = f"{_current_user()}@{socket.gethostname()}"
        added = sum(store.add_suppression(a, reason or f"added by {by}", by)
                    for a in unique.values())  # fmt: skip
        return added, len(unique) - added

    @_store_errors
    def unsuppress(self, addresses: list[str], requeue: bool = False) -> tuple[int, int]:
        """Take addresses off the list (all must be on it); with `requeue`, their
        suppressed receivers become not_sent, due at once. (removed, requeued)."""
        by = f"{_current_user()}@{socket.gethostname()}"
        now = self.config.minute(dt.datetime.now(dt.UTC))
        try:
            return store.remove_suppressions(
                addresses, requeue, f"requeued by {by} at {now}: off the suppression list"
            )
        except LookupError as exc:
            raise NotFoundError(f"not on the suppression list: {exc}") from None

    # -- purge ---------------------------------------------------------------------------

    @_store_errors
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
        return PurgeReport(receivers, messages)


__all__ = [
    "DeliveryReport",
    "Outbox",
    "PurgeReport",
    "Recipient",
    "SendReport",
]
