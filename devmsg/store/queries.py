"""Reading: the receivers list with its filters, and one receiver in full."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import cast

from peewee import fn

from devmsg.content import assemble, bodies, email, read_bodies
from devmsg.errors import NotFoundError
from devmsg.models import SENDING, UNSENT, Content, Failure, Message, Receiver
from devmsg.store.base import from_db, lease_now, to_db
from devmsg.store.blobs import read as read_blob
from devmsg.store.bounces import reports
from devmsg.store.claims import claimed

LIST_FIELDS = (
    Receiver.id,
    Receiver.claimed_by,
    Receiver.lease_until,
    Receiver.next_attempt_at,
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
    Receiver.expires_at,
    Receiver.age_from,
)


def _expiry(row: dict, max_age: dt.timedelta | None) -> dt.datetime | None:
    """When a receiver not yet sent expires: its --expires time, or max_age after it
    started ageing, whichever comes first; None when nothing applies (or it is settled)."""
    if row["status"] not in UNSENT:
        return None
    times = [row["expires_at"]]
    if max_age and max_age.total_seconds() > 0 and row["status"] != "held":
        times.append((row["age_from"] or row["created_at"]) + max_age)
    times = [t for t in times if t is not None]
    return from_db(min(times)) if times else None


def _summary(row: dict, now: dt.datetime, max_age: dt.timedelta | None = None) -> dict:
    held = row["claimed_by"] is not None and row["lease_until"] >= now
    return {
        "id": row["id"],
        "message_id": row["message"],
        "type": row["type"],
        "created_at": from_db(row["created_at"]),
        "to": row["address"],
        "name": row["name"],
        "language": row["language"],
        "subject": row["subject"],
        "status": SENDING if held else row["status"],
        "sent_count": row["sent_count"],
        "failed_count": row["failed_count"],
        "sent_at": from_db(row["sent_at"]),
        "next_attempt_at": _next_attempt(row),
        "expires_at": _expiry(row, max_age),
    }


def _next_attempt(row: dict) -> dt.datetime | None:
    """When resend-failed will try again: for failed receivers, after the backoff; for
    queued ones, now (the next run)."""
    if row["status"] in ("failed", "not_sent"):
        return from_db(row["next_attempt_at"] or row["created_at"])
    return None


def list_receivers(
    statuses: list[str] | None = None,
    type: str | None = None,
    to: str | None = None,
    message: int | None = None,
    sent_since: dt.datetime | None = None,
    sent_until: dt.datetime | None = None,
    sent_until_exclusive: bool = False,
    limit: int = 50,
    max_age: dt.timedelta | None = None,
) -> list[dict]:
    """Receivers, newest first. `limit` 0 means all."""
    now = to_db(lease_now())  # "sending" is a live claim: the lease clock
    query = Receiver.select(*LIST_FIELDS).join(Message).where(Message.state == "stored")
    if statuses:
        live = claimed() & (Receiver.lease_until >= now)
        not_live = (  # spelled out: NOT over a NULL comparison would drop rows
            Receiver.claimed_by.is_null()
            | Receiver.lease_until.is_null()
            | (Receiver.lease_until < now)
        )
        wanted = [s for s in statuses if s != SENDING]
        condition = Receiver.status.in_(wanted) & not_live if wanted else None
        if SENDING in statuses:
            condition = live if condition is None else (condition | live)
        query = query.where(condition)
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
    return [_summary(row, now, max_age) for row in cast(Iterable[dict], query.dicts())]


def get_receiver(receiver_id: int, max_age: dt.timedelta | None = None) -> dict:
    row = (
        Receiver.select(
            *LIST_FIELDS,
            Content.email,
            Content.bodies,
            Content.parts,
            Receiver.sent_to,
            Receiver.message_id_header,
            Message.template,
            Message.context,
            Message.metadata,
            Message.created_by,
            Message.sender,
            Receiver.status_reason,
        )
        .join(Message)
        .switch(Receiver)
        .join(Content)
        .where(Receiver.id == receiver_id)
        .dicts()
        .first()
    )
    if row is None:
        raise NotFoundError(f"no receiver with id {receiver_id}")
    detail = _summary(row, to_db(lease_now()), max_age)
    whole = assemble(email(bytes(row["email"])), row["parts"], read_blob)
    extra = _bytes(row["bodies"])
    if extra is None and row["parts"] is not None:  # stored in pieces: any MIME
        text, html = read_bodies(whole)
    else:
        text, html = bodies(bytes(row["email"]), extra)
    detail.update(
        email=whole,
        claimed_by=row["claimed_by"],
        lease_until=from_db(row["lease_until"]),
        status_reason=row["status_reason"],
        sent_to=row["sent_to"],
        message_id_header=row["message_id_header"],
        sender=row["sender"],
        template=row["template"],
        context=row["context"],
        metadata=row["metadata"],
        created_by=row["created_by"],
        body_text=text,
        body_html=html,
        failures=[
            {
                "at": from_db(f["at"]),
                "error": f["error"],
                "traceback": f["traceback"],
                "counts": bool(f["counts"]),
            }  # fmt: skip
            for f in _failures(receiver_id)
        ],
        reports=reports(receiver_id),
    )
    return detail


def _failures(receiver_id: int) -> Iterable[dict]:
    query = (
        Failure.select(Failure.at, Failure.error, Failure.traceback, Failure.counts)
        .where(Failure.receiver == receiver_id)
        .order_by(Failure.id)
        .dicts()
    )
    return cast(Iterable[dict], query)


def receiver_email(receiver_id: int) -> bytes:
    """The exact bytes stored for the receiver, assembled: what every (re)send delivers."""
    row = (
        Content.select(Content.email, Content.parts)
        .where(Content.receiver == receiver_id)
        .tuples()
        .first()
    )
    if row is None:
        raise NotFoundError(f"no receiver with id {receiver_id}")
    return assemble(email(bytes(row[0])), row[1], read_blob)


def _bytes(value: bytes | memoryview | None) -> bytes | None:
    return None if value is None else bytes(value)  # PostgreSQL gives memoryview
