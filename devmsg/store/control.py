"""An operator's controls over receivers: hold, release, cancel. One transaction each, with
the chosen rows locked (SQLite: the write lock; PostgreSQL: FOR UPDATE), so they hold with
several processes and hosts on one store. A receiver whose SMTP exchange a running devmsg
has started is never changed under it ("in flight"); one it has only claimed can be, and
the sender re-checks the status when it starts the attempt."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from peewee import chunked, fn

from devmsg.models import Message, Pause, Receiver
from devmsg.store.base import (
    INSERT_CHUNK,
    announce,
    from_db,
    lease_now,
    locked,
    to_db,
    utcnow,
    writing,
)

# action -> (the statuses it changes, the status it sets; None: decided per receiver)
ACTIONS = {
    "hold": (("not_sent", "failed"), "held"),
    "release": (("held",), None),  # back to not_sent if never attempted, else failed
    "cancel": (("not_sent", "failed", "held"), "cancelled"),
}


@dataclass
class Selection:
    """Which receivers: every given selector must match (AND); `all` alone selects all."""

    ids: list[int] = field(default_factory=list)
    message: int | None = None
    type: str | None = None
    to: str | None = None
    statuses: list[str] = field(default_factory=list)
    all: bool = False

    def empty(self) -> bool:
        return not (self.ids or self.message is not None or self.type is not None
                    or self.to is not None or self.statuses or self.all)  # fmt: skip

    def where(self) -> Any:
        condition = Message.state == "stored"
        if self.ids:
            condition &= Receiver.id.in_(self.ids)
        if self.message is not None:
            condition &= Receiver.message == self.message
        if self.type is not None:
            condition &= Message.type == self.type
        if self.to is not None:
            condition &= fn.LOWER(Receiver.address) == self.to.lower()
        if self.statuses:
            condition &= Receiver.status.in_(self.statuses)
        return condition


@dataclass
class ControlReport:
    changed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"changed": self.changed, "skipped": self.skipped, "in_flight": self.in_flight}


def change(action: str, selection: Selection, reason: str, dry_run: bool) -> ControlReport:
    """Apply `action` to the selected receivers; `reason` is stored in status_reason."""
    allowed, new_status = ACTIONS[action]
    report = ControlReport()
    now = utcnow()
    with writing():
        live_after = to_db(lease_now())
        rows = locked(
            Receiver.select(
                Receiver.id, Receiver.status, Receiver.claimed_by, Receiver.lease_until,
                Receiver.attempt_started_at, Receiver.sent_count, Receiver.failed_count,
                Receiver.created_at, Receiver.age_from, Receiver.held_at,
            )
            .join(Message)
            .where(selection.where())
            .order_by(Receiver.id)
        ).tuples()  # fmt: skip
        never: list[int] = []
        attempted: list[int] = []
        ages: dict[int, dt.datetime] = {}
        for rid, status, owner, lease, started, sent, failed, *age in rows.iterator():
            if status not in allowed:
                report.skipped.append(rid)
            elif started is not None and owner and lease is not None and lease >= live_after:
                report.in_flight.append(rid)  # a running devmsg is talking SMTP for it
            else:
                report.changed.append(rid)
                (never if sent == 0 and failed == 0 else attempted).append(rid)
                ages[rid] = _aged_from(age[0], age[1], age[2], now)
        if dry_run:
            return report
        if action == "hold":
            _set(report.changed, status=new_status, status_reason=reason, held_at=now)
        elif action == "cancel":
            _set(report.changed, status=new_status, status_reason=reason, held_at=None)
        else:  # release: due at once, and the time it was held does not count toward max_age
            for rid in report.changed:
                Receiver.update(
                    status="not_sent" if rid in never else "failed", status_reason=reason,
                    next_attempt_at=now, held_at=None, age_from=ages[rid],
                ).where(Receiver.id == rid).execute()  # fmt: skip
            if report.changed:
                announce()
    return report


def _aged_from(
    created_at: dt.datetime,
    age_from: dt.datetime | None,
    held_at: dt.datetime | None,
    now: dt.datetime,
) -> dt.datetime:
    """Where a released receiver ages from: later by the time it was held."""
    start = age_from or created_at
    return start if held_at is None else start + (now - held_at)


def _set(ids: list[int], **values: Any) -> None:
    for batch in chunked(ids, INSERT_CHUNK):
        Receiver.update(**values).where(Receiver.id.in_(batch)).execute()


def reason_text(action: str, user: str, when: str, reason: str | None) -> str:
    """`cancelled by ola at 2026-12-01 10:02 CET: wrong deadline`."""
    verb = {"hold": "held", "release": "released", "cancel": "cancelled"}[action]
    text = f"{verb} by {user} at {when}"
    return f"{text}: {reason}" if reason else text


# --- pause ---------------------------------------------------------------------------------
# Times on the lease clock: the pause is shared by hosts whose clocks may disagree.


def pause(by: str, for_: dt.timedelta | None, reason: str | None) -> dict:
    now = lease_now()
    with writing():
        Pause.delete().execute()
        Pause.insert(
            id=1, paused_by=by, paused_at=to_db(now), reason=reason,
            until=None if for_ is None else to_db(now + for_),
        ).execute()  # fmt: skip
        announce()  # a running worker stops taking receivers
    shown = paused()
    assert shown is not None  # just made, in this transaction
    return shown


def resume() -> dict | None:
    """End the pause; what it was, or None if sending was not paused."""
    was = paused()
    with writing():
        Pause.delete().execute()
        announce()
    return was


def paused() -> dict | None:
    """The pause in force, or None (a pause whose `until` has passed has ended)."""
    row = Pause.select().dicts().first()
    if row is None:
        return None
    if row["until"] is not None and row["until"] <= to_db(lease_now()):
        return None
    return {
        "paused_by": row["paused_by"],
        "paused_at": from_db(row["paused_at"]),
        "until": from_db(row["until"]),
        "reason": row["reason"],
    }
