"""`devmsg demo`: a store, the bundled example template and catalogs, a capturing SMTP server
on loopback, and a real send through the same path as `devmsg send`, narrated through `emit`
(the CLI passes its console's print)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from devmsg.errors import DevmsgError
from devmsg.words import plural

DATA = Path(__file__).with_name("demo_data")
MARKER = ".devmsg-demo"

CONFIG = """\
# Made by `devmsg demo`. The SMTP server it used is gone: point [smtp] at a real one to send.
database = "devmsg.sqlite3"
templates = "templates"
locales = "locales"
default_language = "en"
languages = ["en", "nb"]
resend_limit = 2
sender = "Devilry <noreply@devilry.example>"
timezone = "Europe/Oslo"

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout = 10
"""

CONTEXT = {
    "assignment": "Oblig 1",
    "course": "INF1000",
    "published": "2026-11-27T14:30:00+00:00",
    "points": "87.5",
    "comments": 2,
    "url": "https://devilry.example/feedback/1",
}


def prepare(folder: Path) -> bool:
    """Make `folder` (or refresh one an earlier demo made); refuse anything else. Whether
    it replaced an earlier demo's store."""
    replaced = False
    if folder.exists():
        if not (folder / MARKER).is_file():
            raise DevmsgError(
                f"{folder} exists and was not made by devmsg demo; "
                "remove it or choose another --folder"
            )
        for old in folder.glob("devmsg.sqlite3*"):
            old.unlink()
            replaced = True
    else:
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise DevmsgError(f"{folder}: cannot create the demo folder: {exc.strerror}") from None
    (folder / MARKER).write_text("Made by devmsg demo; it may overwrite this folder.\n")
    for part in ("templates", "locales"):
        shutil.copytree(DATA / part, folder / part, dirs_exist_ok=True)
    return replaced


def run_demo(folder: Path, emit: Callable) -> None:
    from rich.rule import Rule
    from rich.text import Text

    from devmsg.config import load_config
    from devmsg.inputs import Recipient
    from devmsg.outbox import Outbox
    from devmsg.smtpserver import CapturingServer
    from devmsg.views import receiver_detail, receivers_table

    folder = Path(folder)
    replaced = prepare(folder)
    with CapturingServer() as server:
        config_path = folder / "devmsg.toml"
        config_path.write_text(CONFIG.format(port=server.port))
        emit(Rule(f"devmsg demo in {folder}/"))
        if replaced:
            emit(f"It replaced the store an earlier devmsg demo left in {folder}/.")
        emit(f"A capturing SMTP server listens on 127.0.0.1:{server.port}.")
        # Greylisting: the first attempt to Kari is answered "451 try again later".
        server.refuse("kari@example.no", "451 4.7.1 Greylisted, please try again later", times=1)
        recipients = [
            Recipient("ola@example.no", "Ola Nordmann", "nb_NO"),
            Recipient("kari@example.no", "Kari Nordmann", "nb"),
            Recipient("alex@example.com", "Alex Smith", "en-GB"),
            Recipient("sam@example.com", "Sam Jones", "de"),
        ]
        with Outbox(load_config(config_path)) as outbox:
            tz = outbox.config.tzinfo
            report = outbox.send(
                template="feedback", type="feedback", context=CONTEXT, recipients=recipients
            )
            emit(
                f"\n[bold]devmsg send[/] stored message {report.message_id} for "
                f"{plural(len(recipients), 'receiver')} (each in their own language) and sent it: "
                f"sent {report.sent}, failed {report.failed}."
            )
            failed = outbox.list(statuses=["failed"])
            for row in failed:
                detail = outbox.show(row["id"])
                emit(
                    Text.assemble(
                        f"Receiver {row['id']} ({row['to']}) failed: ",
                        (detail["failures"][-1]["error"], "yellow"),
                    )
                )
            retry = outbox.resend([row["id"] for row in failed])
            emit(
                f"[bold]devmsg resend[/] {' '.join(str(r['id']) for r in failed)}: "
                f"sent {retry.sent}, failed {retry.failed}.\n"
            )
            emit(receivers_table(outbox.list(limit=0), tz))
            # The receiver that failed once and was resent: the one worth a look (README too).
            shown = failed[0]["id"] if failed else report.receiver_ids[0]
            if failed:
                emit(Rule(f"devmsg show {failed[0]['id']}"))
                emit(receiver_detail(outbox.show(failed[0]["id"]), tz))
        emit(Rule())
        emit(f"The SMTP server received {plural(len(server.messages), 'message')}.")
    emit(
        "Explore the store it left:\n"
        f"  devmsg --config {config_path} list\n"
        f"  devmsg --config {config_path} show {shown}\n"
        f"  devmsg --config {config_path} list --json --status sent"
    )
