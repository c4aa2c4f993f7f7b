"""Peewee models: the shape of the store, no business logic.

Times are naive UTC datetimes in the database (portable across SQLite and PostgreSQL);
`devmsg.store` turns them into aware datetimes on the way out. The schema itself is
created and changed only by `devmsg/migrations/`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

from peewee import (
    AutoField,
    BlobField,
    CharField,
    DatabaseProxy,
    DateTimeField,
    DoubleField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

database = DatabaseProxy()

STATUSES = (
    "not_sent", "failed", "error", "sent", "held", "cancelled", "expired", "suppressed",
    "bounced",
)  # fmt: skip
DELIVERABLE = ("not_sent", "failed")  # what send and resend-failed may deliver
UNSENT = (*DELIVERABLE, "held")  # not yet sent, and may still be
SENDING = "sending"  # shown, never stored: a receiver under a live claim


def _json_default(value: object) -> str:
    """Context given through the API may hold dates, times and decimals: store them as text
    (ISO 8601, or the number's digits), which the template filters read back."""
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(f"cannot store a {type(value).__name__} in JSON")


class JSONField(TextField):
    def db_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=_json_default)

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class Message(BaseModel):
    id = AutoField()
    created_at = DateTimeField(index=True)
    type = CharField(index=True)
    template = CharField(null=True)
    context = JSONField()
    metadata = JSONField()
    created_by = CharField()
    sender = CharField()
    state = CharField(default="stored", index=True)  # "storing" while send streams receivers in
    lease_until = DateTimeField(null=True)  # while storing: removed by recovery after this
    envelope_from = CharField(null=True)  # MAIL FROM asked for (sendmail -f); else the config's

    class Meta:
        table_name = "message"


class Receiver(BaseModel):
    id = AutoField()
    message = ForeignKeyField(Message, backref="receivers", on_delete="CASCADE", index=True)
    address = CharField()
    name = CharField(default="")
    language = CharField()
    subject = TextField()
    message_id_header = CharField(index=True)  # random; indexed to match bounces (0012)
    status = CharField(default="not_sent", index=True)
    sent_count = IntegerField(default=0)
    failed_count = IntegerField(default=0)
    relay_failures = IntegerField(default=0)  # failures that did not count (migration 0011)
    created_at = DateTimeField(index=True)
    sent_at = DateTimeField(null=True, index=True)
    sent_to = CharField(null=True)
    envelope_to = CharField(null=True)  # RCPT TO: the address with an IDN domain as punycode
    # A claim: who is delivering this receiver, until when, and whether an attempt started.
    claimed_by = CharField(null=True, index=True)
    lease_until = DateTimeField(null=True)
    attempt_started_at = DateTimeField(null=True)
    next_attempt_at = DateTimeField(null=True)  # backoff: not retried before this
    status_reason = TextField(null=True)  # who held, released or cancelled it, when, why
    expires_at = DateTimeField(null=True)  # send --expires: never sent after this
    age_from = DateTimeField(null=True)  # ages toward max_age from here (else created_at)
    held_at = DateTimeField(null=True)  # while held: since when (a hold does not age it)

    class Meta:
        table_name = "receiver"


class Content(BaseModel):
    """The exact bytes every (re)send delivers, compressed, and so what was rendered for
    one receiver (see devmsg.content): written once, never changed, so kept apart from the
    receiver's small, busy row."""

    receiver = ForeignKeyField(Receiver, primary_key=True, on_delete="CASCADE")
    email = BlobField(null=True)  # zlib of the email's bytes
    bodies = BlobField(null=True)  # zlib of [text, html], only when `email` cannot give them
    parts = TextField(null=True)  # JSON [[offset, digest], ...]: shared blobs cut out of `email`

    class Meta:
        table_name = "content"


class Blob(BaseModel):
    """Bytes that receivers share (a prebuilt message, an attachment), stored once."""

    digest = CharField(primary_key=True)  # sha256, hex
    data = BlobField()  # zlib of the bytes
    size = IntegerField()

    class Meta:
        table_name = "blob"


class MessageBlob(BaseModel):
    """Which message uses which blob: a blob no message uses is purged."""

    id = AutoField()
    message = ForeignKeyField(Message, on_delete="CASCADE", index=True)
    digest = CharField(index=True)

    class Meta:
        table_name = "message_blob"


class Failure(BaseModel):
    id = AutoField()
    receiver = ForeignKeyField(Receiver, backref="failures", on_delete="CASCADE", index=True)
    at = DateTimeField()
    error = TextField()
    traceback = TextField()
    counts = IntegerField(default=1)  # 0: a relay failure, not counted toward resend_limit

    class Meta:
        table_name = "failure"


class Pause(BaseModel):
    """While this one row exists (and `until` has not passed), nothing is delivered."""

    id = IntegerField(primary_key=True)  # always 1
    paused_by = TextField()  # user@host
    paused_at = DateTimeField()
    until = DateTimeField(null=True)  # None: until `devmsg resume`
    reason = TextField(null=True)

    class Meta:
        table_name = "pause"


class RateLimit(BaseModel):
    """One row per configured limit: how many permits count now (the row a grant locks)."""

    id = AutoField()
    name = CharField(unique=True)
    active = IntegerField(default=0)

    class Meta:
        table_name = "rate_limit"


class RatePermit(BaseModel):
    """An attempt at the server under a limit, counting until `until` (database clock)."""

    id = AutoField()
    limit_name = CharField()
    taken = DoubleField()
    until = DoubleField()
    span = DoubleField()
    holder = CharField(null=True)  # "<owner>#<n>" while its exchange is in flight

    class Meta:
        table_name = "rate_permit"
        # (holder): partial, WHERE holder IS NOT NULL (see migration 0009)
        indexes = ((("limit_name", "until"), False), (("holder",), False))


class Suppression(BaseModel):
    """An address not to be tried again: a mailbox that does not exist, or added by hand."""

    id = AutoField()
    address_key = CharField(unique=True)
    address = CharField()
    reason = TextField()
    smtp_code = IntegerField(null=True)
    smtp_reply = TextField(null=True)
    receiver_id = IntegerField(null=True)
    created_at = DateTimeField()
    created_by = CharField()

    class Meta:
        table_name = "suppression"


class Worker(BaseModel):
    """A running `devmsg worker`, refreshed with its lease heartbeat (see migration 0010)."""

    id = AutoField()
    name = CharField(unique=True)
    host = CharField()
    pid = IntegerField()
    type = CharField(null=True)
    started_at = DateTimeField()
    last_seen_at = DateTimeField()
    sent = IntegerField(default=0)
    failed = IntegerField(default=0)

    class Meta:
        table_name = "worker"


class Secret(BaseModel):
    """A key made on first use and kept in the store: `verp` signs return paths."""

    name = CharField(primary_key=True)
    value = TextField()

    class Meta:
        table_name = "secret"


class Bounce(BaseModel):
    """A delivery report read back that matched a receiver (see migration 0012)."""

    id = AutoField()
    fingerprint = CharField(unique=True)
    receiver = ForeignKeyField(Receiver, backref="bounces", on_delete="CASCADE", index=True)
    kind = CharField()  # bounced, delayed, complaint
    status = CharField(null=True)
    diagnostic = TextField(null=True)
    reported_by = TextField(null=True)
    reported_at = DateTimeField(null=True)
    at = DateTimeField(index=True)

    class Meta:
        table_name = "bounce"


MODELS = (
    Message, Receiver, Blob, Content, MessageBlob, Failure, Pause, RateLimit, RatePermit,
    Suppression, Worker, Secret, Bounce,
)  # fmt: skip
