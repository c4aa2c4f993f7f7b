"""Every devmsg.toml key, declared once: its type, its default, its parser and what it
means. `config._build` reads the table to check and parse a file (and to name an unknown
key), and the configuration reference in docs/ is made from it (`keys_markdown`; a test
holds the page current)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from devmsg.configvalues import database, format_sender, parse_duration, parse_size

SECURITY_CHOICES = ("none", "starttls", "ssl")


@dataclass(frozen=True)
class Where:
    """What a parser needs to know: the file (for errors) and its folder (for paths)."""

    file: str
    base: Path


Parser = Callable[[Any, Where], Any]


@dataclass(frozen=True)
class Key:
    name: str  # "smtp.port": a table's keys are named with the table
    types: tuple[type, ...]
    type_name: str  # for errors and the docs: "an integer"
    default: Any  # as the file would give it; what a missing key is parsed from
    doc: str
    parse: Parser | None = None  # the value -> what Config holds; ValueError: one line

    @property
    def section(self) -> str:
        return self.name.partition(".")[0] if "." in self.name else ""

    @property
    def short(self) -> str:
        return self.name.rpartition(".")[2]


def _duration(minimum: float = 0) -> Parser:
    def parse(value: str, where: Where) -> dt.timedelta:
        parsed = parse_duration(value)
        if parsed.total_seconds() < minimum:
            raise ValueError(f"must be at least {minimum:g}s")
        return parsed

    return parse


def _between(low: float, high: float | None = None) -> Parser:
    def parse(value: float, where: Where) -> float:
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be between {low:g} and {high:g}" if high is not None
                             else f"must be {low:g} or more")  # fmt: skip
        return value

    return parse


def _path(value: str, where: Where) -> Path:
    return where.base / Path(value)


def _file(value: str, where: Where) -> Path | None:
    if not value:
        return None
    path = where.base / Path(value)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return path


def _choice(*choices: str) -> Parser:
    def parse(value: str, where: Where) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    return parse


def _languages(value: list, where: Where) -> tuple[str, ...]:
    if not value or not all(isinstance(lang, str) and lang for lang in value):
        raise ValueError("must be a non-empty list of language codes")
    return tuple(value)


def _timezone(value: str, where: Where) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def _sender(value: str, where: Where) -> tuple[str, str]:
    try:
        return value.strip(), format_sender(value)
    except ValueError:
        raise ValueError(f"is not an email address: {value!r}") from None


def _redirect(value: str, where: Where) -> str:
    value = value.strip()
    if value and ("@" not in value or not value.isprintable()):
        raise ValueError(f"is not an email address: {value!r}")
    return value


def _size(value: int | str, where: Where) -> int:
    size = parse_size(value)
    if size < 1024:
        raise ValueError("must be at least 1KB")
    return size


def _return_path(value: str, where: Where) -> str:
    from devmsg.verp import check_template

    value = value.strip()
    if value and (problem := check_template(value)):
        raise ValueError(problem)
    return value


def _database(value: str | None, where: Where) -> tuple[Path, str | None]:
    return database(value, where.base, where.file)


def _limits(value: dict, where: Where) -> tuple:
    from devmsg.rates import parse_limits

    return parse_limits(value, where.file)


STR, INT, BOOL, DURATION = ((str,), "a string"), ((int,), "an integer"), ((bool,), "true or false"), ((str,), 'a duration such as "5m"')  # fmt: skip


def _key(name: str, kind: tuple, default: Any, doc: str, parse: Parser | None = None) -> Key:
    return Key(name, kind[0], kind[1], default, doc, parse)


KEYS: tuple[Key, ...] = (
    _key("database", STR, None, "a path or `sqlite:///path`: SQLite, created readable by its owner only (default `devmsg.sqlite3`); `postgresql://user@host:5432/dbname`: PostgreSQL (see \"PostgreSQL\")", _database),
    _key("templates", STR, "templates", "the template folders", _path),
    _key("locales", STR, "locales", "the gettext catalogs", _path),
    _key("default_language", STR, "en", "must be one of `languages`; the language the templates' msgids are written in"),
    _key("languages", ((list,), "a list of strings"), ["en"], "every language other than `default_language` needs a catalog (without the key: `default_language` alone)", _languages),
    _key("resend_limit", INT, 2, "failures allowed before a receiver is `error` (see Statuses)", _between(0)),
    _key("sender", STR, "devmsg <devmsg@localhost>", "the From header and envelope sender", _sender),
    _key("timezone", STR, "UTC", "an IANA name: dates in templates, shown times, `--sent-since/--sent-until` dates", _timezone),
    _key("redirect_to", STR, "", "when set, every receiver is delivered to this address (the To header is unchanged, `sent_to` records the redirect)", _redirect),
    _key("retry_backoff", DURATION, "5m", "the wait after the first failure, doubled each time: `30s`, `5m`, `4h`, `2d`; `\"0s\"` retries on every run", _duration()),
    _key("retry_backoff_max", ((str,), 'a duration such as "4h"'), "4h", "the cap on one wait", _duration()),
    _key("busy_timeout", ((str,), 'a duration such as "10s"'), "10s", "how long to wait for the store's write lock", _duration()),
    _key("claim_lease", DURATION, "5m", "a claim's lease, renewed while its run works", _duration(minimum=1)),
    _key("max_age", ((str,), 'a duration such as "5d"'), "5d", "a receiver still not sent (`not_sent` or `failed`) this long after it was created, or after its `--at` time, becomes `expired` instead of being sent; time spent `held` does not count; `\"0s\"`: never", _duration()),
    _key("suppress", BOOL, True, "a permanent refusal of the mailbox itself (5xx at RCPT with 5.1.x or 5.2.1) adds the address to the suppression list; `false` stops the additions, the list still applies"),
    _key("allow_local_domains", BOOL, False, "`true` accepts receivers at `localhost`, under `.test` and at names without a dot (`root@mailhost`): special-use or local names that email-validator refuses, for a developer's capture server or a local relay"),
    _key("max_message_size", ((int, str), 'a size such as "25MB" (or bytes)'), "25MB", "the largest message `send` (with `--attach`), `send --eml`, `send_email`, the Django backend and `devmsg-sendmail` take (bytes, or `KB`, `MB`, `GB`, binary units); a bigger one is refused with one line and nothing is stored", _size),
    _key("allow_envelope_from", BOOL, False, "`true` lets `devmsg-sendmail -f ADDRESS` (and `send_email(envelope_from=)`) set a message's envelope sender; otherwise `-f` is ignored with a warning and the mail goes from `sender`"),
    _key("rate_limits", ((dict,), "a table"), {}, "`\"*\"` or a domain -> a rate or a list of rates, `COUNT/UNIT` or `COUNT/NUNIT` with the units `s`, `m`, `h`, `d` (`14/s`, `100/m`, `50000/24h`); see \"Rate limits\"", _limits),
    _key("smtp", ((dict,), "a table"), {}, "the relay: the `smtp.` keys below"),
    _key("bounces", ((dict,), "a table"), {}, "bounces read back: the `bounces.` keys below"),
    _key("smtp.host", STR, "localhost", "the SMTP server"),
    _key("smtp.port", INT, 25, "its port", _between(1, 65535)),
    _key("smtp.security", STR, "none", "`starttls` or `ssl` verify the server's certificate", _choice(*SECURITY_CHOICES)),
    _key("smtp.username", STR, "", "log in when set; the password comes only from `$DEVMSG_SMTP_PASSWORD`"),
    _key("smtp.timeout", ((int, float), "a number"), 30, "seconds for each network operation", lambda v, w: float(_positive(v))),
    _key("smtp.connections", INT, 4, "deliver over this many connections at once, each in its own thread (1 to 64)", _between(1, 64)),
    _key("smtp.idle_timeout", ((str,), 'a duration such as "30s"'), "30s", "`devmsg worker` keeps an unused connection open this long (below most servers' own timeout), then QUITs it", lambda v, w: parse_duration(v).total_seconds()),
    _key("smtp.ca_file", STR, "", "a PEM file of the CA (or the self-signed certificate) that signs the relay's certificate, relative to devmsg.toml; used instead of the system's CAs", _file),
    _key("smtp.tls_server_name", STR, "", "the name the relay's certificate must carry (default: `host`): set it when `host` is an IP address, or an alias the certificate does not name", lambda v, w: v.strip()),
    _key("bounces.return_path", ((str,), 'a string such as "bounces+{token}@example.org"'), "", "the envelope sender (MAIL FROM) of every receiver, with `{token}` standing for the receiver (its id and a keyed MAC, lowercase letters and digits): bounces come back to an address that says which receiver bounced. The From header does not change. Empty: the envelope sender is `sender`'s address", _return_path),
    _key("bounces.max_size", ((int,), "an integer (bytes)"), 10 * 1024 * 1024, "`bounces ingest` reads no bounce bigger than this (bytes): it counts as rejected", _between(1024)),
    _key("bounces.imap_ca_file", STR, "", "a PEM file to trust for `--imap`, instead of the system's CAs", _file),
    _key("bounces.imap_password", STR, "", "the IMAP password, when `$DEVMSG_IMAP_PASSWORD` is not set (prefer the environment)"),
)  # fmt: skip


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError("must be more than 0")
    return value


def keys_of(section: str) -> dict[str, Key]:
    return {key.short: key for key in KEYS if key.section == section}


def keys_markdown() -> str:
    """The configuration reference's table, from the table above."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key in KEYS:
        if key.types == (dict,) and key.name in ("smtp", "bounces"):
            continue  # their keys have rows of their own
        default = _shown(key.default)
        rows.append(f"| `{key.name}` | {key.type_name} | {default} | {key.doc} |")
    return "\n".join(rows) + "\n"


def _shown(value: Any) -> str:
    import json

    if value is None or value == {} or value == "":
        return "none" if value is None or value == {} else "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{json.dumps(value, ensure_ascii=False)}`"
