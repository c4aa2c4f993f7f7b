"""Rate-limit permits, shared by every process and host on the store: a sliding window.

A permit is taken, under every limit that covers the receiver, just before its attempt at
the server. While the exchange is in flight the permit has a holder and counts whatever
the time (the heartbeat keeps it; a dead run's permits count `hold` seconds past their
window); once the run releases it, it counts for one window from that moment. The server
sees a message between the grant and the release, so in any window of a limit's length
it sees no more attempts than the limit's count, however late each exchange runs.

Times are seconds since the epoch on the database's clock (PostgreSQL's own, for hosts
whose clocks differ). Each limit has one row in `rate_limit`, locked by a grant: the
limiter's hot row, in its own short transaction, never in a claim's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from peewee import SqliteDatabase

from devmsg.models import database
from devmsg.store.base import insert_sql, writing

_SLOTS = 50  # free times looked up per blocked limit, for pacing


def db_time() -> float:
    db = database.obj
    if isinstance(db, SqliteDatabase):
        return time.time()
    (value,) = db.execute_sql("SELECT extract(epoch FROM clock_timestamp())").fetchone()
    return float(value)


@dataclass
class Grant:
    now: float
    granted: set[int] = field(default_factory=set)  # positions of the requests let through
    frees: dict[str, list[float]] = field(default_factory=dict)  # blocked limit -> free times


def _sql(text: str) -> str:
    db = database.obj
    return text if db.param == "?" else text.replace("?", db.param)


def _rows(sql: str, params: Sequence[Any]) -> list[tuple]:
    return list(database.obj.execute_sql(_sql(sql), list(params)).fetchall())


def _lock_limits(names: list[str]) -> dict[str, int]:
    """The limits' rows (created at first use), locked until the transaction ends."""
    marks = ", ".join("?" * len(names))
    lock = "" if isinstance(database.obj, SqliteDatabase) else " FOR UPDATE"
    select = f"SELECT name, active FROM rate_limit WHERE name IN ({marks}) ORDER BY name{lock}"
    active = dict(_rows(select, names))
    missing = [name for name in names if name not in active]
    if missing:
        insert = "INSERT INTO rate_limit (name, active) VALUES (?, 0) ON CONFLICT (name) DO NOTHING"
        for name in missing:
            database.obj.execute_sql(_sql(insert), [name])
        active = dict(_rows(select, names))
    return active


# When a permit stops counting: a finished exchange's at `until`; one still in flight a
# window after its grant at the soonest (its `until` is only the dead-run bound).
_FREES = "CASE WHEN holder IS NULL THEN until ELSE taken + span END"


def permit_slots(name: str, count: int) -> list[float]:
    """When the next `count` permits of a limit stop counting, earliest first."""
    rows = _rows(
        f"SELECT {_FREES} AS frees FROM rate_permit WHERE limit_name = ? ORDER BY frees LIMIT ?",
        [name, count],
    )
    return [float(frees) for (frees,) in rows]


def take_permits(
    requests: list[tuple[str, ...]],
    spec: dict[str, tuple[int, float]],
    holder: str,
    hold: float,
) -> Grant:
    """Grant, in order, each request (the limits one receiver falls under) whose every limit
    has room now, in one transaction. Permits that stopped counting are deleted on the way."""
    names = sorted({name for names in requests for name in names})
    db = database.obj
    with writing():
        active = _lock_limits(names)
        grant = Grant(now=db_time())
        for name in names:
            gone = db.execute_sql(
                _sql("DELETE FROM rate_permit WHERE limit_name = ? AND until <= ?"),
                [name, grant.now],
            ).rowcount
            active[name] = max(active[name] - max(gone, 0), 0)
        room = {name: spec[name][0] - active[name] for name in names}
        permits: list = []
        blocked: set = set()
        for position, wanted in enumerate(requests):
            if all(room[name] > 0 for name in wanted):
                grant.granted.add(position)
                for name in wanted:
                    room[name] -= 1
                    span = spec[name][1]
                    permits.append((name, grant.now, grant.now + span + hold, span, holder))
            else:
                blocked.update(name for name in wanted if room[name] <= 0)
        if permits:
            columns = ("limit_name", "taken", "until", "span", "holder")
            db.cursor().executemany(insert_sql(db, "rate_permit", columns), permits)
        for name in names:
            used = spec[name][0] - room[name]
            db.execute_sql(_sql("UPDATE rate_limit SET active = ? WHERE name = ?"), [used, name])
        for name in blocked:
            grant.frees[name] = permit_slots(name, _SLOTS)
    return grant


def release_permits(holder: str) -> None:
    """The exchanges under these permits are over: each counts one window from now."""
    with writing():
        database.obj.execute_sql(
            _sql("UPDATE rate_permit SET until = ? + span, holder = NULL WHERE holder = ?"),
            [db_time(), holder],
        )


def renew_permits(owner: str, hold: float) -> None:
    """A live run's permits in flight keep counting (the heartbeat)."""
    with writing():
        database.obj.execute_sql(
            _sql("UPDATE rate_permit SET until = ? + span WHERE holder >= ? AND holder < ?"),
            [db_time() + hold, f"{owner}#", f"{owner}$"],
        )


def permit_usage(names: list[str]) -> tuple[float, dict[str, tuple[int, float | None]]]:
    """(now, name -> (permits counting now, when the earliest of them frees))."""
    now = db_time()
    usage = {}
    for name in names:
        rows = _rows(
            f"SELECT count(*), min({_FREES}) FROM rate_permit WHERE limit_name = ? AND until > ?",
            [name, now],
        )
        used, first = rows[0]
        usage[name] = (int(used), None if first is None else float(first))
    return now, usage
