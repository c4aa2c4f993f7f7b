"""Outcomes: an attempt starting, a success, a failure with its traceback. The hot path of
delivery: one short transaction per receiver, in plain SQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from devmsg.models import DELIVERABLE, database
from devmsg.store.base import announce, db_param, utcnow, writing
from devmsg.store.policy import Policy

# The per-receiver writes are the hot path of delivery: plain, portable SQL with the
# driver's placeholder, instead of building a peewee query for every receiver (which cost
# more than the SMTP exchange). Everything else goes through peewee's query builder.
_DELIVERABLE = f"status IN ({', '.join(repr(status) for status in DELIVERABLE)})"
_SQL = {
    "start": "UPDATE receiver SET attempt_started_at = ? WHERE id = ?",
    # send and resend-failed re-check the status in the commit that starts an attempt: an
    # operator may have held or cancelled a receiver the run had claimed but not started.
    "start_due": f"UPDATE receiver SET attempt_started_at = ? WHERE id = ? AND {_DELIVERABLE}",
    "skip": (
        "UPDATE receiver SET claimed_by = NULL, lease_until = NULL, attempt_started_at = NULL"
        " WHERE id = ?"
    ),
    "sent": (
        "UPDATE receiver SET status = 'sent', sent_count = sent_count + 1, sent_at = ?,"
        " sent_to = ?, next_attempt_at = NULL, claimed_by = NULL, lease_until = NULL,"
        " attempt_started_at = NULL WHERE id = ?"
    ),
    "failed": (
        "UPDATE receiver SET status = ?, failed_count = failed_count + 1, next_attempt_at = ?,"
        " claimed_by = NULL, lease_until = NULL, attempt_started_at = NULL WHERE id = ?"
    ),
    # A failure that says nothing about the receiver (the relay's): it does not count.
    "relay": (
        "UPDATE receiver SET status = 'failed', relay_failures = relay_failures + 1,"
        " next_attempt_at = ?, claimed_by = NULL, lease_until = NULL, attempt_started_at = NULL"
        " WHERE id = ?"
    ),
    "failure": (
        "INSERT INTO failure (receiver_id, at, error, traceback, counts) VALUES (?, ?, ?, ?, ?)"
    ),
}
_SQL["failed_due"] = _SQL["failed"] + f" AND {_DELIVERABLE}"
_SQL["relay_due"] = _SQL["relay"] + f" AND {_DELIVERABLE}"


VANISHED = "vanished"  # an outcome for a receiver deleted, held or cancelled meanwhile


def _execute(name: str, *params: Any) -> int:
    """Run one of the statements above; how many rows it changed."""
    db = database.obj
    sql = _SQL[name] if db.param == "?" else _SQL[name].replace("?", db.param)
    return db.execute_sql(sql, [db_param(db, p) for p in params]).rowcount


def start_attempt(receiver_id: int | None, started: bool = True, recheck: bool = False) -> bool:
    """Mark that the SMTP exchange for this receiver is about to start (or, with
    `started=False`, that it will not after all). With `recheck`, only if it is still
    deliverable; returns whether it was marked."""
    with writing():
        if not started:
            _execute("start", None, receiver_id)
            return False
        return _start(receiver_id, utcnow(), recheck)


def _start(receiver_id: int | None, now: dt.datetime, recheck: bool) -> bool:
    if receiver_id is None:
        return False
    return bool(_execute("start_due" if recheck else "start", now, receiver_id))


def skip(receiver_id: int, start_next: int | None, recheck: bool) -> bool:
    """A claimed receiver that is no longer deliverable (held or cancelled meanwhile): give
    up its claim, and start the next one in the same commit. Whether the next started."""
    with writing():
        _execute("skip", receiver_id)
        return _start(start_next, utcnow(), recheck)


def record_success(
    receiver_id: int, sent_to: str, start_next: int | None = None, recheck: bool = False
) -> tuple[str, bool]:
    """Commit one success (and mark the next receiver's attempt as started, in the same
    transaction: one commit a receiver). (status, whether the next started)."""
    now = utcnow()
    with writing():
        _execute("sent", now, sent_to, receiver_id)
        return "sent", _start(start_next, now, recheck)


def record_failure(
    receiver_id: int,
    failed_count: int,
    error: str,
    traceback: str,
    permanent: bool,
    policy: Policy,
    start_next: int | None = None,
    backoff: bool = True,
    recheck: bool = False,
    counts: bool = True,
    relay_failures: int = 0,
) -> tuple[str, bool]:
    """Append the failure and count it: `error` at once when permanent, or when
    failed_count > resend_limit; else `failed` until the backoff has passed (or due at
    once, without `backoff`). A failure that does not `count` (the relay's) leaves the
    receiver `failed`, due after its own backoff. (status, whether the next started)."""
    now = utcnow()
    with writing():
        status = record_failure_in(
            receiver_id, failed_count, error, traceback, permanent, policy, now, backoff,
            recheck, counts, relay_failures,
        )  # fmt: skip
        if status == "failed":
            announce()  # due again later: every worker's timer counts it
        return status, _start(start_next, now, recheck)


def record_failure_in(
    receiver_id: int,
    failed_count: int,
    error: str,
    traceback: str,
    permanent: bool,
    policy: Policy,
    now: dt.datetime,
    backoff: bool = True,
    recheck: bool = False,
    counts: bool = True,
    relay_failures: int = 0,
) -> str:
    """The failure entry and the new status. Without `backoff` (an interrupted attempt,
    which says nothing about the server) the receiver is due again at once. With
    `recheck`, a receiver an operator held or cancelled meanwhile is left as it is."""
    next_at: dt.datetime | None
    if not counts:
        next_at = policy.next_attempt(relay_failures + 1, now) if backoff else now
        if not _execute("relay_due" if recheck else "relay", next_at, receiver_id):
            return VANISHED
        _execute("failure", receiver_id, now, error, traceback, 0)
        return "failed"
    failures = failed_count + 1
    if permanent or failures > policy.resend_limit:
        status, next_at = "error", None
    else:
        status, next_at = "failed", policy.next_attempt(failures, now) if backoff else now
    if not _execute("failed_due" if recheck else "failed", status, next_at, receiver_id):
        return VANISHED  # deleted (a purge), held or cancelled under the sender: no record
    _execute("failure", receiver_id, now, error, traceback, 1)
    return status
