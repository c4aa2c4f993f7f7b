"""What a message's receivers share, stored once: blobs by SHA-256, which message uses
which, and the receivers' emails assembled back from them (see devmsg.content)."""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict

from peewee import Database, DatabaseProxy, SqliteDatabase

from devmsg.content import Shared
from devmsg.models import Blob, MessageBlob
from devmsg.store.base import insert_sql


def keep(db: Database, message_id: int, shared: dict[str, Shared]) -> None:
    """Store the blobs not yet stored, and note that `message_id` uses them. In the
    caller's transaction."""
    if not shared:
        return
    digests = sorted(shared)
    p = db.param
    # The use first, then the blobs: a purge that drops unused blobs locks message_blob
    # (see forget_unused), so a blob this message uses cannot go between the two.
    sql = f"SELECT digest FROM message_blob WHERE message_id = {p}"
    used = {d for (d,) in db.execute_sql(sql, (message_id,)).fetchall()}
    db.cursor().executemany(
        insert_sql(db, "message_blob", ("message_id", "digest")),
        [(message_id, d) for d in digests if d not in used],
    )
    marks = ", ".join([p] * len(digests))
    have = {d for (d,) in db.execute_sql(
        f"SELECT digest FROM blob WHERE digest IN ({marks})", digests).fetchall()}  # fmt: skip
    new = [shared[d] for d in digests if d not in have]
    if new:
        # Another sender may store the same bytes at once: the first one's row stays.
        sql = insert_sql(db, "blob", ("digest", "data", "size")) + " ON CONFLICT DO NOTHING"
        db.cursor().executemany(sql, [(s.digest, s.packed(), len(s.data)) for s in new])


class _Cache:
    """The blobs a process read last, decompressed: a run delivering 300 receivers of one
    attachment reads and inflates it once. Bounded by total size."""

    LIMIT = 64 * 1024 * 1024

    def __init__(self) -> None:
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, digest: str) -> bytes | None:
        with self._lock:
            data = self._items.get(digest)
            if data is not None:
                self._items.move_to_end(digest)
            return data

    def put(self, digest: str, data: bytes) -> None:
        with self._lock:
            if digest in self._items or len(data) > self.LIMIT:
                return
            self._items[digest] = data
            self._size += len(data)
            while self._size > self.LIMIT:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)


_cache = _Cache()


def read(digest: str) -> bytes:
    """A blob's bytes (blobs never change: the digest names them)."""
    data = _cache.get(digest)
    if data is None:
        packed = Blob.select(Blob.data).where(Blob.digest == digest).scalar()
        if packed is None:
            raise LookupError(f"the store has lost shared part {digest[:12]}")
        data = zlib.decompress(bytes(packed))
        _cache.put(digest, data)
    return data


def forget_unused(db: Database | DatabaseProxy) -> int:
    """Drop the blobs that no message uses any more (after a purge). In the caller's
    transaction. On PostgreSQL it first waits for every sender adding a use (SQLite's
    writers take turns already)."""
    if not isinstance(getattr(db, "obj", db), SqliteDatabase):
        db.execute_sql("LOCK TABLE message_blob IN SHARE MODE")
    cursor = db.execute_sql(
        "DELETE FROM blob WHERE NOT EXISTS "
        "(SELECT 1 FROM message_blob WHERE message_blob.digest = blob.digest)"
    )
    return cursor.rowcount


def forget_message(message_id: int) -> None:
    MessageBlob.delete().where(MessageBlob.message == message_id).execute()
