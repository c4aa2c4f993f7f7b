"""Storing a message: begin, stream receivers in (claimed by their sender, or free), finish
or discard."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

from peewee import Database, SqliteDatabase, fn

from devmsg.content import cut, pack
from devmsg.models import Content, JSONField, Message, MessageBlob, Receiver, database
from devmsg.store.base import announce, db_param, insert_sql, to_db, utcnow, writing
from devmsg.store.blobs import forget_unused, keep


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
    "lease_until", "next_attempt_at", "expires_at", "age_from", "status_reason",
)  # fmt: skip
_CONTENT_COLUMNS = ("receiver_id", "email", "bodies", "parts")


def store_message(
    message: dict,
    rows: list[dict],
    owner: str | None,
    lease_until: dt.datetime,
    schedule: tuple | None = None,
) -> tuple[int, list[int]]:
    """A whole small message (one chunk of receivers) in one transaction, deliverable at
    once: the path of an application sending to one or a few receivers per call. Returns
    the message's id and its receivers' ids in order."""
    db = database.obj
    columns = ("created_at", "state", *_MESSAGE_COLUMNS)
    values = [db_param(db, utcnow()), "stored"]
    values += [JSONField().db_value(message[c]) if c in _JSON else message.get(c)
               for c in _MESSAGE_COLUMNS]  # fmt: skip
    with writing(), _pipelined(db):
        sql = insert_sql(db, "message", columns) + " RETURNING id"
        (message_id,) = db.execute_sql(sql, values).fetchone()
        ids = _insert(db, message_id, rows, owner, lease_until, after=0, schedule=schedule)
        if owner is None:
            announce()  # queued: a worker takes it at commit
    return message_id, ids


@contextlib.contextmanager
def _pipelined(db: Database) -> Iterator[None]:
    """On PostgreSQL, psycopg's pipeline mode: statements whose results are not read at
    once (the content, the blobs, NOTIFY) go with the next that is: storing a small message
    takes six round trips to the server, not ten."""
    if isinstance(db, SqliteDatabase):
        yield
        return
    with db.connection().pipeline():
        yield


_MESSAGE_COLUMNS = (
    "type", "template", "context", "metadata", "created_by", "sender", "envelope_from",
)  # fmt: skip
_JSON = ("context", "metadata")


def add_receivers(
    message_id: int,
    rows: list[dict],
    owner: str | None,
    lease_until: dt.datetime,
    schedule: tuple | None = None,
) -> None:
    """Insert one chunk of a message being stored (see `begin_message`)."""
    db = database.obj
    with writing():
        last = (
            Receiver.select(fn.MAX(Receiver.id)).where(Receiver.message == message_id).scalar() or 0
        )
        _insert(db, message_id, rows, owner, lease_until, after=last, schedule=schedule)
        Message.update(lease_until=to_db(lease_until)).where(Message.id == message_id).execute()


def _insert(
    db: Database, message_id: int, rows: list[dict], owner: str | None,
    lease_until: dt.datetime, after: int, schedule: tuple | None = None,
) -> list[int]:  # fmt: skip
    """Insert receivers, claimed by `owner` (a send) or free (a queue), and their content,
    (a row whose "suppressed" gives a reason is stored `suppressed`, never claimed)
    each with one prepared statement (executemany): a peewee insert_many spent more time
    building SQL than SQLite spent storing. Returns the new receivers' ids, in order."""
    now, lease = db_param(db, utcnow()), db_param(db, to_db(lease_until))
    # schedule: (next_attempt_at, expires_at, age_from) of a send --at / --expires
    when = [db_param(db, None if t is None else to_db(t)) for t in schedule or (None, None, None)]
    sql = insert_sql(db, "receiver", _RECEIVER_COLUMNS)
    cursor = db.cursor()
    returning = not isinstance(db, SqliteDatabase)  # psycopg gives each row's id back
    cursor.executemany(
        sql + " RETURNING id" if returning else sql,
        [(message_id, r["address"], r["envelope_to"], r["name"], r["language"], r["subject"],
          r["message_id_header"], "suppressed" if r.get("suppressed") else "not_sent", 0, 0,
          now, *((None, None) if r.get("suppressed") or not owner else (owner, lease)),
          *when, r.get("suppressed"))
         for r in rows],
        **({"returning": True} if returning else {}),
    )  # fmt: skip
    ids: list[int] = []
    if returning:
        for result in cursor.results():  # one per row, in order
            ids += [rid for (rid,) in result.fetchall()]
    else:
        # This message's new rows, in the order inserted: ids grow within one connection.
        p = db.param
        ids = [rid for (rid,) in db.execute_sql(
            f"SELECT id FROM receiver WHERE message_id = {p} AND id > {p} ORDER BY id",
            (message_id, after)).fetchall()]  # fmt: skip
    contents, shared = [], {}
    for rid, r in zip(ids, rows, strict=True):
        email, parts = r["mime"], None
        if not isinstance(email, bytes):  # pieces: what receivers share is cut out
            email, parts, pieces = cut(email)
            shared.update(pieces)
        # A prebuilt message has no bodies of its own: they are read out of it.
        packed, extra = pack(r["body_text"] or "", r["body_html"] or "", email)
        contents.append((rid, packed, extra, parts))
    keep(db, message_id, shared)
    db.cursor().executemany(insert_sql(db, "content", _CONTENT_COLUMNS), contents)
    return ids


def finish_message(message_id: int) -> list[int]:
    """Make the message deliverable; returns its receivers' ids in order."""
    with writing():
        Message.update(state="stored", lease_until=None).where(Message.id == message_id).execute()
        announce()
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
        MessageBlob.delete().where(MessageBlob.message == message_id).execute()
        forget_unused(database)
        Message.delete().where(Message.id == message_id).execute()
