"""Every query the use cases need. Each write is one short transaction; none is ever held
across SMTP I/O. Times go in as aware datetimes and are stored as naive UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from peewee import JOIN, Case, chunked, fn

from devmsg.errors import NotFoundError
from devmsg.models import Failure, Message, Receiver, database

INSERT_CHUNK = 500


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def to_db(value: dt.datetime) -> dt.datetime:
    """Aware -> naive UTC, as stored."""
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def from_db(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=dt.UTC)


# --- create ---------------------------------------------------------------------------------


def create_message(message: dict, receivers: Iterable[dict]) -> tuple[int, list[int]]:
    """Store one message and all its receivers in one transaction: all or nothing."""
    now = utcnow()
    with database.atomic():
        msg = Message.create(created_at=now, **message)
        for batch in chunked(receivers, INSERT_CHUNK):
            rows = [
                {**row, "message": msg.id, "created_at": now, "status": "not_sent"} for row in batch
            ]
            Receiver.insert_many(rows).execute()
        ids = [
            r.id
            for r in Receiver.select(Receiver.id)
            .where(Receiver.message == msg.id)
            .order_by(Receiver.id)
        ]
    return msg.id, ids


# --- delivery -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    id: int
    address: str
    mime: bytes


def existing_ids(ids: list[int]) -> set[int]:
    found: set[int] = set()
    for batch in chunked(ids, INSERT_CHUNK):
        found.update(r.id for r in Receiver.select(Receiver.id).where(Receiver.id.in_(batch)))
    return found


def failed_ids(resend_limit: int) -> list[int]:
    """Receivers `resend-failed` retries: status failed, failed_count within the limit."""
    query = (
        Receiver.select(Receiver.id)
        .where((Receiver.status == "failed") & (Receiver.failed_count <= resend_limit))
        .order_by(Receiver.id)
    )
    return [r.id for r in query]


def outgoing(ids: list[int]) -> Iterator[Outgoing]:
    """The stored bytes of each receiver, in the order given, a chunk at a time."""
    for batch in chunked(ids, 200):
        rows = {
            r.id: r
            for r in Receiver.select(Receiver.id, Receiver.address, Receiver.mime).where(
                Receiver.id.in_(batch)
            )
        }
        for rid in batch:
            row = rows.get(rid)
            if row is not None:
                yield Outgoing(row.id, row.address, bytes(row.mime))


def record_success(receiver_id: int, sent_to: str) -> str:
    with database.atomic():
        Receiver.update(
            status="sent",
            sent_count=Receiver.sent_count + 1,
            sent_at=utcnow(),
            sent_to=sent_to,
        ).where(Receiver.id == receiver_id).execute()
    return "sent"


def record_failure(receiver_id: int, error: str, traceback: str, resend_limit: int) -> str:
    """Append the failure, count it, and move to `error` once failed_count > resend_limit."""
    with database.atomic():
        Failure.insert(
            receiver=receiver_id, at=utcnow(), error=error, traceback=traceback
        ).execute()
        Receiver.update(
            failed_count=Receiver.failed_count + 1,
            status=Case(None, [(Receiver.failed_count + 1 > resend_limit, "error")], "failed"),
        ).where(Receiver.id == receiver_id).execute()
        row = Receiver.select(Receiver.status).where(Receiver.id == receiver_id).get()
    return row.status


# --- reading --------------------------------------------------------------------------------

LIST_FIELDS = (
    Receiver.id,
    Receiver.message,
    Message.type,
    Receiver.created_at,
    Receiver.address,
    Receiver.name,
    Receiver.language,
    Receiver.subject,
    Receiver.status,
    Receiver.sent_count,
    Receiver.failed_count,
    Receiver.sent_at,
)


def _summary(row: dict) -> dict:
    return {
        "id": row["id"],
        "message_id": row["message"],
        "type": row["type"],
        "created_at": from_db(row["created_at"]),
        "to": row["address"],
        "name": row["name"],
        "language": row["language"],
        "subject": row["subject"],
        "status": row["status"],
        "sent_count": row["sent_count"],
        "failed_count": row["failed_count"],
        "sent_at": from_db(row["sent_at"]),
    }


def list_receivers(
    statuses: list[str] | None = None,
    type: str | None = None,
    to: str | None = None,
    message: int | None = None,
    sent_since: dt.datetime | None = None,
    sent_until: dt.datetime | None = None,
    sent_until_exclusive: bool = False,
    limit: int = 50,
) -> list[dict]:
    """Receivers, newest first. `limit` 0 means all."""
    query = Receiver.select(*LIST_FIELDS).join(Message)
    if statuses:
        query = query.where(Receiver.status.in_(statuses))
    if type is not None:
        query = query.where(Message.type == type)
    if to is not None:
        query = query.where(fn.LOWER(Receiver.address) == to.lower())
    if message is not None:
        query = query.where(Receiver.message == message)
    if sent_since is not None:
        query = query.where(Receiver.sent_at >= to_db(sent_since))
    if sent_until is not None:
        bound = to_db(sent_until)
        query = query.where(
            Receiver.sent_at < bound if sent_until_exclusive else Receiver.sent_at <= bound
        )
    query = query.order_by(Receiver.id.desc())
    if limit:
        query = query.limit(limit)
    return [_summary(row) for row in query.dicts()]


def get_receiver(receiver_id: int) -> dict:
    row = (
        Receiver.select(
            *LIST_FIELDS,
            Receiver.body_text,
            Receiver.body_html,
            Receiver.sent_to,
            Receiver.message_id_header,
            Message.template,
            Message.context,
            Message.metadata,
            Message.created_by,
            Message.sender,
        )
        .join(Message)
        .where(Receiver.id == receiver_id)
        .dicts()
        .first()
    )
    if row is None:
        raise NotFoundError(f"no receiver with id {receiver_id}")
    detail = _summary(row)
    detail.update(
        sent_to=row["sent_to"],
        message_id_header=row["message_id_header"],
        sender=row["sender"],
        template=row["template"],
        context=row["context"],
        metadata=row["metadata"],
        created_by=row["created_by"],
        body_text=row["body_text"],
        body_html=row["body_html"],
        failures=[
            {"at": from_db(f["at"]), "error": f["error"], "traceback": f["traceback"]}
            for f in Failure.select(Failure.at, Failure.error, Failure.traceback)
            .where(Failure.receiver == receiver_id)
            .order_by(Failure.id)
            .dicts()
        ],
    )
    return detail


# --- purge ----------------------------------------------------------------------------------


def _orphans():
    return (
        Message.select(Message.id)
        .join(Receiver, JOIN.LEFT_OUTER, on=(Receiver.message == Message.id))
        .where(Receiver.id.is_null())
    )


def purge(created_before: dt.datetime | None, dry_run: bool) -> tuple[int, int]:
    """Delete receivers created before `created_before` (None: none), their failures, then
    every message left without receivers. Returns (receivers, messages) deleted, or that
    would be deleted with `dry_run`."""
    with database.atomic():
        old = None
        receivers = 0
        if created_before is not None:
            old = Receiver.select(Receiver.id).where(Receiver.created_at < to_db(created_before))
            receivers = old.count()
        if dry_run:
            # Messages that would be left without receivers: orphans now, plus those whose
            # every receiver is old.
            messages = _orphans().count()
            if old is not None:
                kept = Receiver.select(Receiver.message).where(
                    Receiver.created_at >= to_db(created_before)
                )
                messages += (
                    Message.select(Message.id)
                    .where(Message.id.in_(old.select(Receiver.message)))
                    .where(Message.id.not_in(kept))
                    .count()
                )
            return receivers, messages
        if old is not None:
            Failure.delete().where(Failure.receiver.in_(old)).execute()
            Receiver.delete().where(Receiver.created_at < to_db(created_before)).execute()
        messages = Message.delete().where(Message.id.in_(_orphans())).execute()
    return receivers, messages
