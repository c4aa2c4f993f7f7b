"""Outcomes: an attempt starting, a success, a failure with its traceback. The hot path of
delivery: one short transaction per receiver, in plain SQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devmsg.models import database
from devmsg.store.base import _param, utcnow, writing

if TYPE_CHECKING:
    from devmsg.store.claims import Policy

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


VANISHED = "vanished"  # an outcome for a receiver that no longer exists


def _execute(name: str, *params) -> int:
    """Run one of the statements above; how many rows it changed."""
    db = database.obj
    sql = _SQL[name] if db.param == "?" else _SQL[name].replace("?", db.param)
    return db.execute_sql(sql, [_param(db, p) for p in params]).rowcount


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
    backoff: bool = True,
) -> str:
    """Append the failure and count it: `error` at once when permanent, or when
    failed_count > resend_limit; else `failed` until the backoff has passed (or due at
    once, without `backoff`)."""
    now = utcnow()
    with writing():
        status = _record_failure(
            receiver_id, failed_count, error, traceback, permanent, policy, now, backoff
        )
        if start_next is not None:
            _execute("start", now, start_next)
    return status


def _record_failure(
    receiver_id, failed_count, error, traceback, permanent, policy, now, backoff: bool = True
) -> str:
    """The failure entry and the new status. Without `backoff` (an interrupted attempt,
    which says nothing about the server) the receiver is due again at once."""
    failures = failed_count + 1
    if permanent or failures > policy.resend_limit:
        status, next_at = "error", None
    else:
        status, next_at = "failed", policy.next_attempt(failures, now) if backoff else now
    if not _execute("failed", status, next_at, receiver_id):
        return VANISHED  # deleted under the sender (a purge, by hand): nothing to record
    _execute("failure", receiver_id, now, error, traceback)
    return status
