"""Rich renderables for the CLI: tables, the receiver detail, summaries. Builds, never prints."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rich import box
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Group

STATUS_STYLE = {
    "sent": "green", "failed": "yellow", "error": "bold red", "not_sent": "dim", "sending": "cyan",
    "held": "magenta", "cancelled": "dim strike", "expired": "dim", "suppressed": "dim red",
    "bounced": "red",
}  # fmt: skip


def local(value: dt.datetime | None, tz: ZoneInfo) -> str:
    """Short, as `ls -l` does: the year only when it is not this year's."""
    if value is None:
        return ""
    value = value.astimezone(tz)
    if value.year == dt.datetime.now(tz).year:
        return value.strftime("%m-%d %H:%M")
    return value.strftime("%Y-%m-%d %H:%M")


def local_long(value: dt.datetime | None, tz: ZoneInfo) -> str:
    return "" if value is None else value.astimezone(tz).isoformat(sep=" ", timespec="seconds")


def receiver_label(row: dict) -> str:
    return f"{row['name']} <{row['to']}>" if row["name"] else row["to"]


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


# The columns of `devmsg list`, in the order shown, with the priority by which a narrow
# terminal keeps them (0 first): an address and a header are never cut, so a column that
# does not fit at its full width is left out instead (`show ID` has every field).
_LIST_COLUMNS = (  # header, priority, options
    ("ID", 0, {"justify": "right", "no_wrap": True}),
    ("Created", 6, {"no_wrap": True}),
    ("Subject", 3, {"min_width": 8, "ratio": 3}),
    # As wide as its longest address; a longer display name is cut (`show` has it whole).
    ("Receiver", 1, {"no_wrap": True}),
    ("Sent", 5, {"justify": "right", "no_wrap": True}),
    ("Failed", 4, {"justify": "right", "no_wrap": True}),
    ("Status", 0, {"no_wrap": True}),
    ("Sent at", 7, {"no_wrap": True}),
    ("Next attempt", 8, {"no_wrap": True}),
    ("Type", 2, {"no_wrap": True}),
)


def receivers_table(rows: list[dict], tz: ZoneInfo, width: int | None = None) -> Table:
    """The receivers, newest first. With `width` (the terminal's), the columns that fit
    whole, by priority; the subject wraps."""
    table = Table(box=box.SIMPLE_HEAVY, header_style="bold", pad_edge=False, collapse_padding=True)
    with_next = any(row["next_attempt_at"] for row in rows)
    cells: dict[str, list[Text]] = {header: [] for header, _, _ in _LIST_COLUMNS}
    for row in rows:
        # Text, not str: rich would parse every str cell for markup.
        cells["ID"].append(Text(str(row["id"])))
        cells["Created"].append(Text(local(row["created_at"], tz)))
        cells["Subject"].append(Text(row["subject"]))
        cells["Receiver"].append(Text(f"{row['name']}\n{row['to']}" if row["name"] else row["to"]))
        cells["Sent"].append(Text(str(row["sent_count"])))
        cells["Failed"].append(Text(str(row["failed_count"])))
        cells["Status"].append(status_text(row["status"]))
        cells["Sent at"].append(Text(local(row["sent_at"], tz)))
        cells["Next attempt"].append(Text(local(row["next_attempt_at"], tz)))
        cells["Type"].append(Text(row["type"]))
    if not with_next:
        del cells["Next attempt"]

    def needed(header: str) -> int:  # the column's width uncut, with its padding
        if header == "Subject":
            return 8 + 2
        longest = max((line.cell_len for cell in cells[header] for line in cell.split()),
                      default=0)  # fmt: skip
        if header == "Receiver":  # the address is never cut; the name may be
            longest = max((len(row["to"]) for row in rows), default=0)
        return max(len(header), longest) + 2

    kept = set(cells)
    if width is not None:
        kept, used = set(), 0
        for header, _, _ in sorted((c for c in _LIST_COLUMNS if c[0] in cells),
                                   key=lambda c: c[1]):  # fmt: skip
            if used + needed(header) <= width:
                kept.add(header)
                used += needed(header)
    shown = [(header, options) for header, _, options in _LIST_COLUMNS if header in kept]
    for header, options in shown:
        extra = {"min_width": needed(header) - 2} if header != "Subject" else {}
        settings: dict[str, Any] = {**options, **extra}  # rich's add_column keywords
        table.add_column(header, **settings)
    for index in range(len(rows)):
        table.add_row(*(cells[header][index] for header, _ in shown))
    return table


def receiver_detail(row: dict, tz: ZoneInfo) -> Group:
    from rich.console import Group
    from rich.panel import Panel
    from rich.syntax import Syntax  # pygments: only `show` pays for it

    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column(overflow="fold")
    pairs = [
        ("Receiver", f"#{row['id']}"),
        ("Message", f"#{row['message_id']} ({row['type']}, template {row['template'] or '-'})"),
        ("To", receiver_label(row)),
        ("Language", row["language"]),
        ("Status", status_text(row["status"])),
        ("Status reason", row["status_reason"] or "-"),
        ("Sent count", str(row["sent_count"])),
        ("Failed count", str(row["failed_count"])),
        ("Created", local_long(row["created_at"], tz)),
        ("Sent at", local_long(row["sent_at"], tz) or "-"),
        ("Next attempt", local_long(row["next_attempt_at"], tz) or "-"),
        (
            "Claimed by",
            f"{row['claimed_by']} until {local_long(row['lease_until'], tz)}"
            if row["claimed_by"]
            else "-",
        ),
        ("Sent to", row["sent_to"] or "-"),
        (
            "From",
            next((v for n, v in row.get("headers", []) if n.lower() == "from"), row["sender"]),
        ),  # fmt: skip
        ("Message-ID", row["message_id_header"]),
        ("Created by", row["created_by"]),
        ("Context", json.dumps(row["context"], ensure_ascii=False)),
        ("Metadata", json.dumps(row["metadata"], ensure_ascii=False)),
        ("Subject", row["subject"]),
    ]
    for key, value in pairs:
        fields.add_row(key, value if isinstance(value, Text) else Text(str(value)))
    parts: list = [fields]
    own = ("from", "to", "subject", "date", "message-id", "mime-version", "content-type",
           "content-transfer-encoding")  # fmt: skip
    extra = [(name, value) for name, value in row.get("headers", []) if name.lower() not in own]
    if extra:
        headers = Table.grid(padding=(0, 2))
        headers.add_column(style="bold", no_wrap=True)
        headers.add_column(overflow="fold")
        for name, value in extra:
            headers.add_row(Text(name), Text(value))
        parts.append(Panel(headers, title="Headers", title_align="left"))
    if row.get("attachments"):
        files = Table(box=box.SIMPLE, header_style="bold", pad_edge=False)
        for column in ("File", "Type", "Size"):
            files.add_column(column, justify="right" if column == "Size" else "left")
        for item in row["attachments"]:
            files.add_row(Text(item["filename"]), Text(item["content_type"]), _size(item["size"]))
        parts.append(Panel(files, title="Attachments", title_align="left"))
    parts.append(Panel(Text(row["body_text"]), title="Plain text", title_align="left"))
    if row["body_html"]:
        parts.append(
            Panel(
                Syntax(row["body_html"], "html", word_wrap=True, theme="ansi_dark"),
                title="HTML",
                title_align="left",
            )
        )
    failures = row["failures"]
    if not failures:
        parts.append(Text("No failures.", style="dim"))
    for number, failure in enumerate(failures, start=1):
        title = f"Failure {number} of {len(failures)} at {local_long(failure['at'], tz)}"
        if not failure.get("counts", True):
            title += " (the relay's: not counted toward resend_limit)"
        parts.append(
            Panel(
                Group(
                    Text(failure["error"], style="bold red"),
                    Text(""),
                    Syntax(
                        failure["traceback"].rstrip(), "pytb", word_wrap=True, theme="ansi_dark"
                    ),
                ),
                title=title,
                title_align="left",
                border_style="red",
            )
        )
    notes = [r for r in row.get("reports", []) if r["kind"] != "failed"]  # failures: above
    for report in notes:
        what = "Delay notice" if report["kind"] == "delayed" else "Complaint"
        when = local_long(report["reported_at"] or report["at"], tz)
        words = " ".join(w for w in (report["status"], report["diagnostic"]) if w) or "-"
        by = report["reported_by"] or "an unnamed server"
        parts.append(
            Panel(
                Text(f"{words}\nreported by {by}, read {local_long(report['at'], tz)}"),
                title=f"{what} at {when}",
                title_align="left",
                border_style="yellow",
            )
        )
    return Group(*parts)


def _size(size: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def stats_view(data: dict, tz: ZoneInfo) -> Group:
    """`devmsg stats`: the receivers per status (per type with --by type), then the rest."""
    from rich.console import Group

    counts = data["receivers"]
    per_type = counts and isinstance(next(iter(counts.values())), dict)
    rows = counts if per_type else {"all": counts}
    # One row per status, one column of counts (or one per type): narrow enough for any
    # terminal, no header cut.
    table = Table(box=box.SIMPLE_HEAVY, header_style="bold", pad_edge=False)
    statuses = list(next(iter(rows.values())).keys()) if rows else []
    table.add_column("Status", no_wrap=True)
    for kind in rows:
        table.add_column(Text(str(kind)), justify="right", no_wrap=True)
    for status in statuses:
        table.add_row(status_text(status), *(Text(str(row[status])) for row in rows.values()))
    age = data["oldest_unsent_age_seconds"]
    lines = [
        f"Due now: {data['due']}",
        "Oldest not yet sent: " + ("-" if age is None else f"{_age(age)} old"),
        f"Last hour: {data['sent_last_hour']} sent, {data['failed_last_hour']} failed "
        f"attempts, {data['error_last_hour']} became error",
        f"Last 24 hours: {data['sent_last_24h']} sent, {data['failed_last_24h']} failed "
        f"attempts, {data['error_last_24h']} became error",
        *(
            [f"Bounced (read back) in the last 24 hours: {data['bounces_last_24h']}"]
            if data.get("bounces_last_24h")
            else []
        ),
        f"Sending is {'paused' if data['paused'] else 'not paused'}",
        "Last attempt: " + (local_long(data["last_attempt_at"], tz) or "never"),
    ]
    relay = data.get("relay")
    if relay is not None and not relay["up"]:
        since = local_long(relay["last_failure_at"], tz)
        lines.append(f"Relay: down since {since}: {relay['last_failure']}")
    elif relay is not None and relay["last_failure_at"] is not None:
        lines.append(f"Relay: up (last failure {local_long(relay['last_failure_at'], tz)})")
    workers = data.get("workers", [])
    live = sum(1 for w in workers if w["live"])
    lines.append(
        f"Workers: {live} live" + (f", {len(workers) - live} gone" if live < len(workers) else "")
    )
    for w in workers:
        state = "live" if w["live"] else "gone"
        only = f", type {w['type']}" if w["type"] else ""
        lines.append(
            f"  {w['name']}: {state}, last seen {_age(w['last_seen_age_seconds'])} ago, "
            f"sent {w['sent']}, failed {w['failed']}{only}"
        )
    return Group(table, *(Text(line) for line in lines))


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def to_json(value: Any) -> str:
    def default(obj: object) -> object:
        if isinstance(obj, dt.datetime):
            return obj.isoformat()
        raise TypeError(f"not JSON serializable: {type(obj).__name__}")

    text = json.dumps(value, default=default, ensure_ascii=False, indent=2)
    # Exact, and still safe to print: JSON escapes C0 itself; DEL and C1 (which JSON may
    # carry raw) are escaped the same way. They can only stand inside strings.
    return _RAW_CONTROL.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


_RAW_CONTROL = re.compile("[\x7f-\x9f]")


def _table() -> Table:
    return Table(box=box.SIMPLE_HEAVY, header_style="bold", pad_edge=False, collapse_padding=True)


def limits_table(rows: list[dict], tz: ZoneInfo) -> Table:
    table = _table()
    for name in ("Scope", "Limit", "Used", "Free", "Next permit"):
        table.add_column(name, justify="right" if name in ("Used", "Free") else "left",
                         no_wrap=True)  # fmt: skip
    for row in rows:
        scope = "all receivers" if row["scope"] == "*" else row["scope"]
        when = row["next_permit_at"]
        table.add_row(Text(scope), Text(row["limit"]), Text(f"{row['used']}/{row['count']}"),
                      Text(str(row["available"])),
                      Text("now" if when is None else local_long(when, tz)))  # fmt: skip
    return table


def suppressions_table(rows: list[dict], tz: ZoneInfo) -> Table:
    table = _table()
    table.add_column("Address", overflow="fold", ratio=2)
    table.add_column("Since", no_wrap=True)
    table.add_column("Reason", overflow="fold", ratio=3)
    table.add_column("Receiver", justify="right", no_wrap=True)
    table.add_column("By", overflow="fold", ratio=1)
    for row in rows:
        receiver = "" if row["receiver_id"] is None else f"#{row['receiver_id']}"
        table.add_row(Text(row["address"]), Text(local(row["created_at"], tz)),
                      Text(row["reason"]), Text(receiver), Text(row["created_by"]))  # fmt: skip
    return table


def catalog_stats_table(rows: list[dict]) -> Table:
    table = _table()
    table.add_column("Language", no_wrap=True)
    for name in ("Total", "Translated", "Fuzzy", "Untranslated", "Obsolete", "%"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(Text(row["language"]), *(Text(str(row[key])) for key in (
            "total", "translated", "fuzzy", "untranslated", "obsolete")),
            Text("source" if row.get("source") else f"{row['percent_translated']:g}"))  # fmt: skip
    return table


def preview_view(row: dict) -> Group:
    """What one receiver would get: the headers that matter, the text, the HTML source."""
    from rich.console import Group
    from rich.panel import Panel

    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column(overflow="fold")
    to = f"{row['name']} <{row['address']}>" if row["name"] else row["address"]
    shown = [("To", to), ("Language", row["language"]), ("Subject", row["subject"])]
    for key, value in shown + list(row.get("headers", ())):
        fields.add_row(Text(key), Text(value))
    return Group(
        fields,
        Panel(Text(row["body_text"]), title="Plain text", title_align="left"),
        Panel(Text(row["body_html"]), title="HTML", title_align="left"),
    )
