"""The values devmsg.toml's keys take, parsed: durations, sizes, the sender as a header,
the database as a path or a URL. A leaf: the key table (devmsg.configkeys) and the rest of
devmsg use these."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from devmsg.errors import ConfigError, DevmsgError, InputError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, default_unit: str = "s") -> dt.timedelta:
    """`90s`, `5m`, `4h`, `90d`, `2w`, or a bare number in `default_unit`. ValueError if not."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 4h, 90d)")
    number, unit = float(match[1]), (match[2] or default_unit).lower()
    try:
        return dt.timedelta(**{_UNITS[unit]: number})
    except OverflowError:
        raise ValueError(f"duration too long: {text!r}") from None


_ANGLE = re.compile(r"<([^<>]*)>\s*$")
_NAME_ADDR = re.compile(r"\s*(.*?)\s*<([^<>]*)>\s*", re.DOTALL)
# A display name that needs no quoting: RFC 5322 atoms and spaces, in ASCII.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1: never in a header
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")
_NOT_IN_ADDRESS = r'\s<>()\[\],;:\\"\x00-\x1f\x7f-\x9f'
_ADDRESS = re.compile(f"[^{_NOT_IN_ADDRESS}]+@[^@{_NOT_IN_ADDRESS}]+")


def address_of(sender: str) -> str:
    """The address in `Name <addr>` or `addr` (email.utils costs 7 ms to import)."""
    match = _ANGLE.search(sender)
    return (match[1] if match else sender).strip()


def format_sender(text: str) -> str:
    """`Name <addr>` as a From header needs it (RFC 5322): a name with a comma, a dot or
    quotes is quoted, one that is not ASCII encoded (RFC 2047), so that the header is one
    mailbox to every parser. ValueError if it is not one address."""
    if _CONTROL.search(text.replace("\t", " ")):  # a line break, NUL, ...: never in a header
        raise ValueError(text)
    match = _NAME_ADDR.fullmatch(text)
    name, address = (match[1], match[2].strip()) if match else ("", text.strip())
    if not _ADDRESS.fullmatch(address):
        raise ValueError(text)
    if len(name) >= 2 and name[0] == name[-1] == '"':  # already quoted: the name inside
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    name = " ".join(name.split())
    if not name:
        return address
    if _PLAIN_NAME.fullmatch(name):
        return f"{name} <{address}>"
    from email.utils import formataddr

    if not address.isascii():  # formataddr takes ASCII addresses only; the name is the point
        return formataddr((name, "x@x")).removesuffix("<x@x>") + f"<{address}>"
    return formataddr((name, address))


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(|b|kb|mb|gb|k|m|g)\s*$", re.IGNORECASE)


def parse_size(value: int | str) -> int:
    """Bytes from 26214400, "25MB", "512KB" (binary units, as mail providers mean them)."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 25MB, 512KB or bytes)")
    unit = match[2].lower().rstrip("b")
    return int(float(match[1]) * 1024 ** {"": 0, "k": 1, "m": 2, "g": 3}[unit])


ENV_DATABASE_PASSWORD = "DEVMSG_DATABASE_PASSWORD"


def database(
    value: str | None, base: Path, where: str, from_file: bool = True
) -> tuple[Path, str | None]:
    """A path or sqlite:///path keeps SQLite; postgresql://user@host:port/dbname is
    PostgreSQL, whose password never comes from the config file or the command line.
    `where` is the config file (`from_file`), else the API parameter that gave it."""
    if from_file:

        def bad(text: str) -> DevmsgError:
            return ConfigError(f"{where}: key 'database': {text}")
    else:

        def bad(text: str) -> DevmsgError:
            return InputError(f"{where}: {text}", param=where)

    if value is None:
        return base / "devmsg.sqlite3", None
    if value.startswith("sqlite:///"):
        return base / Path(value.removeprefix("sqlite:///")), None
    if value.startswith(("postgresql://", "postgres://")):
        from urllib.parse import urlsplit

        url = urlsplit(value)
        if url.password is not None:
            told = "devmsg.toml" if from_file else "the URL"
            raise bad(f"no password in {told}; use PGPASSWORD, ~/.pgpass or "
                      f"${ENV_DATABASE_PASSWORD}")  # fmt: skip
        if not url.path.strip("/"):
            shown = url._replace(netloc=url.netloc.rpartition("@")[2]).geturl()
            raise bad(f"the URL names no database: {shown}")
        return base / "devmsg.sqlite3", value
    if "://" in value:
        raise bad("use a file path, sqlite:///path or postgresql://...")
    return base / Path(value), None
