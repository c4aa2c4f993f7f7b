"""bounces ingest: read bounce mail back into the record."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from devmsg.cli.base import DevmsgGroup, app, echo, outbox_of, print_json
from devmsg.errors import StoreError, UsageError

bounces_app = typer.Typer(
    cls=DevmsgGroup,
    help="Bounces: delivery reports and complaints read back into the record.",
    no_args_is_help=True,
)
app.add_typer(bounces_app, name="bounces")

EX_TEMPFAIL = 75  # sysexits: an MTA's pipe keeps the bounce and tries again later


@bounces_app.command("ingest")
def ingest(
    ctx: typer.Context,
    mbox: Annotated[
        Path | None,
        typer.Option("--mbox", metavar="FILE", help="Read every message of an mbox file."),
    ] = None,
    maildir: Annotated[
        Path | None,
        typer.Option(
            "--maildir", metavar="DIR",
            help="Read the unseen messages of a Maildir; they move to cur/, flagged seen.",
        ),
    ] = None,
    imap: Annotated[
        str | None,
        typer.Option(
            "--imap", metavar="URL",
            help="Read the unseen messages of an IMAP folder over TLS: imaps://user@host/INBOX "
            "(the password from $DEVMSG_IMAP_PASSWORD); they are flagged seen.",
        ),
    ] = None,
    move_to: Annotated[
        str | None,
        typer.Option("--move-to", metavar="FOLDER", help="With --imap: move them there instead."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the counts, and each message's outcome, as JSON.")
    ] = False,
) -> None:  # fmt: skip
    """Read bounce mail back: bounced receivers, delays and complaints.

    A permanent failure makes its receiver `bounced` (a dead address goes on the
    suppression list), a delay is noted, a complaint suppresses the address.

    With no option it reads one message on stdin, as an MTA's alias pipe gives it:
    bounces: "|devmsg bounces ingest". A bounce is matched by the return path it was sent
    to ([bounces] return_path), else by the original's Message-ID; one that matches nothing
    changes nothing. Reading the same bounce again changes nothing.

    Example: devmsg bounces ingest --maildir ~/Maildir
    """
    from devmsg import mailboxes
    from devmsg.config import load_config

    chosen = [name for name, value in (("--mbox", mbox), ("--maildir", maildir),
                                       ("--imap", imap)) if value is not None]  # fmt: skip
    if len(chosen) > 1:
        raise UsageError(f"give one of {' and '.join(chosen)}")
    if move_to is not None and imap is None:
        raise UsageError("--move-to goes with --imap")
    config = load_config(ctx.obj["config"])
    limit = config.bounces.max_size
    environ = None
    if mbox is not None:
        letters = mailboxes.from_mbox(mbox, limit)
    elif maildir is not None:
        letters = mailboxes.from_maildir(maildir, limit)
    elif imap is not None:
        url = mailboxes.ImapUrl.parse(imap)
        cfg = config.bounces
        letters = mailboxes.from_imap(
            url, cfg.imap_password, limit, cfg.imap_ca_file, config.smtp.timeout, move_to
        )
    else:
        letters = mailboxes.from_stdin(sys.stdin.buffer, limit)
        environ = dict(os.environ)
    try:
        report = outbox_of(ctx, config=config).ingest_bounces(letters, environ)
    except StoreError as exc:
        if environ is None:
            raise
        exc.exit_code = EX_TEMPFAIL  # a pipe from the MTA: it keeps the bounce, tries later
        raise
    if json_output:
        print_json(report.as_dict())
        return
    c = report.counts
    text = (
        f"bounces: read {c['read']}: {c['bounced']} bounced, {c['delayed']} delayed, "
        f"{c['complaints']} complaints, {c['unmatched']} unmatched, {c['rejected']} rejected"
    )
    if c["duplicates"]:
        text += f"; {c['duplicates']} read before (nothing changed)"
    if c["suppressed"]:
        text += f"; {c['suppressed']} added to the suppression list"
    echo(text)
    for entry in report.messages:
        if entry["outcome"] in ("unmatched", "rejected"):
            echo(f"  {entry['outcome']}: {entry['source']}: {entry['why']}")
