"""The `worker` table: each running `devmsg worker` refreshes its row with its lease
heartbeat. A row not refreshed for longer than a lease is a worker that went away (killed,
or its host lost); it is shown as gone, and dropped after a day. Times on the lease clock,
since the hosts' clocks may disagree."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterable
from typing import cast

from devmsg.models import Worker
from devmsg.store.base import from_db, lease_now, to_db, writing

FORGET_AFTER = dt.timedelta(days=1)


def register_worker(name: str, type: str | None) -> None:
    now = to_db(lease_now())
    with writing():
        Worker.delete().where(Worker.last_seen_at < now - FORGET_AFTER).execute()
        Worker.insert(
            name=name, host=socket.gethostname(), pid=os.getpid(), type=type,
            started_at=now, last_seen_at=now, sent=0, failed=0,
        ).execute()  # fmt: skip


def worker_seen(name: str, sent: int, failed: int) -> None:
    """The heartbeat: this worker is alive, with what it has done so far."""
    with writing():
        Worker.update(last_seen_at=to_db(lease_now()), sent=sent, failed=failed).where(
            Worker.name == name
        ).execute()


def forget_worker(name: str) -> None:
    """A worker that stopped politely: it is not running, nor gone."""
    with writing():
        Worker.delete().where(Worker.name == name).execute()


def list_workers(lease: dt.timedelta) -> list[dict]:
    """Every recorded worker, newest first, with `live` and the age of its heartbeat."""
    now = lease_now()
    rows = (
        Worker.select()
        .where(Worker.last_seen_at >= to_db(now - FORGET_AFTER))
        .order_by(Worker.started_at.desc(), Worker.id.desc())
        .dicts()
    )
    workers = []
    for row in cast(Iterable[dict], rows):
        seen = cast(dt.datetime, from_db(row["last_seen_at"]))  # never null
        age = max((now - seen).total_seconds(), 0.0)
        workers.append({
            "name": row["name"], "host": row["host"], "pid": row["pid"], "type": row["type"],
            "started_at": from_db(row["started_at"]), "last_seen_at": seen,
            "last_seen_age_seconds": round(age, 3), "sent": row["sent"],
            "failed": row["failed"], "live": age <= lease.total_seconds(),
        })  # fmt: skip
    return workers
