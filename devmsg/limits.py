"""Rate limits: `[rate_limits]` in the config, and the limiter a delivery run asks before
each attempt. The permits themselves live in the store (`devmsg.store.ratelimit`), shared by
every process and host that uses it.

A run asks for permits for the receivers it is about to try. Those every limit lets through
now are tried; the others wait (paced, while the next permit is less than PACE_LIMIT away)
or are deferred: left in their status, due when the limit will let them through.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from dataclasses import dataclass, field

from devmsg import store
from devmsg.rates import Limit

PACE_LIMIT = 60.0  # seconds: a longer wait for a permit defers the receiver instead


@dataclass
class _Closed:
    """A limit this run found exhausted for longer than PACE_LIMIT: the times its next
    permits free, handed out in turn to the receivers it defers."""

    slots: list[float]
    count: int
    span: float
    given: int = 0

    def next_slot(self) -> float:
        i, n = self.given, len(self.slots)
        self.given += 1
        if i < n:
            return self.slots[i]
        if n >= self.count:  # every permit counted: they free again one window later
            return self.slots[i % n] + self.span * (i // n)
        return self.slots[-1] if self.slots else time.time()


@dataclass
class Admission:
    go: list[int] = field(default_factory=list)  # indexes of receivers to try now
    wait: list[int] = field(default_factory=list)  # to ask again after `pause` seconds
    defer: dict[int, dt.datetime] = field(default_factory=dict)  # index -> due then
    pause: float = 0.0
    permits: bool = False  # permits were taken: `done` releases them after the exchanges


class Limiter:
    """One run's view of the configured limits (thread-safe: each call is one transaction,
    and the per-run state is only ever added to)."""

    def __init__(self, limits: tuple[Limit, ...], owner: str, hold: float, defer: bool = True):
        self.limits = limits
        # A longer wait than this defers the receiver; a worker (no `defer`) always waits.
        self.pace_limit = PACE_LIMIT if defer else float("inf")
        self.owner = owner
        self.hold = hold  # an in-flight permit of a dead run counts this long past its window
        self._by_domain: dict[str, tuple[str, ...]] = {}
        self._spec = {limit.name: (limit.count, limit.window) for limit in limits}
        self._closed: dict[str, _Closed] = {}
        self._tokens = itertools.count(1)  # next() is atomic: each worker its own holder
        self._skew = 0.0  # the database clock minus this host's, seen at the last grant

    def names_for(self, address: str) -> tuple[str, ...]:
        domain = address.rpartition("@")[2].lower()
        names = self._by_domain.get(domain)
        if names is None:
            names = tuple(lim.name for lim in self.limits if lim.covers(domain))
            self._by_domain[domain] = names
        return names

    def holder(self) -> str:
        """A name for one worker's permits in flight, unique in the run."""
        return f"{self.owner}#{next(self._tokens)}"

    def admit(self, addresses: list[str], holder: str) -> Admission:
        """Take permits for as many of these receivers (their RCPT addresses) as every
        limit lets through now, in order, under `holder` (released by `done`)."""
        result = Admission()
        requests, asked = [], []
        now = time.time() + self._skew
        for index, address in enumerate(addresses):
            names = self.names_for(address)
            closed = [self._closed[n] for n in names if n in self._closed]
            if closed and max(c.slots[0] if c.slots else 0 for c in closed) - now > self.pace_limit:
                result.defer[index] = _utc(max(c.next_slot() for c in closed) - self._skew)
                continue
            if not names:  # under no limit
                result.go.append(index)
                continue
            requests.append(names)
            asked.append(index)
        if not requests:
            return result
        grant = store.take_permits(requests, self._spec, holder, self.hold)
        self._skew = grant.now - time.time()
        result.permits = bool(grant.granted)
        pause = None
        for position, index in enumerate(asked):
            if position in grant.granted:
                result.go.append(index)
                continue
            names = requests[position]
            frees = [grant.frees[n] for n in names if n in grant.frees]
            first = max((f[0] for f in frees if f), default=grant.now)
            if first - grant.now <= self.pace_limit:
                result.wait.append(index)
                pause = first - grant.now if pause is None else min(pause, first - grant.now)
                continue
            for name in names:
                if name in grant.frees and name not in self._closed:
                    count, span = self._spec[name]
                    slots = store.permit_slots(name, min(count, 10_000))
                    self._closed[name] = _Closed(slots, count, span)
            when = max(self._closed[n].next_slot() for n in names if n in self._closed)
            result.defer[index] = _utc(when - self._skew)  # on this host's clock, as backoff
        result.go.sort()
        # Ask again when the first permit frees (an exchange in flight may still hold it:
        # then again a little later).
        result.pause = min(max(pause or 0.0, 0.005), 1.0)
        return result

    def done(self, holder: str) -> None:
        """The exchanges of these permits are over: each counts for a window from now."""
        store.release_permits(holder)

    def renew(self) -> None:
        store.renew_permits(self.owner, self.hold)


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def usage(limits: tuple[Limit, ...]) -> list[dict]:
    """Each limit now: its count and window, the permits used in the current window, and
    when the next permit frees (None: one is free now). Read only."""
    now, used = store.permit_usage([limit.name for limit in limits])
    skew = now - time.time()
    rows = []
    for limit in limits:
        count, first = used[limit.name]
        rows.append({
            "scope": limit.scope,
            "limit": limit.text,
            "count": limit.count,
            "window_seconds": limit.window,
            "used": count,
            "available": max(limit.count - count, 0),
            "next_permit_at": None if count < limit.count or first is None
                              else _utc(first - skew),
        })  # fmt: skip
    return rows
