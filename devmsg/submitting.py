"""What every way in shares once a message's receivers are known: its schedule checked,
its rows stored (in one transaction, or streamed in chunks no other process sees until
they are complete), then delivered or left queued; and the way in for prebuilt mail,
`send_email`. A part of `Outbox` (its base class)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import peewee

from devmsg import store
from devmsg.addresses import mailbox_key
from devmsg.arguments import check_type
from devmsg.compose import check_receivers
from devmsg.db import make_durable
from devmsg.delivery import DeliveryReport, Progress, Run, check_stop
from devmsg.errors import InputError, UsageError
from devmsg.inputs import Recipient
from devmsg.models import JSONField
from devmsg.operating import Operating, current_user, store_errors

RENDER_CHUNK = 500


@dataclass
class SendReport(DeliveryReport):
    message_id: int = 0
    receiver_ids: list[int] = field(default_factory=list)
    queued: bool = False
    duplicates: int = 0  # receivers merged: the same mailbox given twice or more
    # a language asked for that is not configured -> (the one used, how many receivers)
    fallbacks: dict[str, tuple[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        fallbacks = {asked: used for asked, (used, _) in self.fallbacks.items()}
        return {"message_id": self.message_id, "receivers": self.receiver_ids,
                "queued": self.queued, **super().as_dict(),
                "paused": self.pause is not None, "duplicates": self.duplicates,
                "fallbacks": fallbacks}  # fmt: skip


def check_json(**values: Any) -> None:
    for option, value in values.items():
        check_type(option, value, dict, optional=True)
        try:
            JSONField().db_value(value)
        except (TypeError, ValueError, RecursionError) as exc:
            raise InputError(f"{option}: {exc}", param=option) from None


def check_schedule(
    send_at: dt.datetime | None, expires_at: dt.datetime | None
) -> tuple[tuple | None, bool]:
    """(the schedule to store, whether it makes the send queued)."""
    check_type("send_at", send_at, dt.datetime, optional=True)
    check_type("expires_at", expires_at, dt.datetime, optional=True)
    now = dt.datetime.now(dt.UTC)
    for option, value in (("send_at", send_at), ("expires_at", expires_at)):
        if value is not None and value.tzinfo is None:
            raise InputError(f"{option}: give a time with a time zone", param=option)
    if expires_at is not None and expires_at <= max(now, send_at or now):
        raise InputError(
            "expires_at: that time has passed (or comes before send_at)",
            cli="--expires: that time has passed (or comes before --at)",
        )
    schedule = None
    if send_at is not None or expires_at is not None:
        schedule = (send_at, expires_at, send_at)
    return schedule, send_at is not None and send_at > now  # later: resend-failed delivers


class Submitting(Operating):
    def _submit(
        self,
        message: dict,
        checked: list,
        rows_for: Callable[[list, dict], list[dict]],
        *,
        queue: bool,
        schedule: tuple | None,
        duplicates: int = 0,
        fallbacks: dict[str, int] | None = None,
        progress: Progress | None = None,
    ) -> SendReport:
        """Store `message` with a row per checked receiver (`rows_for(chunk, listed)`),
        then deliver them unless `queue`."""
        cfg = self.config
        listed = store.suppressed(address.address for address, _, _ in checked)
        pause = store.paused()
        if pause is not None:
            queue = True  # stored as not_sent; resend-failed delivers once sending resumes
        report = SendReport(queued=queue, pause=pause, duplicates=duplicates,
                            fallbacks={asked: (cfg.default_language, count)
                                       for asked, count in (fallbacks or {}).items()})  # fmt: skip
        skipped = {i for i, (address, _, _) in enumerate(checked)
                   if mailbox_key(address.address) in listed}  # fmt: skip
        report.suppressed = len(skipped)
        run = Run(cfg, report, progress)
        owner = None if queue else run.owner
        message = {**message, "created_by": current_user()}
        if len(checked) <= RENDER_CHUNK:
            # One transaction: the application's one-receiver-per-event path.
            rows = rows_for(checked, listed)
            check_stop("while storing the message: nothing was stored or sent")
            # A queued message holds no claim: no lease (on PostgreSQL, a query for its clock).
            lease = run.lease_until() if owner else dt.datetime.now(dt.UTC)
            message_id, ids = store.store_message(message, rows, owner, lease, schedule)
        else:
            # Streamed in chunks, invisible to every other process until it is complete.
            message_id = store.begin_message(message, run.lease_until())
            try:
                for start in range(0, len(checked), RENDER_CHUNK):
                    rows = rows_for(checked[start : start + RENDER_CHUNK], listed)
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
            make_durable(self.db)  # type: ignore[attr-defined]  # the Outbox's
        return report

    @store_errors
    def send_email(
        self,
        message: Any,
        *,
        type: str,
        recipients: Iterable[Recipient | str] | None = None,
        metadata: dict | None = None,
        queue: bool = True,
        send_at: dt.datetime | None = None,
        expires_at: dt.datetime | None = None,
        envelope_from: str | None = None,
        progress: Progress | None = None,
    ) -> SendReport:
        """Store a prebuilt message (an `email.message.EmailMessage`, `Message` or its
        bytes) for each of its receivers: the mailboxes of its To, Cc and Bcc, or
        `recipients` (the envelope, as sendmail's arguments). Stored and sent as given,
        but for the Bcc removed and a Message-ID, Date, MIME-Version and From added when
        missing. `queue` (the default) leaves delivery to the worker or resend-failed.
        `envelope_from` sets MAIL FROM, when the config's `allow_envelope_from` allows it."""
        from devmsg import mime
        from devmsg.content import Shared
        from devmsg.eml import prepare

        cfg = self.config
        check_type("type", type, str)
        check_type("envelope_from", envelope_from, str, optional=True)
        check_json(metadata=metadata)
        if not type.strip():
            raise InputError("type must not be empty", param="type")
        schedule, later = check_schedule(send_at, expires_at)
        if envelope_from is not None:
            envelope_from = self._envelope_from(envelope_from)
        prebuilt = prepare(message, sender_header=cfg.sender_header, max_size=cfg.max_message_size,
                           message_id=mime.new_message_id(cfg.sender_address),
                           now=dt.datetime.now(dt.UTC), mailboxes=recipients is None)  # fmt: skip
        if recipients is None:
            if not prebuilt.mailboxes:
                raise UsageError(
                    "the message has no receivers: no To, Cc or Bcc, and no recipients given",
                    cli="the message has no receivers: no To, Cc or Bcc (give --to)",
                )
            recipients = [Recipient(address, name[:200], source=f"the message's {address!r}")
                          for name, address in prebuilt.mailboxes]  # fmt: skip
        checked, duplicates, _ = check_receivers(recipients, None, cfg)
        # One set of bytes for every receiver, stored once when they are several; pieces,
        # so that show reads them back as any MIME (not as devmsg's own layout).
        body = [Shared.of(prebuilt.data)] if len(checked) > 1 else [prebuilt.data]

        def rows_for(chunk: list, listed: dict) -> list[dict]:
            from devmsg.store.suppression import reason_text

            rows = []
            for address, name, language in chunk:
                entry = listed.get(mailbox_key(address.address)) if listed else None
                rows.append({
                    "address": address.address, "envelope_to": address.envelope, "name": name,
                    "language": language, "subject": prebuilt.subject, "body_text": None,
                    "body_html": None, "message_id_header": prebuilt.message_id,
                    "suppressed": None if entry is None else reason_text(entry, cfg.minute),
                    "mime": body,
                })  # fmt: skip
            return rows

        message_row = {"type": type.strip(), "template": None, "context": {},
                       "metadata": dict(metadata or {}), "sender": cfg.sender,
                       "envelope_from": envelope_from}  # fmt: skip
        return self._submit(
            message_row, checked, rows_for, queue=queue or later, schedule=schedule,
            duplicates=duplicates, progress=progress,
        )  # fmt: skip

    def _envelope_from(self, value: str) -> str:
        from devmsg.addresses import check_address

        if not self.config.allow_envelope_from:
            raise InputError(
                "envelope_from: not allowed by the config (set allow_envelope_from = true)",
                param="envelope_from",
            )
        if not value.strip():
            return ""  # the null sender, <>
        return check_address(value, "envelope_from", self.config.allow_local_domains).envelope
