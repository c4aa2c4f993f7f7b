"""Purge: deleting old receivers and messages left without receivers, in chunks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from peewee import JOIN, Expression, fn

from devmsg.models import Bounce, Content, Failure, Message, MessageBlob, Receiver, database
from devmsg.store.base import lease_now, to_db, writing
from devmsg.store.blobs import forget_unused


def _orphans() -> Any:
    """Stored messages without receivers (one still being stored is not an orphan)."""
    return (
        Message.select(Message.id)
        .join(Receiver, JOIN.LEFT_OUTER, on=(Receiver.message == Message.id))
        .where(Receiver.id.is_null() & (Message.state == "stored"))
    )


PURGE_CHUNK = 5000


def purge(created_before: dt.datetime | None, dry_run: bool) -> tuple[int, int]:
    """Delete receivers created before `created_before` (None: none), their failures, then
    every message left without receivers. Returns (receivers, messages) deleted, or that
    would be deleted with `dry_run`. Deletes in chunks of short transactions, so memory and
    the WAL stay small and other writers get their turn."""
    cutoff = None if created_before is None else to_db(created_before)
    free = _not_held(to_db(lease_now()))
    if dry_run:
        with database.atomic():
            return _purge_counts(cutoff, free)
    receivers = 0
    while cutoff is not None:
        chunk = (
            Receiver.select(Receiver.id)
            .where((Receiver.created_at < cutoff) & free)
            .order_by(Receiver.created_at, Receiver.id)
            .limit(PURGE_CHUNK)
        )
        with writing():
            Failure.delete().where(Failure.receiver.in_(chunk)).execute()
            Bounce.delete().where(Bounce.receiver.in_(chunk)).execute()
            Content.delete().where(Content.receiver.in_(chunk)).execute()
            deleted = Receiver.delete().where(Receiver.id.in_(chunk)).execute()
        receivers += deleted
        if not deleted:
            break
    messages = 0
    while True:
        with writing():
            doomed = _orphans().limit(PURGE_CHUNK)
            MessageBlob.delete().where(MessageBlob.message.in_(doomed)).execute()
            deleted = Message.delete().where(Message.id.in_(doomed)).execute()
        messages += deleted
        if not deleted:
            break
    with writing():
        forget_unused(database)  # shared parts no message uses any more
    return receivers, messages


def _not_held(now: dt.datetime) -> Expression:
    """Not claimed by a live devmsg: purge never deletes what a running sender holds."""
    return (fn.COALESCE(Receiver.claimed_by, "") == "") | (Receiver.lease_until < now)


def _purge_counts(cutoff: dt.datetime | None, free: Expression) -> tuple[int, int]:
    # Messages that would be left without receivers: orphans now, plus those whose every
    # receiver is old.
    messages = _orphans().count()
    receivers = 0
    if cutoff is not None:
        old = Receiver.select(Receiver.id).where((Receiver.created_at < cutoff) & free)
        receivers = old.count()
        kept = Receiver.select(Receiver.message).where((Receiver.created_at >= cutoff) | ~free)
        messages += (
            Message.select(Message.id)
            .where(Message.id.in_(old.select(Receiver.message)))
            .where(Message.id.not_in(kept))
            .count()
        )
    return receivers, messages
