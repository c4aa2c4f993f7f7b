"""The operator's controls of the Python API: pause and resume, hold, release and cancel,
the rate limits and the suppression list. A part of `Outbox` (its base class)."""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import os
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import peewee

from devmsg import store
from devmsg.addresses import mailbox_key
from devmsg.arguments import check_ids, check_type
from devmsg.config import Config
from devmsg.db import store_error
from devmsg.errors import InputError, NotFoundError, UsageError
from devmsg.models import STATUSES

if TYPE_CHECKING:
    from devmsg.ingest import IngestReport
    from devmsg.mailboxes import Letter

F = TypeVar("F", bound=Callable[..., Any])


def store_errors(method: F) -> F:
    """Database trouble becomes one clear StoreError naming the store."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except peewee.DatabaseError as exc:
            raise store_error(self.config.store_name, self.config.busy_timeout, exc) from None

    return cast(F, wrapper)


@functools.cache
def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


class Operating:
    """Outbox's controls; `self.config` is the Outbox's Config."""

    config: Config

    @store_errors
    def pause(self, for_: dt.timedelta | None = None, reason: str | None = None) -> dict:
        """Pause all sending, for every process and host on this store (until `resume`, or
        for `for_`)."""
        check_type("for_", for_, dt.timedelta, optional=True)
        check_type("reason", reason, str, optional=True)
        return store.pause(f"{current_user()}@{socket.gethostname()}", for_, reason)

    @store_errors
    def resume(self) -> dict | None:
        return store.resume()

    @store_errors
    def paused(self) -> dict | None:
        return store.paused()

    def pause_text(self, pause: dict, verb: str = "is") -> str:
        """`sending is paused by ola@host since 2026-12-01 10:02 CET until ...: reason`."""

        when = self.config.minute
        text = f"sending {verb} paused by {pause['paused_by']} since {when(pause['paused_at'])}"
        if pause["until"] is not None:
            text += f" until {when(pause['until'])}"
        return text + (f": {pause['reason']}" if pause["reason"] else "")

    @store_errors
    def control(
        self,
        action: str,
        selection: store.Selection,
        reason: str | None = None,
        dry_run: bool = False,
    ) -> store.ControlReport:
        """hold, release or cancel the selected receivers (a `store.Selection`)."""
        if action not in store.control.ACTIONS:
            known = ", ".join(store.control.ACTIONS)
            raise InputError(f"action: unknown action {action!r} ({known})", param="action")
        check_type("selection", selection, store.Selection)
        check_ids("selection.ids", selection.ids)
        if selection.empty():
            raise UsageError(
                "selection is empty: give ids, message, type, to, statuses or all",
                cli="choose receivers: give IDs, --message, --type, --to, --status or --all",
            )
        for status in selection.statuses:
            if status not in STATUSES:
                known = ", ".join(STATUSES)
                raise InputError(f"statuses: unknown status {status!r} ({known})", param="statuses")
        if selection.ids:
            missing = sorted(set(selection.ids) - store.existing_ids(selection.ids))
            if missing:
                raise NotFoundError(f"no receiver with id {', '.join(map(str, missing))}")
        when = self.config.minute(dt.datetime.now(dt.UTC))
        text = store.reason_text(action, current_user(), when, reason)
        return store.change(action, selection, text, dry_run)

    # -- rate limits and the suppression list ----------------------------------------------

    @store_errors
    def limits(self) -> list[dict]:
        """Each configured rate limit: count, window, used now, when the next permit frees."""
        from devmsg.limits import usage

        return usage(self.config.rate_limits)

    @store_errors
    def suppressions(self) -> list[dict]:
        return store.list_suppressions()

    @store_errors
    def suppress(self, addresses: list[str], reason: str | None = None) -> tuple[int, int]:
        """Put addresses on the suppression list (all checked first). (added, already
        listed), each mailbox counted once however it is written."""
        from devmsg.addresses import check_address

        check_type("addresses", addresses, list)
        check_type("reason", reason, str, optional=True)
        checked, local = [], self.config.allow_local_domains
        for i, address in enumerate(addresses):
            check_type(f"addresses[{i}]", address, str)
            try:
                checked.append(check_address(address, f"addresses[{i}]", local).address)
            except InputError as exc:
                raise InputError(str(exc), param="addresses") from None
        if not checked:
            raise UsageError("addresses is empty", cli="give the addresses to suppress")
        unique: dict[str, str] = {}  # the first spelling of each mailbox
        for address in checked:
            unique.setdefault(mailbox_key(address), address)
        by = f"{current_user()}@{socket.gethostname()}"
        added = sum(store.add_suppression(a, reason or f"added by {by}", by)
                    for a in unique.values())  # fmt: skip
        return added, len(unique) - added

    @store_errors
    def unsuppress(
        self, addresses: list[str], requeue: bool = False, force: bool = False
    ) -> tuple[int, int]:
        """Take addresses off the list (all must be on it; one listed by a complaint only
        with `force`); with `requeue`, their suppressed receivers become not_sent, due at
        once. (removed, requeued)."""
        check_type("addresses", addresses, list)
        for i, address in enumerate(addresses):
            check_type(f"addresses[{i}]", address, str)
        by = f"{current_user()}@{socket.gethostname()}"
        now = self.config.minute(dt.datetime.now(dt.UTC))
        try:
            return store.remove_suppressions(
                addresses,
                requeue,
                f"requeued by {by} at {now}: off the suppression list",
                force,
            )
        except store.suppression.ComplaintError as exc:
            text = f"{exc}: on the list by a complaint (reported as spam by its reader)"
            raise InputError(
                f"{text}; force=True removes it anyway", cli=f"{text}; --force removes it anyway"
            ) from None
        except LookupError as exc:
            raise NotFoundError(f"not on the suppression list: {exc}") from None

    # -- bounces ---------------------------------------------------------------------------

    @store_errors
    def ingest_bounces(
        self, letters: Iterable[Letter], environ: dict[str, str] | None = None
    ) -> IngestReport:
        """Read bounce mail (`devmsg.mailboxes` Letters) and record what each reports about
        its receiver: an `ingest.IngestReport`."""
        from devmsg.ingest import Ingest

        return Ingest(self.config, current_user()).run(letters, environ)
