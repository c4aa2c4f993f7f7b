"""Claims and leases: who is delivering which receiver, until when; recovery of claims
whose owner died; what is due."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from peewee import Database, Expression, SqliteDatabase, chunked, fn

from devmsg.content import assemble, email
from devmsg.models import DELIVERABLE, Content, Message, Receiver, database
from devmsg.store.base import (
    INSERT_CHUNK,
    announce,
    db_param,
    for_update,
    from_db,
    lease_now,
    locked,
    naive,
    to_db,
    utcnow,
    writing,
)
from devmsg.store.blobs import read as read_blob
from devmsg.store.outcomes import record_failure_in
from devmsg.store.policy import Policy


def release_claims(owner: str) -> None:
    """Give up `owner`'s claims on receivers whose attempt has not started."""
    with writing():
        released = (
            Receiver.update(claimed_by=None, lease_until=None)
            .where((Receiver.claimed_by == owner) & Receiver.attempt_started_at.is_null())
            .execute()
        )
        if released:
            announce()  # due again: another worker may take them now


@dataclass(frozen=True)
class Outgoing:
    id: int
    envelope: str | None
    address: str
    packed: bytes  # the email as stored: compressed, without its shared pieces
    failed_count: int
    relay_failures: int = 0
    envelope_from: str | None = None  # a MAIL FROM the message asked for (sendmail -f)
    parts: str | None = None  # where the shared pieces go back in (see devmsg.content)

    @property
    def mime(self) -> bytes:
        """The exact bytes to send, assembled when sent: a batch of receivers of a large
        attachment holds it once (in the blob cache), not once a receiver."""
        return assemble(email(self.packed), self.parts, read_blob)


INTERRUPTED = "interrupted attempt: the sender stopped mid-delivery; it may have been delivered"


def existing_ids(ids: list[int]) -> set[int]:
    found: set[int] = set()
    for batch in chunked(ids, INSERT_CHUNK):
        found.update(r.id for r in Receiver.select(Receiver.id).where(Receiver.id.in_(batch)))
    return found


def recover_expired(policy: Policy) -> int:
    """Claims whose lease ran out: an attempt that had started is recorded as interrupted
    (a failure that does not count toward resend_limit, due again at once: it says nothing
    about the receiver nor the mail server); every such claim is released. Messages left
    `storing` by a dead sender are removed. Returns how many receivers were released.
    Leases are compared on the lease clock; the failure is timed on this process's."""
    now, lease_now_ = utcnow(), to_db(lease_now())
    with writing():
        query = for_update(
            Receiver.select(
                Receiver.id, Receiver.attempt_started_at, Receiver.failed_count,
                Receiver.claimed_by, Receiver.relay_failures,
            )
            .where(claimed() & (Receiver.lease_until < lease_now_))
            .tuples()
        )  # fmt: skip
        expired = list(query.iterator())  # tuples, not cached model objects
        for rid, started, failed_count, owner, relay_failures in expired:
            if started is not None:
                how = (
                    f"No traceback: {owner} started the SMTP exchange at {started} UTC and "
                    "stopped (killed or crashed) before recording how it ended; its claim "
                    "expired and this run recovered it."
                )
                # It says nothing about the receiver: it does not count a stop or a crash.
                record_failure_in(
                    rid, failed_count, INTERRUPTED, how, False, policy, now, backoff=False,
                    counts=False, relay_failures=relay_failures,
                )  # fmt: skip
        for batch in chunked([row[0] for row in expired], INSERT_CHUNK):
            Receiver.update(claimed_by=None, lease_until=None, attempt_started_at=None).where(
                Receiver.id.in_(batch)
            ).execute()
        dead = Message.select(Message.id).where(
            (Message.state == "storing") & (Message.lease_until < lease_now_)
        )
        doomed = Receiver.select(Receiver.id).where(Receiver.message.in_(dead))
        Content.delete().where(Content.receiver.in_(doomed)).execute()
        Receiver.delete().where(Receiver.message.in_(dead)).execute()
        Message.delete().where(Message.id.in_(dead)).execute()
        if expired:
            announce()
    return len(expired)


def claimed() -> Expression:
    """claimed_by is set. Written as a range ('' sorts first), so that the index on
    claimed_by finds the few claimed receivers among millions: IS NOT NULL would scan."""
    return Receiver.claimed_by > ""


def _deliverable(policy: Policy, type: str | None = None) -> Expression:
    """Nobody's, and deliverable (not_sent, or failed within resend_limit), whenever due."""
    # COALESCE keeps the planner on the status index: "claimed_by IS NULL" would match the
    # claimed_by index, which holds every one of a million sent receivers.
    stored = Message.state == "stored"
    if type is not None:
        stored &= Message.type == type
    return (
        (fn.COALESCE(Receiver.claimed_by, "") == "")
        & (
            (Receiver.status == "not_sent")
            | ((Receiver.status == "failed") & (Receiver.failed_count <= policy.resend_limit))
        )
        & Receiver.message.in_(Message.select(Message.id).where(stored))
    )


def _due(policy: Policy, due_before: dt.datetime, type: str | None = None) -> Expression:
    return _deliverable(policy, type) & (
        Receiver.next_attempt_at.is_null() | (Receiver.next_attempt_at <= due_before)
    )


def claim_due(
    owner: str,
    lease_until: dt.datetime,
    due_before: dt.datetime,
    policy: Policy,
    limit: int,
    type: str | None = None,
    start_first: bool = False,
) -> list[int]:
    """Claim up to `limit` receivers that are due: failed within the limit or never
    attempted, not held by anyone, and past their next-attempt time. Those the run would
    consider that are past their time (`--expires`, `max_age`) become `expired` instead.
    With `start_first`, the first one's attempt is marked as started in the same commit
    (`devmsg worker`: one transaction less between a commit and its delivery)."""
    db = database.obj
    with writing():
        if _any_late(db, policy, due_before):
            expire_due(policy, due_before)
        params = [policy.resend_limit, *([type] if type is not None else []),
                  to_db(due_before), limit]  # fmt: skip
        sql = _claim_sql(db, type is not None)
        ids = [row[0] for row in db.execute_sql(sql, [db_param(db, p) for p in params])]
        if ids:
            first = ids[0] if start_first else -1
            sql = _CLAIM_UPDATE.format(ids=", ".join(["?"] * len(ids)))
            params = [owner, to_db(lease_until), first, to_db(utcnow()), *ids]
            db.execute_sql(_placeholders(db, sql), [db_param(db, p) for p in params])
    return ids


# The claim is the hot path of `devmsg worker` (one per commit it wakes on): plain SQL, as
# the outcomes' (peewee took 0.3 ms to build each query, more than the query). The same
# conditions as `_due`, which count_due and the stats use.
_CLAIM = (
    "SELECT id FROM receiver WHERE COALESCE(claimed_by, '') = ''"
    " AND (status = 'not_sent' OR (status = 'failed' AND failed_count <= ?))"
    " AND message_id IN (SELECT id FROM message WHERE state = 'stored'{type})"
    " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
    " ORDER BY id LIMIT ?{lock}"
)
_CLAIM_UPDATE = (
    "UPDATE receiver SET claimed_by = ?, lease_until = ?,"
    " attempt_started_at = CASE WHEN id = ? THEN ? ELSE attempt_started_at END"
    " WHERE id IN ({ids})"
)
_LATE = (
    "SELECT 1 FROM receiver WHERE status IN ('not_sent', 'failed')"
    " AND COALESCE(claimed_by, '') = '' AND (expires_at < ?{age}) LIMIT 1"
)


def _placeholders(db: Database, sql: str) -> str:
    return sql if db.param == "?" else sql.replace("?", db.param)


def _claim_sql(db: Database, typed: bool) -> str:
    lock = "" if isinstance(db, SqliteDatabase) else " FOR UPDATE SKIP LOCKED"
    sql = _CLAIM.format(type=" AND type = ?" if typed else "", lock=lock)
    return _placeholders(db, sql)


def _any_late(db: Database, policy: Policy, now: dt.datetime) -> bool:
    """Whether any receiver nobody holds is past its time (cheap: then expire_due)."""
    params = [to_db(now)]
    age = ""
    if policy.max_age.total_seconds() > 0:
        age = " OR COALESCE(age_from, created_at) < ?"
        params.append(to_db(now) - policy.max_age)
    sql = _placeholders(db, _LATE.format(age=age))
    return db.execute_sql(sql, [db_param(db, p) for p in params]).fetchone() is not None


def count_due(policy: Policy, due_before: dt.datetime, type: str | None = None) -> int:
    return Receiver.select().where(_due(policy, to_db(due_before), type)).count()


def next_due_at(policy: Policy, after: dt.datetime, type: str | None = None) -> dt.datetime | None:
    """When the first receiver not yet due becomes due (its backoff or --at time), or
    None: the time a worker may sleep until."""
    first = (
        Receiver.select(fn.MIN(Receiver.next_attempt_at))
        .where(_deliverable(policy, type) & (Receiver.next_attempt_at > to_db(after)))
        .scalar()
    )
    return None if first is None else from_db(naive(first))


def next_lease_end(owner: str) -> dt.datetime | None:
    """When the first claim of another owner runs out (on the lease clock), or None: a dead
    owner's receivers are recovered then."""
    first = (
        Receiver.select(fn.MIN(Receiver.lease_until))
        .where(claimed() & (Receiver.claimed_by != owner))
        .scalar()
    )
    return None if first is None else from_db(naive(first))


def claim_ids(owner: str, ids: list[int], lease_until: dt.datetime) -> dict[int, str]:
    """Claim exactly these receivers (a resend by hand), whatever their status. If another
    live claim holds any of them, claim none and return {id: holder}."""
    now = to_db(lease_now())
    with writing():
        held: dict[int, str] = {}
        for batch in chunked(ids, INSERT_CHUNK):
            rows = locked(
                Receiver.select(Receiver.id, Receiver.claimed_by, Receiver.lease_until).where(
                    Receiver.id.in_(batch)
                )
            ).tuples()
            held.update(
                (rid, owner)
                for rid, owner, lease in rows
                if owner is not None and lease is not None and lease >= now
            )
        if held:
            return held
        for batch in chunked(ids, INSERT_CHUNK):
            Receiver.update(
                claimed_by=owner, lease_until=to_db(lease_until), attempt_started_at=None
            ).where(Receiver.id.in_(batch)).execute()
    return {}


def defer(owner: str, due: dict[int, dt.datetime]) -> None:
    """Give up these claims without an attempt (a rate limit would not let them through):
    each stays in its status, due at the time given, nothing recorded or counted."""
    by_time: dict[dt.datetime, list[int]] = {}
    for rid, when in due.items():
        by_time.setdefault(to_db(when).replace(microsecond=0), []).append(rid)
    with writing():
        for when, ids in by_time.items():
            Receiver.update(
                next_attempt_at=when, claimed_by=None, lease_until=None, attempt_started_at=None
            ).where(Receiver.id.in_(ids) & (Receiver.claimed_by == owner)).execute()
        announce()  # workers wake at the new due time


def renew(owner: str, lease_until: dt.datetime) -> None:
    with writing():
        Receiver.update(lease_until=to_db(lease_until)).where(
            Receiver.claimed_by == owner
        ).execute()


def outgoing(ids: list[int]) -> list[Outgoing]:
    """The stored bytes of each receiver, in the order given."""
    query = (
        Receiver.select(
            Receiver.id, Receiver.envelope_to, Receiver.address, Content.email,
            Receiver.failed_count, Receiver.relay_failures, Content.parts,
            Message.envelope_from,
        )
        .join(Content)
        .switch(Receiver)
        .join(Message)
        .where(Receiver.id.in_(ids))
        .tuples()
    )  # fmt: skip
    rows: dict[int, Any] = {row[0]: row for row in cast(Iterable[tuple], query)}
    return [Outgoing(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[7], r[6])
            for r in (rows.get(i) for i in ids) if r]  # fmt: skip


def expire_due(policy: Policy, now: dt.datetime) -> int:
    """Receivers still not sent and nobody's (a claimed one is never expired under its
    run) whose time is over: `expires_at` passed, or `max_age` since `age_from` (their --at
    time, moved on by any hold) or creation. Each becomes `expired`, saying why. In the
    caller's transaction. On this process's clock, as backoff is."""
    now_db = to_db(now)
    late = Receiver.expires_at < now_db
    if policy.max_age.total_seconds() > 0:
        late |= fn.COALESCE(Receiver.age_from, Receiver.created_at) < now_db - policy.max_age
    query = (
        Receiver.select(Receiver.id, Receiver.created_at, Receiver.age_from, Receiver.expires_at)
        .where(
            Receiver.status.in_(DELIVERABLE) & (fn.COALESCE(Receiver.claimed_by, "") == "") & late
        )
        .tuples()
    )
    expired = 0
    for rid, created, age_from, expires in list(query.iterator()):
        if expires is not None and expires < now_db:
            reason = f"expired: not sent by its --expires time {expires:%Y-%m-%d %H:%M} UTC"
        else:
            since = f"its --at time {age_from:%Y-%m-%d %H:%M}" if age_from else (
                f"created {created:%Y-%m-%d %H:%M}")  # fmt: skip
            reason = f"expired: not sent within max_age {_days(policy.max_age)} ({since} UTC)"
        Receiver.update(status="expired", status_reason=reason, next_attempt_at=None).where(
            Receiver.id == rid
        ).execute()
        expired += 1
    return expired


def _days(value: dt.timedelta) -> str:
    seconds = value.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
