"""The queue at a glance, for an operator and for monitoring: receivers per status (and
`sending`, under a live claim), what is due, the oldest not yet sent, what went out and
what failed lately, and when the last attempt was made. Plain reads: nothing is locked
(SQLite's WAL readers never wait on a writer), and every query stays on an index or on
the small failure table, so a store of a million receivers answers quickly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import cast

from peewee import Expression, fn

from devmsg.models import STATUSES, UNSENT, Failure, Message, Receiver
from devmsg.store.base import from_db, lease_now, naive, to_db, utcnow
from devmsg.store.bounces import bounced_since
from devmsg.store.claims import claimed, count_due
from devmsg.store.control import paused
from devmsg.store.policy import Policy
from devmsg.store.workers import list_workers

WINDOWS = {"last_hour": dt.timedelta(hours=1), "last_24h": dt.timedelta(hours=24)}


def stats(policy: Policy, by_type: bool = False, lease: dt.timedelta | None = None) -> dict:
    now = utcnow()
    live = claimed() & (Receiver.lease_until >= to_db(lease_now()))
    result: dict = {"receivers": _per_status(live, by_type)}
    result["due"] = count_due(policy, now.replace(tzinfo=dt.UTC))
    oldest = Receiver.select(fn.MIN(Receiver.created_at)).where(Receiver.status.in_(UNSENT))
    oldest_at = oldest.scalar()
    result["oldest_unsent_age_seconds"] = (
        None if oldest_at is None else round((now - naive(oldest_at)).total_seconds(), 3)
    )
    for name, window in WINDOWS.items():
        since = now - window
        result[f"sent_{name}"] = Receiver.select().where(Receiver.sent_at >= since).count()
        failures = Failure.select(Failure.receiver).where(Failure.at >= since)
        result[f"failed_{name}"] = failures.count()
        result[f"error_{name}"] = (
            Receiver.select()
            .where((Receiver.status == "error") & Receiver.id.in_(failures))
            .count()
        )
    result["bounces_last_24h"] = bounced_since(now - WINDOWS["last_24h"])
    result["paused"] = paused() is not None
    sent_at = Receiver.select(fn.MAX(Receiver.sent_at)).scalar()
    last = [sent_at, Failure.select(fn.MAX(Failure.at)).scalar()]
    last = [naive(t) for t in last if t is not None]
    result["last_attempt_at"] = from_db(max(last)) if last else None
    result["relay"] = _relay(None if sent_at is None else from_db(naive(sent_at)))
    result["workers"] = list_workers(lease or dt.timedelta(minutes=5))
    return result


def _relay(last_success: dt.datetime | None) -> dict:
    """Is the relay up: the last failure that said nothing about a receiver (no connection,
    a refusal at MAIL FROM) against the last success. Up until the first such failure."""
    failure = (
        Failure.select(Failure.at, Failure.error)
        .where(Failure.counts == 0)
        .order_by(Failure.id.desc())
        .first()
    )
    failed_at = None if failure is None else from_db(naive(failure.at))
    up = failed_at is None or (last_success is not None and last_success >= failed_at)
    return {"up": up, "last_success_at": last_success, "last_failure_at": failed_at,
            "last_failure": None if failure is None else failure.error}  # fmt: skip


def _per_status(live: Expression, by_type: bool) -> dict:
    """{status: count} (with by_type: {type: {status: count}}), every status present; a
    receiver under a live claim counts as `sending`, not as its stored status."""
    fields = [Receiver.status, fn.COUNT(Receiver.id)]
    counts: dict = {}
    if by_type:
        query = Receiver.select(*fields).select_extend(Message.type).join(Message)
        group = (Message.type, Receiver.status)
        for status, count, kind in cast(Iterable[tuple], query.group_by(*group).tuples()):
            bucket = counts.setdefault(kind, _empty())
            bucket[status] = bucket.get(status, 0) + count
    else:
        # `sent` is most of a store: counted as the rest of an index count (SQLite counts
        # a b-tree without reading rows), the other statuses through the status index.
        group = (Receiver.status,)  # type: ignore[assignment]  # one column: a shorter tuple
        bucket = counts.setdefault(None, _empty())
        rest = [status for status in STATUSES if status != "sent"]
        others = Receiver.select(*fields).where(Receiver.status.in_(rest)).group_by(*group)
        for status, count in cast(Iterable[tuple], others.tuples()):
            bucket[status] = count
        bucket["sent"] = Receiver.select().count() - sum(bucket.values())
    # Live claims are few: fetched on the claimed_by index and counted here (a GROUP BY
    # would walk the status index over every receiver).
    held = Receiver.select(Receiver.status, Message.type).join(Message).where(live)
    for status, kind in held.tuples().iterator():
        bucket = counts.setdefault(kind if by_type else None, _empty())
        bucket[status] -= 1
        bucket["sending"] += 1
    if not by_type:
        return counts.get(None, _empty())
    return dict(sorted(counts.items()))


def _empty() -> dict:
    return {**dict.fromkeys(STATUSES, 0), "sending": 0}
