"""Every query the use cases need. Each write is one short transaction; none is ever held
across SMTP I/O. Times go in as aware datetimes and are stored as naive UTC."""

from __future__ import annotations

import datetime as dt
import threading
from contextlib import contextmanager
from dataclasses import dataclass

from peewee import JOIN, SqliteDatabase, chunked, fn

from devmsg.errors import NotFoundError
from devmsg.models import SENDING, Content, Failure, Message, Receiver, database

INSERT_CHUNK = 500


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def to_db(value: dt.datetime) -> dt.datetime:
    """Aware -> naive UTC, as stored."""
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def from_db(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=dt.UTC)


# --- transactions ---------------------------------------------------------------------------


# Threads of one process (several SMTP connections) queue here for the write lock, instead
# of polling SQLite's busy handler, which sleeps in steps of milliseconds.
_writers = threading.RLock()


@contextmanager
def writing(immediate: bool = False):
    """A write transaction. `immediate` takes the database's write lock at once (SQLite:
    BEGIN IMMEDIATE), for every read-then-write, so that two processes can never both read
    "free" and both take it."""
    db = database.obj
    with _writers:
        if immediate and isinstance(db, SqliteDatabase):
            with db.atomic("IMMEDIATE"):
                yield
        else:
            with db.atomic():
                yield


def _lock(query):
    """On PostgreSQL, lock the rows read (waiting for another sender's lock)."""
    if isinstance(database.obj, SqliteDatabase):
        return query
    return query.for_update()


def _for_update(query):
    """On PostgreSQL, lock the rows read and skip those another sender holds."""
    if isinstance(database.obj, SqliteDatabase):
        return query  # the IMMEDIATE transaction already serialises claimers
    return query.for_update("FOR UPDATE SKIP LOCKED")


# --- create ---------------------------------------------------------------------------------


def begin_message(message: dict, lease_until: dt.datetime) -> int:
    """A message whose receivers are about to be streamed in. Until `finish_message` it is
    `storing`: never delivered, and removed by recovery if its lease runs out."""
    with writing():
        return Message.insert(
            created_at=utcnow(), state="storing", lease_until=to_db(lease_until), **message
        ).execute()


_RECEIVER_COLUMNS = (
    "message_id", "address", "envelope_to", "name", "language", "subject",
    "message_id_header", "status", "sent_count", "failed_count", "created_at", "claimed_by",
    "lease_until",
)  # fmt: skip
_CONTENT_COLUMNS = ("receiver_id", "body_text", "body_html", "mime")


def insert_sql(db, table: str, columns) -> str:
    """A plain INSERT with the driver's placeholders, for executemany."""
    placeholders = ", ".join([db.param] * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"


def add_receivers(
    message_id: int, rows: list[dict], owner: str | None, lease_until: dt.datetime
) -> None:
    """Insert one chunk of receivers, claimed by `owner` (a send) or free (a queue), with one
    prepared statement (executemany): a peewee insert_many spent more time building SQL
    than SQLite spent storing."""
    db = database.obj
    now, lease = _param(db, utcnow()), _param(db, to_db(lease_until))
    sql = insert_sql(db, "receiver", _RECEIVER_COLUMNS)
    values = [
        (message_id, r["address"], r["envelope_to"], r["name"], r["language"], r["subject"],
         r["message_id_header"], "not_sent", 0, 0, now, owner, lease if owner else None)
        for r in rows
    ]  # fmt: skip
    content_sql = insert_sql(db, "content", _CONTENT_COLUMNS)
    with writing():
        last = (
            Receiver.select(fn.MAX(Receiver.id)).where(Receiver.message == message_id).scalar() or 0
        )
        db.cursor().executemany(sql, values)
        # This message's new rows: map each back to its content by its (random) Message-ID.
        ids = dict(
            Receiver.select(Receiver.message_id_header, Receiver.id)
            .where((Receiver.message == message_id) & (Receiver.id > last))
            .tuples()
            .iterator()
        )
        db.cursor().executemany(
            content_sql,
            [(ids[r["message_id_header"]], r["body_text"], r["body_html"], r["mime"])
             for r in rows],
        )  # fmt: skip
        Message.update(lease_until=to_db(lease_until)).where(Message.id == message_id).execute()


def finish_message(message_id: int) -> list[int]:
    """Make the message deliverable; returns its receivers' ids in order."""
    with writing():
        Message.update(state="stored", lease_until=None).where(Message.id == message_id).execute()
        query = (
            Receiver.select(Receiver.id)
            .where(Receiver.message == message_id)
            .order_by(Receiver.id)
            .tuples()
        )
        return [rid for (rid,) in query.iterator()]  # no cache of 100,000 model objects


def discard_message(message_id: int) -> None:
    with writing():
        mine = Receiver.select(Receiver.id).where(Receiver.message == message_id)
        Content.delete().where(Content.receiver.in_(mine)).execute()
        Receiver.delete().where(Receiver.message == message_id).execute()
        Message.delete().where(Message.id == message_id).execute()


def release_claims(owner: str) -> None:
    """Give up `owner`'s claims on receivers whose attempt has not started."""
    with writing():
        Receiver.update(claimed_by=None, lease_until=None).where(
            (Receiver.claimed_by == owner) & Receiver.attempt_started_at.is_null()
        ).execute()


# --- claims ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    id: int
    envelope: str | None
    address: str
    mime: bytes
    failed_count: int


@dataclass(frozen=True)
class Policy:
    """What a failure does: the limit, and the backoff before the next attempt."""

    resend_limit: int
    backoff: dt.timedelta
    backoff_max: dt.timedelta

    def next_attempt(self, failures: int, now: dt.datetime) -> dt.datetime:
        """After the n-th failure: backoff * 2^(n-1), +-20% jitter, at most backoff_max."""
        base = self.backoff.total_seconds()
        if base <= 0:
            return now
        import random

        delay = base * 2 ** min(failures - 1, 40) * random.uniform(0.8, 1.2)
        return now + dt.timedelta(seconds=min(delay, self.backoff_max.total_seconds()))


INTERRUPTED = "interrupted attempt: the sender stopped mid-delivery; it may have been delivered"


def existing_ids(ids: list[int]) -> set[int]:
    found: set[int] = set()
    for batch in chunked(ids, INSERT_CHUNK):
        found.update(r.id for r in Receiver.select(Receiver.id).where(Receiver.id.in_(batch)))
    return found


def recover_expired(policy: Policy) -> int:
    """Claims whose lease ran out: an attempt that had started is recorded as interrupted
    (a temporary failure); every such claim is released. Messages left `storing` by a dead
    sender are removed. Returns how many receivers were released."""
    now = utcnow()
    with writing(immediate=True):
        query = _for_update(
            Receiver.select(
                Receiver.id, Receiver.attempt_started_at, Receiver.failed_count,
                Receiver.claimed_by,
            )
            .where(_claimed() & (Receiver.lease_until < now))
            .tuples()
        )  # fmt: skip
        expired = list(query.iterator())  # tuples, not cached model objects
        for rid, started, failed_count, owner in expired:
            if started is not None:
                how = (
                    f"No traceback: {owner} started the SMTP exchange at {started} UTC and "
                    "stopped (killed or crashed) before recording how it ended; its claim "
                    "expired and this run recovered it."
                )
                _record_failure(rid, failed_count, INTERRUPTED, how, False, policy, now)
        for batch in chunked([row[0] for row in expired], INSERT_CHUNK):
            Receiver.update(claimed_by=None, lease_until=None, attempt_started_at=None).where(
                Receiver.id.in_(batch)
            ).execute()
        dead = Message.select(Message.id).where(
            (Message.state == "storing") & (Message.lease_until < now)
        )
        doomed = Receiver.select(Receiver.id).where(Receiver.message.in_(dead))
        Content.delete().where(Content.receiver.in_(doomed)).execute()
        Receiver.delete().where(Receiver.message.in_(dead)).execute()
        Message.delete().where(Message.id.in_(dead)).execute()
    return len(expired)


def _claimed():
    """claimed_by is set. Written as a range ('' sorts first), so that the index on
    claimed_by finds the few claimed receivers among millions: IS NOT NULL would scan."""
    return Receiver.claimed_by > ""


def _due(policy: Policy, due_before: dt.datetime):
    # COALESCE keeps the planner on the status index: "claimed_by IS NULL" would match the
    # claimed_by index, which holds every one of a million sent receivers.
    return (
        (fn.COALESCE(Receiver.claimed_by, "") == "")
        & (
            (Receiver.status == "not_sent")
            | ((Receiver.status == "failed") & (Receiver.failed_count <= policy.resend_limit))
        )
        & (Receiver.next_attempt_at.is_null() | (Receiver.next_attempt_at <= due_before))
        & Receiver.message.in_(Message.select(Message.id).where(Message.state == "stored"))
    )


def claim_due(
    owner: str, lease_until: dt.datetime, due_before: dt.datetime, policy: Policy, limit: int
) -> list[int]:
    """Claim up to `limit` receivers that are due: failed within the limit or never
    attempted, not held by anyone, and past their next-attempt time."""
    with writing(immediate=True):
        ids = [
            r.id
            for r in _for_update(
                Receiver.select(Receiver.id)
                .where(_due(policy, to_db(due_before)))
                .order_by(Receiver.id)
                .limit(limit)
            )
        ]
        if ids:
            Receiver.update(claimed_by=owner, lease_until=to_db(lease_until)).where(
                Receiver.id.in_(ids)
            ).execute()
    return ids


def count_due(policy: Policy, due_before: dt.datetime) -> int:
    return Receiver.select().where(_due(policy, to_db(due_before))).count()


def claim_ids(owner: str, ids: list[int], lease_until: dt.datetime) -> dict[int, str]:
    """Claim exactly these receivers (a resend by hand), whatever their status. If another
    live claim holds any of them, claim none and return {id: holder}."""
    now = utcnow()
    with writing(immediate=True):
        held = {}
        for batch in chunked(ids, INSERT_CHUNK):
            rows = _lock(
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


def renew(owner: str, lease_until: dt.datetime) -> None:
    with writing():
        Receiver.update(lease_until=to_db(lease_until)).where(
            Receiver.claimed_by == owner
        ).execute()


def outgoing(ids: list[int]) -> list[Outgoing]:
    """The stored bytes of each receiver, in the order given."""
    query = (
        Receiver.select(
            Receiver.id, Receiver.envelope_to, Receiver.address, Content.mime,
            Receiver.failed_count,
        )
        .join(Content)
        .where(Receiver.id.in_(ids))
        .tuples()
    )  # fmt: skip
    rows = {row[0]: row for row in query}
    return [Outgoing(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in (rows.get(i) for i in ids) if r]


# The per-receiver writes are the hot path of delivery: plain, portable SQL with the
# driver's placeholder, instead of building a peewee query for every receiver (which cost
# more than the SMTP exchange). Everything else goes through peewee's query builder.
_SQL = {
    "start": "UPDATE receiver SET attempt_started_at = ? WHERE id = ?",
    "sent": (
        "UPDATE receiver SET status = 'sent', sent_count = sent_count + 1, sent_at = ?,"
        " sent_to = ?, next_attempt_at = NULL, claimed_by = NULL, lease_until = NULL,"
        " attempt_started_at = NULL WHERE id = ?"
    ),
    "failed": (
        "UPDATE receiver SET status = ?, failed_count = failed_count + 1, next_attempt_at = ?,"
        " claimed_by = NULL, lease_until = NULL, attempt_started_at = NULL WHERE id = ?"
    ),
    "failure": "INSERT INTO failure (receiver_id, at, error, traceback) VALUES (?, ?, ?, ?)",
}


def _execute(name: str, *params) -> None:
    db = database.obj
    sql = _SQL[name] if db.param == "?" else _SQL[name].replace("?", db.param)
    db.execute_sql(sql, [_param(db, p) for p in params])


def _param(db, value):
    """Times as peewee stores them: text on SQLite, native on PostgreSQL."""
    if isinstance(value, dt.datetime) and isinstance(db, SqliteDatabase):
        return value.isoformat(sep=" ")
    return value


def start_attempt(receiver_id: int, started: bool = True) -> None:
    """Mark that the SMTP exchange for this receiver is about to start (or, with
    `started=False`, that it will not after all)."""
    with writing():
        _execute("start", utcnow() if started else None, receiver_id)


def record_success(receiver_id: int, sent_to: str, start_next: int | None = None) -> str:
    """Commit one success (and mark the next receiver's attempt as started, in the same
    transaction: one commit a receiver)."""
    now = utcnow()
    with writing():
        _execute("sent", now, sent_to, receiver_id)
        if start_next is not None:
            _execute("start", now, start_next)
    return "sent"


def record_failure(
    receiver_id: int,
    failed_count: int,
    error: str,
    traceback: str,
    permanent: bool,
    policy: Policy,
    start_next: int | None = None,
) -> str:
    """Append the failure and count it: `error` at once when permanent, or when
    failed_count > resend_limit; else `failed` until the backoff has passed."""
    now = utcnow()
    with writing():
        status = _record_failure(
            receiver_id, failed_count, error, traceback, permanent, policy, now
        )
        if start_next is not None:
            _execute("start", now, start_next)
    return status


def _record_failure(receiver_id, failed_count, error, traceback, permanent, policy, now) -> str:
    _execute("failure", receiver_id, now, error, traceback)
    failures = failed_count + 1
    if permanent or failures > policy.resend_limit:
        status, next_at = "error", None
    else:
        status, next_at = "failed", policy.next_attempt(failures, now)
    _execute("failed", status, next_at, receiver_id)
    return status


# --- reading --------------------------------------------------------------------------------

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
)


def _summary(row: dict, now: dt.datetime) -> dict:
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
) -> list[dict]:
    """Receivers, newest first. `limit` 0 means all."""
    now = utcnow()
    query = Receiver.select(*LIST_FIELDS).join(Message).where(Message.state == "stored")
    if statuses:
        live = _claimed() & (Receiver.lease_until >= now)
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
    return [_summary(row, now) for row in query.dicts()]


def get_receiver(receiver_id: int) -> dict:
    row = (
        Receiver.select(
            *LIST_FIELDS,
            Content.body_text,
            Content.body_html,
            Receiver.sent_to,
            Receiver.message_id_header,
            Message.template,
            Message.context,
            Message.metadata,
            Message.created_by,
            Message.sender,
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
    detail = _summary(row, utcnow())
    detail.update(
        claimed_by=row["claimed_by"],
        lease_until=from_db(row["lease_until"]),
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
    if dry_run:
        with database.atomic():
            return _purge_counts(cutoff)
    receivers = 0
    while cutoff is not None:
        chunk = (
            Receiver.select(Receiver.id)
            .where(Receiver.created_at < cutoff)
            .order_by(Receiver.created_at, Receiver.id)
            .limit(PURGE_CHUNK)
        )
        with writing():
            Failure.delete().where(Failure.receiver.in_(chunk)).execute()
            Content.delete().where(Content.receiver.in_(chunk)).execute()
            deleted = Receiver.delete().where(Receiver.id.in_(chunk)).execute()
        receivers += deleted
        if not deleted:
            break
    messages = 0
    while True:
        with writing():
            deleted = (
                Message.delete().where(Message.id.in_(_orphans().limit(PURGE_CHUNK))).execute()
            )
        messages += deleted
        if not deleted:
            break
    return receivers, messages


def _purge_counts(cutoff) -> tuple[int, int]:
    # Messages that would be left without receivers: orphans now, plus those whose every
    # receiver is old.
    messages = _orphans().count()
    receivers = 0
    if cutoff is not None:
        old = Receiver.select(Receiver.id).where(Receiver.created_at < cutoff)
        receivers = old.count()
        kept = Receiver.select(Receiver.message).where(Receiver.created_at >= cutoff)
        messages += (
            Message.select(Message.id)
            .where(Message.id.in_(old.select(Receiver.message)))
            .where(Message.id.not_in(kept))
            .count()
        )
    return receivers, messages
