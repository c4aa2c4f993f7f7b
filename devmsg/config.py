"""devmsg.toml -> frozen dataclasses, validated, with the file and key named in every error.

Lookup order: an explicit path (``--config``), else ``$DEVMSG_CONFIG``, else ``./devmsg.toml``,
else built-in defaults. Relative paths in the file are relative to the file's folder.
The SMTP password is never part of the config: it is read from ``$DEVMSG_SMTP_PASSWORD``
by the transport at connect time.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from devmsg.configkeys import KEYS, SECURITY_CHOICES, Key, Where, keys_of
from devmsg.configvalues import (
    ENV_DATABASE_PASSWORD,
    address_of,
    database,
    format_sender,
    parse_duration,
    parse_size,
)
from devmsg.errors import ConfigError
from devmsg.rates import Limit

ENV_CONFIG = "DEVMSG_CONFIG"
ENV_SMTP_PASSWORD = "DEVMSG_SMTP_PASSWORD"


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 25
    security: str = "none"
    username: str = ""
    timeout: float = 30.0
    connections: int = 4
    idle_timeout: float = 30.0  # seconds `devmsg worker` keeps an unused connection open
    ca_file: Path | None = None  # trust this CA (or self-signed certificate) for TLS
    tls_server_name: str = ""  # the name the certificate must carry, when host is an IP

    @property
    def password(self) -> str:
        """Read from the environment on every use; never stored, never printed."""
        return os.environ.get(ENV_SMTP_PASSWORD, "")


ENV_IMAP_PASSWORD = "DEVMSG_IMAP_PASSWORD"


@dataclass(frozen=True)
class BouncesConfig:
    return_path: str = ""  # bounces+{token}@example.org: VERP; empty: the sender's address
    max_size: int = 10 * 1024 * 1024  # bytes: a bigger bounce is not read
    imap_ca_file: Path | None = None  # trust this CA (or certificate) for --imap
    imap_password_from_file: str = field(default="", repr=False)

    @property
    def imap_password(self) -> str:
        """$DEVMSG_IMAP_PASSWORD, else the config's; never printed."""
        return os.environ.get(ENV_IMAP_PASSWORD) or self.imap_password_from_file


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    database: Path = Path("devmsg.sqlite3")  # the SQLite file, when database_url is None
    database_url: str | None = None  # postgresql://user@host:port/dbname
    templates: Path = Path("templates")
    locales: Path = Path("locales")
    default_language: str = "en"
    languages: tuple[str, ...] = ("en",)
    resend_limit: int = 2
    sender: str = "devmsg <devmsg@localhost>"  # as written, for people
    sender_header: str = "devmsg <devmsg@localhost>"  # the From header: quoted, encoded
    timezone: str = "UTC"
    redirect_to: str = ""
    retry_backoff: dt.timedelta = dt.timedelta(minutes=5)
    retry_backoff_max: dt.timedelta = dt.timedelta(hours=4)
    busy_timeout: dt.timedelta = dt.timedelta(seconds=10)
    claim_lease: dt.timedelta = dt.timedelta(minutes=5)
    max_age: dt.timedelta = dt.timedelta(days=5)  # 0: never expire
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    bounces: BouncesConfig = field(default_factory=BouncesConfig)
    rate_limits: tuple[Limit, ...] = ()
    allow_local_domains: bool = False  # accept addresses at localhost and under .test
    suppress: bool = True  # a 5xx about the mailbox puts the address on the suppression list
    max_message_size: int = 25 * 1024 * 1024  # bytes: a bigger message is refused, not stored
    allow_envelope_from: bool = False  # devmsg-sendmail -f may set a message's MAIL FROM

    @property
    def store_name(self) -> str:
        """How errors name the store."""
        return self.database_url or str(self.database)

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def minute(self, value: dt.datetime) -> str:
        """A time for people, in the configured zone: `2026-12-01 10:02 CET`."""
        return value.astimezone(self.tzinfo).strftime("%Y-%m-%d %H:%M %Z")

    @property
    def sender_address(self) -> str:
        return address_of(self.sender)


# key -> (accepted types, type name for errors)
def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to use, or None for built-in defaults."""
    if explicit is not None:
        path = Path(explicit)
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder; give the path of a devmsg.toml")
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        return path
    env = os.environ.get(ENV_CONFIG)
    if env:
        path = Path(env)
        if path.is_dir():
            raise ConfigError(
                f"{path}: is a folder; give the path of a devmsg.toml (from ${ENV_CONFIG})"
            )
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found (from ${ENV_CONFIG})")
        return path
    local = Path("devmsg.toml")
    return local if local.is_file() else None


def load_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    """Find, read and validate the config. Raises ConfigError with file and key."""
    path = find_config_path(explicit)
    if path is None:
        return _build({}, None, Path.cwd())
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return _build(data, path, path.resolve().parent)


def _parse(key: Key, data: dict, where: Where) -> Any:
    """The key's value from `data` (its table), else its default, parsed; the error names
    the file and the key."""
    value = data.get(key.short, key.default)
    # bool is an int in Python; a TOML true is never a valid number here.
    wrong = (isinstance(value, bool) and bool not in key.types) or not isinstance(value, key.types)
    if key.short in data and wrong:
        raise ConfigError(
            f"{where.file}: key '{key.name}' must be {key.type_name}, got {type(value).__name__}"
        )
    if key.parse is None:
        return value
    try:
        return key.parse(value, where)
    except ValueError as exc:
        text = str(exc)
        joiner = " " if text.startswith(("must ", "is ")) else ": "
        raise ConfigError(f"{where.file}: key '{key.name}'{joiner}{text}") from None


def _section(data: dict, section: str, where: Where) -> dict:
    """Every key of a table parsed, by its short name; an unknown key names the known."""
    keys = keys_of(section)
    prefix = f"{section}." if section else ""
    for name in data:
        if name not in keys:
            known = ", ".join(sorted(keys))
            raise ConfigError(f"{where.file}: unknown key '{prefix}{name}' (known keys: {known})")
    return {name: _parse(key, data, where) for name, key in keys.items()}


def _build(data: dict, path: Path | None, base: Path) -> Config:
    where = Where(str(path) if path else "built-in defaults", base)
    top = _section(data, "", where)
    smtp = _section(top.pop("smtp"), "smtp", where)
    bounces = _section(top.pop("bounces"), "bounces", where)
    default_language = top["default_language"]
    if "languages" not in data and default_language not in top["languages"]:
        top["languages"] = (default_language,)
    if default_language not in top["languages"]:
        raise ConfigError(
            f"{where.file}: key 'default_language' ({default_language!r}) must be one of "
            "'languages'"
        )
    top["database"], top["database_url"] = top["database"]
    top["sender"], top["sender_header"] = top["sender"]
    top["rate_limits"] = top["rate_limits"]
    bounces["imap_password_from_file"] = bounces.pop("imap_password")
    return Config(path=path, smtp=SmtpConfig(**smtp), bounces=BouncesConfig(**bounces), **top)


__all__ = [
    "ENV_DATABASE_PASSWORD", "KEYS", "SECURITY_CHOICES", "BouncesConfig", "Config",
    "SmtpConfig", "address_of", "database", "find_config_path", "format_sender",
    "load_config", "parse_duration", "parse_size",
]  # fmt: skip
