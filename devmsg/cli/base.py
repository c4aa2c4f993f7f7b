"""The app, its one error handler, and the helpers every group of commands shares: the
console, one-line messages, JSON, the progress bar and the open Outbox."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from devmsg import __version__
from devmsg.errors import DevmsgError, InputError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from devmsg.cli.terminal import SafeConsole
    from devmsg.config import Config
    from devmsg.outbox import Outbox
    from devmsg.report import DeliveryReport

T = TypeVar("T")

EXIT_NOT_SENT = 3


# The Python API's parameters, as the CLI's options: errors name what the user typed.
OPTIONS = {
    "type": "--type",
    "template": "--template",
    "language": "--language",
    "context": "--context",
    "metadata": "--metadata",
    "send_at": "--at",
    "expires_at": "--expires",
    "statuses": "--status",
    "limit": "--limit",
    "sent_since": "--sent-since",
    "sent_until": "--sent-until",
    "by": "--by",
    "target": "--to",
    "older_than": "--older-than",
    "for_": "--for",
    "addresses": "ADDRESS",
}


class DevmsgGroup(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except DevmsgError as exc:
            _error(exc.for_cli(OPTIONS) if isinstance(exc, InputError) else str(exc))
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=DevmsgGroup,
    name="devmsg",
    help="Send email to your application's users and keep a durable record of every message.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
    epilog="Example: devmsg --config devmsg.toml list --status failed. Start with: devmsg demo",
)


def receiver_id(text: str) -> int:
    """A receiver ID on the command line: a number, else one line and exit 1."""
    try:
        return int(text.strip())
    except ValueError:
        raise InputError(f"the ID must be a number, not {text!r}") from None


def console(stderr: bool = False) -> SafeConsole:
    from devmsg.cli.terminal import SafeConsole

    return SafeConsole(stderr=stderr, highlight=False)


def _error(message: str) -> None:
    from rich.text import Text

    line = " ".join(message.split()) if "\n" in message else message
    console(stderr=True).print(Text(f"Error: {line}", style="red"), soft_wrap=True)


def echo(text: str, err: bool = False) -> None:
    from rich.text import Text

    console(stderr=err).print(Text(text), soft_wrap=True)


def print_json(value: Any) -> None:
    from devmsg.views import to_json

    sys.stdout.write(to_json(value) + "\n")


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"devmsg {__version__}\n")  # plain: no rich for one line
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            metavar="PATH",
            help="Path of devmsg.toml. Default: $DEVMSG_CONFIG, else ./devmsg.toml, "
            "else built-in defaults.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Send email to your application's users and keep a durable record of every message.

    Example: devmsg --config devmsg.toml list --status failed
    """
    ctx.obj = {"config": config}


def outbox_of(ctx: typer.Context, looking: bool = False, config: Config | None = None) -> Outbox:
    """The open Outbox (of `config`, else the one --config names). A command that only
    looks (`looking`) makes no store: on a SQLite file that is not there it says so."""
    from devmsg.config import load_config
    from devmsg.outbox import Outbox

    config = config or load_config(ctx.obj["config"])
    if looking and config.database_url is None and not Path(config.database).exists():
        from devmsg.errors import StoreError

        path = Path(config.database).absolute()
        try:
            shown = f"./{path.relative_to(Path.cwd())}"
        except ValueError:
            shown = str(path)
        raise StoreError(f"no store at {shown}: devmsg send creates it, or give --config")

    outbox = Outbox(config)
    ctx.call_on_close(outbox.close)
    return outbox


class _ProgressBar:
    """A progress bar on stderr, only on a terminal and only for long runs."""

    def __init__(self, label: str, minimum: int = 20) -> None:
        self.label = label
        self.minimum = minimum
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.decided = False  # called once per receiver: decide on the first call only

    def __call__(self, done: int, total: int) -> None:
        if not self.decided:
            self.decided = True
            out = console(stderr=True)
            if total >= self.minimum and out.is_terminal:
                from rich.progress import Progress

                self.progress = Progress(console=out, transient=True)
                self.progress.start()
                self.task = self.progress.add_task(self.label, total=total)
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=done)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def with_progress(label: str, work: Callable[[Any], T], minimum: int = 20) -> T:
    """Run `work(progress)` with a progress bar on a terminal for long runs."""
    bar = _ProgressBar(label, minimum)
    try:
        return work(bar)
    finally:
        bar.close()


def deliver(label: str, work: Callable[[Any], T]) -> T:
    """Run a delivering command's `work(progress)`: a progress bar for long runs, and a
    polite stop on SIGTERM or SIGINT (see `devmsg.delivery`). The first signal asks the run
    to stop: it finishes or abandons the exchange in flight, records it, releases every
    claim, and `Interrupted` becomes one line and exit 143 or 130. A second signal ends the
    process at once; the leases then cover what it held."""
    import signal
    import threading

    from devmsg import delivery

    if threading.current_thread() is not threading.main_thread():
        return with_progress(label, work)  # signals reach the main thread only
    on_signal = polite_stop_handler()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return with_progress(label, work)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        delivery.clear_stop()


def polite_stop_handler(
    exit_code: int | None = None, then: Callable[[], None] | None = None
) -> Callable[[int, Any], None]:
    """A SIGTERM/SIGINT handler: the first signal asks every delivery run in the process to
    stop politely (the command then exits `exit_code`, else 128 + the signal), and calls
    `then`; a second ends the process at once (the leases cover what it held)."""
    import os
    import signal

    from devmsg import delivery

    def on_signal(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if delivery.stop_requested():
            os.write(2, f"Error: second {name}: stopped at once; what it held is retried "
                        "when its lease runs out\n".encode())  # fmt: skip
            os._exit(128 + signum)
        delivery.request_stop(name, 128 + signum if exit_code is None else exit_code)
        if then is not None:
            then()

    return on_signal


def summary_line(report: DeliveryReport, what: str) -> str:
    text = (
        f"{what}: attempted {report.attempted}, sent {report.sent}, "
        f"failed {report.failed}, error {report.error}"
    )
    if report.deferred:
        text += f"; {report.deferred} deferred by a rate limit (see devmsg limits)"
    if report.suppressed:
        text += f"; {report.suppressed} suppressed (see devmsg suppress list)"
    for status in ("failed", "error"):  # why, grouped: `failed 2: connection refused ... (2)`
        texts = report.reasons.get(status)
        if texts:
            ranked = sorted(texts.items(), key=lambda item: (-item[1], item[0]))
            why = ", ".join(f"{_shorten(reason)} ({count})" for reason, count in ranked)
            text += f"\n{status} {getattr(report, status)}: {why}"
    return text


def _shorten(text: str, width: int = 160) -> str:
    """One line of a failure's text, for a summary (`show` has it whole)."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
