"""Parsing what users hand us: addresses, receivers files (CSV, JSON Lines), JSON objects.
Every error names where the bad value came from (the option, or the file and line)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devmsg.config import parse_duration
from devmsg.errors import InputError

RECEIVER_COLUMNS = ("address", "name", "language")
_NAME_ADDR = re.compile(r"^(?P<name>.*?)\s*<(?P<addr>[^<>]*)>\s*$", re.DOTALL)


@dataclass(frozen=True)
class Recipient:
    """One receiver as asked for: an address, an optional display name and language."""

    address: str
    name: str = ""
    language: str | None = None
    source: str = ""  # where it came from, for error messages


def parse_recipient(text: str, language: str | None = None, where: str = "") -> Recipient:
    """`addr` or `Name <addr>` (as `--to` takes it)."""
    match = _NAME_ADDR.match(text.strip())
    if match:
        name, addr = match["name"].strip().strip('"').strip(), match["addr"]
    else:
        name, addr = "", text
    # The address is checked, once, where the receivers are used (Outbox.send).
    return Recipient(address=addr.strip(), name=name, language=language, source=where)


def parse_json_object(text: str | None, option: str) -> dict:
    """A JSON object given on the command line: the JSON itself, `@FILE` to read it from a
    file, or `@-` from stdin. Every error names the option (and the file)."""
    if text is None or text == "":
        return {}
    where = option
    if text.startswith("@"):
        name = text[1:]
        where = f"{option} {'stdin' if name == '-' else name}"
        try:
            raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            raise InputError(f"{where}: cannot read the file: {exc.strerror}") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{where}: invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InputError(f"{where}: must be a JSON object, got {type(value).__name__}")
    return value


def read_receivers(path: str, language: str | None = None) -> Iterator[Recipient]:
    """Receivers from a CSV file (header `address,name,language`) or JSON Lines (`.jsonl`);
    `-` reads CSV or JSON Lines from stdin (JSON Lines when the first character is `{`).
    Yields them one by one (a large file is never held as objects); the file itself is read
    at once, so an unreadable file fails before anything is yielded."""
    if path == "-":
        raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
        label = "<stdin>"
    else:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise InputError(f"{path}: cannot read receivers file: {exc.strerror}") from None
        label = path
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"{label}: not UTF-8 text (byte {exc.start})") from None
        del raw
    else:
        text = raw.removeprefix("\ufeff")
    is_jsonl = path.endswith((".jsonl", ".ndjson")) or (
        path == "-" and text.lstrip().startswith("{")
    )
    rows = _jsonl_rows(text, label) if is_jsonl else _csv_rows(text, label)
    return _recipients(rows, label, language)


_JSON_KINDS = {bool: "true/false", int: "a number", float: "a number", list: "a list",
               dict: "an object"}  # fmt: skip


def _recipients(
    rows: Iterable[tuple[str, dict]], label: str, language: str | None
) -> Iterator[Recipient]:
    count = 0
    for where, row in rows:
        address = row.get("address")
        for key in ("address", "name", "language"):
            value = row.get(key)
            if value is not None and not isinstance(value, str):
                kind = _JSON_KINDS.get(type(value), type(value).__name__)
                raise InputError(f"{where}: {key} must be text, not {kind}")
        if not address or not address.strip():
            raise InputError(f"{where}: missing address")
        name = row.get("name") or ""
        lang = row.get("language") or language
        # The address is checked, once, where the receivers are used (Outbox.send).
        count += 1
        yield Recipient(address.strip(), name, lang, where)
    if not count:
        raise InputError(f"{label}: no receivers in the file")


def _csv_rows(text: str, label: str) -> Iterator[tuple[str, dict]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip().lower() for h in header]
        unknown = [h for h in header if h not in RECEIVER_COLUMNS]
        if unknown or "address" not in header:
            raise InputError(
                f"{label} line 1: the header must be address,name,language "
                f"(name and language optional), got {','.join(header)}"
            )
        for values in reader:
            where = f"{label} line {reader.line_num}"
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(header):
                raise InputError(f"{where}: {len(values)} values for {len(header)} columns")
            yield where, dict(zip(header, (v.strip() for v in values), strict=False))
    except csv.Error as exc:
        raise InputError(f"{label} line {reader.line_num}: invalid CSV: {exc}") from None


def _jsonl_rows(text: str, label: str) -> Iterator[tuple[str, dict]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{label} line {number}"
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InputError(f"{where}: invalid JSON: {exc}") from None
        if not isinstance(row, dict):
            raise InputError(f"{where}: each line must be a JSON object")
        unknown = sorted(set(row) - set(RECEIVER_COLUMNS))
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}")
        yield where, row


def parse_time(text: str, option: str, tz: dt.tzinfo) -> dt.datetime:
    """An ISO 8601 date-time (with an offset, else in the configured time zone `tz`), or
    `+DURATION` from now (`+2h`, `+30m`, `+1d`)."""
    text = text.strip()
    if text.startswith("+"):
        try:
            return dt.datetime.now(dt.UTC) + parse_duration(text[1:], default_unit="m")
        except ValueError as exc:
            raise InputError(f"{option}: {exc}") from None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option}: not an ISO 8601 date-time or +DURATION: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def parse_age(text: str) -> dt.timedelta:
    """`90d`, `12h`, `30m`, `2w`, or a bare number of days."""
    try:
        return parse_duration(text, default_unit="d")
    except ValueError:
        raise InputError(
            f"--older-than: not an age: {text!r} (use e.g. 90d, 12h, 30m or a number of days)"
        ) from None
