"""devmsg worker: deliver everything as soon as it is due, until stopped. Its log lines go
to stderr, as text (colours only on a terminal) or one JSON object a line."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from devmsg.cli.base import app, outbox_of, polite_stop_handler
from devmsg.errors import InputError

if TYPE_CHECKING:
    from devmsg.worker import Worker

LOG_FORMATS = ("text", "json")
_STYLES = {"connection failed": "red", "reload failed": "red", "paused": "yellow",
           "started": "green", "stopped": "green"}  # fmt: skip


@app.command()
def worker(
    ctx: typer.Context,
    connections: Annotated[
        int | None,
        typer.Option(
            "--connections", metavar="N", help="SMTP connections (default: smtp.connections)."
        ),
    ] = None,
    type: Annotated[
        str | None,
        typer.Option("--type", metavar="TYPE", help="Only receivers of messages of this type."),
    ] = None,
    log_format: Annotated[
        str, typer.Option("--log-format", metavar="text|json", help="How to log to stderr.")
    ] = "text",
) -> None:
    """Deliver each receiver as soon as it is due, until stopped (SIGTERM or Ctrl-C: a
    polite stop, exit 0; SIGHUP reloads the config).

    Example: devmsg --config /srv/app/devmsg.toml worker --log-format json
    """
    from devmsg.config import load_config
    from devmsg.worker import Worker

    if log_format not in LOG_FORMATS:
        raise InputError(f"--log-format must be text or json, not {log_format!r}")
    if connections is not None and not 1 <= connections <= 64:
        raise InputError("--connections must be between 1 and 64")
    outbox = outbox_of(ctx)  # opens (and migrates) the store
    log = _json_log if log_format == "json" else _text_log()
    the_worker = Worker(
        outbox.config, type=type, connections=connections, log=log,
        reload=lambda: load_config(ctx.obj["config"]),
    )  # fmt: skip
    _handle_signals(the_worker)
    the_worker.run()


def _handle_signals(the_worker: Worker) -> None:
    stop = polite_stop_handler(exit_code=0, then=the_worker.poke)  # a normal way to stop
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, lambda signum, frame: the_worker.request_reload())


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value


def _json_log(event: str, fields: dict) -> None:
    line = {"time": _now(), "event": event, **{k: _plain(v) for k, v in fields.items()}}
    sys.stderr.write(json.dumps(line, ensure_ascii=True) + "\n")
    sys.stderr.flush()


def describe(event: str, fields: dict) -> str:
    """One event as a line of text (without the time)."""
    f = fields
    if event == "started":
        types = f"type {f['type']}" if f.get("type") else "every type"
        return (f"started: worker {f['worker']}, {f['connections']} connections, {types}, "
                f"store {f['store']}, smtp {f['smtp']}")  # fmt: skip
    if event == "batch":
        parts = [f"{f['claimed']} claimed"]
        parts += [f"{name} {f[name]}" for name in ("sent", "failed", "error", "deferred",
                                                   "suppressed") if f.get(name)]  # fmt: skip
        if f.get("handed_back"):
            parts.append("handed back: the server refused this connection")
        return "batch: " + ", ".join(parts)
    if event == "idle":
        when = f.get("next_due_at")
        return "idle: " + (f"next due at {_plain(when)}" if when else "nothing due later")
    if event == "paused":
        return f"paused by {f['by']}" + (f": {f['reason']}" if f.get("reason") else "")
    if event in ("connection failed", "reload failed"):
        return f"{event}: {f['error']}"
    if event == "reloaded":
        return f"reloaded: {f['connections']} connections, smtp {f['smtp']}"
    if event == "stopping":
        return f"stopping: {f['reason']}, finishing the exchanges in flight"
    if event == "stopped":
        return f"stopped: sent {f['sent']}, failed {f['failed']}, error {f['error']}"
    return event


def _text_log() -> Callable[[str, dict], None]:
    from devmsg.cli.controls import visible

    if not sys.stderr.isatty():

        def plain(event: str, fields: dict) -> None:
            sys.stderr.write(f"{_now()} {visible(describe(event, fields))}\n")
            sys.stderr.flush()

        return plain
    from rich.text import Text

    from devmsg.cli.base import console

    out = console(stderr=True)

    def coloured(event: str, fields: dict) -> None:
        line = Text(f"{_now()} ", style="dim")
        line.append(describe(event, fields), style=_STYLES.get(event, ""))
        out.print(line, soft_wrap=True)

    return coloured
