"""The `devmsg` command: parse, call one library function, render. The only module that prints.

Errors devmsg raises (DevmsgError) become one red line on stderr and exit 1, in one place:
`DevmsgGroup.invoke`. Exit codes: 0 done; 1 an error the user can fix; 2 usage (Typer's own);
3 the work was stored but some receivers were not sent.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from devmsg import __version__
from devmsg.errors import DevmsgError

EXIT_NOT_SENT = 3


class DevmsgGroup(TyperGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DevmsgError as exc:
            _error(str(exc))
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


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _error(message: str) -> None:
    from rich.text import Text

    line = " ".join(message.split()) if "\n" in message else message
    _console(stderr=True).print(Text(f"Error: {line}", style="red"), soft_wrap=True)


def _echo(text: str, err: bool = False) -> None:
    from rich.text import Text

    _console(stderr=err).print(Text(text), soft_wrap=True)


def _print_json(value) -> None:
    from devmsg.views import to_json

    sys.stdout.write(to_json(value) + "\n")


def _version(value: bool) -> None:
    if value:
        _echo(f"devmsg {__version__}")
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


def _outbox(ctx: typer.Context):
    from devmsg.config import load_config
    from devmsg.outbox import Outbox

    config = load_config(ctx.obj["config"])

    outbox = Outbox(config)
    ctx.call_on_close(outbox.close)
    return outbox


class _ProgressBar:
    """A progress bar on stderr, only on a terminal and only for long runs."""

    def __init__(self, label: str, minimum: int = 20) -> None:
        self.label = label
        self.minimum = minimum
        self.progress = None
        self.task = None
        self.decided = False  # called once per receiver: decide on the first call only

    def __call__(self, done: int, total: int) -> None:
        if not self.decided:
            self.decided = True
            console = _console(stderr=True)
            if total >= self.minimum and console.is_terminal:
                from rich.progress import Progress

                self.progress = Progress(console=console, transient=True)
                self.progress.start()
                self.task = self.progress.add_task(self.label, total=total)
        if self.progress is not None:
            self.progress.update(self.task, completed=done)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _with_progress(label: str, work, minimum: int = 20):
    """Run `work(progress)` with a progress bar on a terminal for long runs."""
    bar = _ProgressBar(label, minimum)
    try:
        return work(bar)
    finally:
        bar.close()


def _summary(report, what: str) -> str:
    return (
        f"{what}: attempted {report.attempted}, sent {report.sent}, "
        f"failed {report.failed}, error {report.error}"
    )


# --- send -----------------------------------------------------------------------------------


@app.command()
def send(
    ctx: typer.Context,
    type: Annotated[
        str,
        typer.Option(
            "--type", metavar="TYPE", help="Kind of message, free text (e.g. feedback); filterable."
        ),
    ],
    template: Annotated[
        str | None,
        typer.Option(
            "--template", "-t", metavar="NAME", help="Template folder name under templates/."
        ),
    ] = None,
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to",
            metavar="ADDRESS",
            help="A receiver: ADDRESS or 'Name <ADDRESS>'. Repeat for more.",
        ),
    ] = None,
    receivers: Annotated[
        str | None,
        typer.Option(
            "--receivers",
            "-r",
            metavar="FILE",
            help="CSV (address,name,language) or JSON Lines (.jsonl) file of receivers; "
            "- for stdin.",
        ),
    ] = None,
    language: Annotated[
        str | None,
        typer.Option(
            metavar="LANG", help="Language for --to receivers and for file rows without one."
        ),
    ] = None,
    context: Annotated[
        str | None, typer.Option(metavar="JSON", help="JSON object of template variables.")
    ] = None,
    metadata: Annotated[
        str | None,
        typer.Option(metavar="JSON", help="JSON object stored with the message (not rendered)."),
    ] = None,
    subject: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Subject, to send without a template.")
    ] = None,
    text: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Plain-text body, without a template.")
    ] = None,
    html: Annotated[
        str | None, typer.Option(metavar="HTML", help="HTML body, without a template.")
    ] = None,
    queue: Annotated[
        bool,
        typer.Option("--queue", help="Store as not_sent and return; resend-failed delivers."),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Render a message for each receiver in their language, store it, and send it.

    Example: devmsg send --template feedback --type feedback
    --context '{"assignment": "Oblig 1"}' --to 'Ola <ola@example.com>' --language nb
    """
    from devmsg.inputs import parse_json_object, parse_recipient, read_receivers

    if bool(to) == bool(receivers):
        raise DevmsgError("give receivers with --to or with --receivers (one of them)")
    context_value = parse_json_object(context, "--context")
    metadata_value = parse_json_object(metadata, "--metadata")
    if to:
        recipients = [parse_recipient(item, language, where=f"--to {item!r}") for item in to]
    else:
        recipients = read_receivers(receivers, language)
    outbox = _outbox(ctx)
    report = _with_progress(
        "Sending",
        lambda bar: outbox.send(
            type=type,
            template=template,
            context=context_value,
            metadata=metadata_value,
            recipients=recipients,
            language=language,
            subject=subject,
            text=text,
            html=html,
            queue=queue,
            progress=bar,
        ),
    )
    if json_output:
        _print_json(report.as_dict())
    elif queue:
        _echo(
            f"message {report.message_id}: queued {len(report.receiver_ids)} receivers "
            "(devmsg resend-failed delivers them)"
        )
    else:
        _echo(_summary(report, f"message {report.message_id}"))
        if not report.ok:
            _echo(
                f"Not sent: see devmsg list --message {report.message_id} "
                "--status failed --status error",
                err=True,
            )
    if not report.ok:
        raise typer.Exit(EXIT_NOT_SENT)


# --- list / show ----------------------------------------------------------------------------


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            metavar="STATUS",
            help="not_sent, failed, error or sent. Repeat for more.",
        ),
    ] = None,
    type: Annotated[
        str | None, typer.Option("--type", metavar="TYPE", help="Only this message type.")
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", metavar="ADDRESS", help="Only this address (exact, ignoring case)."),
    ] = None,
    message: Annotated[
        int | None, typer.Option("--message", metavar="ID", help="Only this message id.")
    ] = None,
    sent_since: Annotated[
        str | None,
        typer.Option(
            metavar="DATE", help="Sent at or after this ISO date or time (configured time zone)."
        ),
    ] = None,
    sent_until: Annotated[
        str | None,
        typer.Option(
            metavar="DATE", help="Sent at or before this ISO date (the whole day) or time."
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", help="How many, newest first; 0 for all.")
    ] = 50,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List receivers, newest first, in a table.

    Example: devmsg list --status failed --status error --type feedback --limit 20
    """
    outbox = _outbox(ctx)
    rows = outbox.list(
        statuses=status,
        type=type,
        to=to,
        message=message,
        sent_since=sent_since,
        sent_until=sent_until,
        limit=limit,
    )
    if json_output:
        _print_json(rows)
        return
    if not rows:
        _echo("No receivers match.")
        return
    from devmsg.views import receivers_table

    table = receivers_table(rows, outbox.config.tzinfo)
    if limit and len(rows) == limit:
        table.caption = f"The {limit} newest shown; --limit 0 shows all."
    _console().print(table)


@app.command()
def show(
    ctx: typer.Context,
    receiver_id: Annotated[int, typer.Argument(metavar="ID", help="Receiver id (from list).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Show one receiver: every field, the content, and each failure's traceback.

    Example: devmsg show 42
    """
    outbox = _outbox(ctx)
    row = outbox.show(receiver_id)
    if json_output:
        _print_json(row)
        return
    from devmsg.views import receiver_detail

    _console().print(receiver_detail(row, outbox.config.tzinfo))


# --- resend ---------------------------------------------------------------------------------


@app.command()
def resend(
    ctx: typer.Context,
    receiver_ids: Annotated[
        list[int], typer.Argument(metavar="ID...", help="Receiver ids to send again.")
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Send the chosen receivers again, whatever their status.

    Example: devmsg resend 41 42
    """
    outbox = _outbox(ctx)
    report = _with_progress("Resending", lambda bar: outbox.resend(receiver_ids, progress=bar))
    if json_output:
        _print_json(report.as_dict())
    else:
        _echo(_summary(report, "resend"))
    if not report.ok:
        raise typer.Exit(EXIT_NOT_SENT)


@app.command("resend-failed")
def resend_failed(
    ctx: typer.Context,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Print nothing unless something failed (for cron)."),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Deliver everything due: failed past its backoff, queued, stranded (run it from cron).

    Example (crontab): */10 * * * * devmsg --config /srv/app/devmsg.toml resend-failed --quiet
    """
    outbox = _outbox(ctx)
    report = _with_progress("Resending", lambda bar: outbox.resend_failed(progress=bar))
    if json_output:
        _print_json(report.as_dict())
    elif not quiet or not report.ok:
        _echo(_summary(report, "resend-failed"))


# --- purge ----------------------------------------------------------------------------------


@app.command()
def purge(
    ctx: typer.Context,
    older_than: Annotated[
        str | None,
        typer.Option(
            metavar="AGE",
            help="Delete receivers created longer ago than this: 90d, 12h, 30m, or days.",
        ),
    ] = None,
    orphans: Annotated[
        bool, typer.Option("--orphans", help="Only delete messages that have no receivers.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Delete old receivers and their failures, then messages left without receivers.

    Example: devmsg purge --older-than 90d --dry-run
    """
    from devmsg.outbox import parse_age

    age = parse_age(older_than) if older_than is not None else None
    outbox = _outbox(ctx)
    report = outbox.purge(older_than=age, orphans=orphans, dry_run=dry_run)
    if json_output:
        _print_json(report.as_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    _echo(
        f"purge: {verb} {report.receivers_deleted} receivers and {report.messages_deleted} messages"
    )


# --- demo -----------------------------------------------------------------------------------


@app.command()
def demo(
    folder: Annotated[
        Path, typer.Option(metavar="FOLDER", help="Where to create the demo (a new folder).")
    ] = Path("devmsg-demo"),
) -> None:
    """Try devmsg with nothing configured: a local SMTP server, a store, a real send.

    Example: devmsg demo
    """
    from devmsg.demo import run_demo

    console = _console()
    run_demo(folder, console.print)


# --- store ----------------------------------------------------------------------------------

store_app = typer.Typer(
    cls=DevmsgGroup,
    help="Manage the store itself: copy it between SQLite and PostgreSQL.",
    no_args_is_help=True,
)
app.add_typer(store_app, name="store")


@store_app.command("copy")
def store_copy(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="URL",
            help="The target store: postgresql://user@host:port/dbname, sqlite:///path or a path.",
        ),
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Empty a non-empty target first.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Copy the whole store (messages, receivers, failures, ids) to another store.

    Example: devmsg store copy --to postgresql://devmsg@db.example:5432/devmsg
    """
    outbox = _outbox(ctx)
    counts = _with_progress(
        "Copying", lambda bar: outbox.copy_to(to, replace=replace, progress=bar), minimum=1
    )
    if json_output:
        _print_json(counts)
    else:
        _echo(
            f"store copy: copied {counts['message']} messages, {counts['receiver']} receivers "
            f"and {counts['failure']} failures to {to}"
        )


def run() -> None:
    """The `devmsg` command (the installed script and `python -m devmsg`)."""
    _skip_unused_postgres_driver(sys.argv[1:])
    app(prog_name="devmsg")


def _skip_unused_postgres_driver(argv: list[str]) -> None:
    """peewee imports an installed PostgreSQL driver eagerly: 90 ms and 11 MB on every
    SQLite cron tick. A process that will only use SQLite says so before peewee looks.
    Done here, for the one command this process runs, and not in `_outbox`: in a process
    that runs more (tests, an application) peewee would keep the driver missing."""
    if "peewee" in sys.modules or "store" in argv:
        return
    explicit = None
    for index, arg in enumerate(argv):
        if arg in ("--config", "-c") and index + 1 < len(argv):
            explicit = argv[index + 1]
        elif arg.startswith("--config="):
            explicit = arg.split("=", 1)[1]
    from devmsg.config import load_config

    try:
        if load_config(explicit).database_url:
            return
    except DevmsgError:
        return  # the command itself reports it
    for driver in ("psycopg", "psycopg2"):
        sys.modules.setdefault(driver, None)


if __name__ == "__main__":  # pragma: no cover
    run()
