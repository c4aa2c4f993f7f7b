"""devmsg.toml -> frozen dataclasses, validated, with the file and key named in every error.

Lookup order: an explicit path (``--config``), else ``$DEVMSG_CONFIG``, else ``./devmsg.toml``,
else built-in defaults. Relative paths in the file are relative to the file's folder.
The SMTP password is never part of the config: it is read from ``$DEVMSG_SMTP_PASSWORD``
by the transport at connect time.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from devmsg.errors import ConfigError, DevmsgError, InputError
from devmsg.rates import Limit, parse_limits

ENV_CONFIG = "DEVMSG_CONFIG"
ENV_SMTP_PASSWORD = "DEVMSG_SMTP_PASSWORD"
SECURITY_CHOICES = ("none", "starttls", "ssl")


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
_TOP_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "database": ((str,), "a string"),
    "templates": ((str,), "a string"),
    "locales": ((str,), "a string"),
    "default_language": ((str,), "a string"),
    "languages": ((list,), "a list of strings"),
    "resend_limit": ((int,), "an integer"),
    "sender": ((str,), "a string"),
    "timezone": ((str,), "a string"),
    "redirect_to": ((str,), "a string"),
    "retry_backoff": ((str,), 'a duration such as "5m"'),
    "retry_backoff_max": ((str,), 'a duration such as "4h"'),
    "busy_timeout": ((str,), 'a duration such as "10s"'),
    "claim_lease": ((str,), 'a duration such as "5m"'),
    "max_age": ((str,), 'a duration such as "5d"'),
    "smtp": ((dict,), "a table"),
    "bounces": ((dict,), "a table"),
    "rate_limits": ((dict,), "a table"),
    "suppress": ((bool,), "true or false"),
    "allow_local_domains": ((bool,), "true or false"),
    "max_message_size": ((int, str), 'a size such as "25MB" (or bytes)'),
    "allow_envelope_from": ((bool,), "true or false"),
}
_SMTP_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "host": ((str,), "a string"),
    "port": ((int,), "an integer"),
    "security": ((str,), "a string"),
    "username": ((str,), "a string"),
    "timeout": ((int, float), "a number"),
    "connections": ((int,), "an integer"),
    "idle_timeout": ((str,), 'a duration such as "30s"'),
    "ca_file": ((str,), "a string"),
    "tls_server_name": ((str,), "a string"),
}

_BOUNCES_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "return_path": ((str,), 'a string such as "bounces+{token}@example.org"'),
    "max_size": ((int,), "an integer (bytes)"),
    "imap_ca_file": ((str,), "a string"),
    "imap_password": ((str,), "a string"),
}

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


def _check_types(data: dict, spec: dict, where: str, prefix: str = "") -> None:
    for key, value in data.items():
        if key not in spec:
            known = ", ".join(sorted(spec))
            raise ConfigError(f"{where}: unknown key '{prefix}{key}' (known keys: {known})")
        types, name = spec[key]
        # bool is an int in Python; a TOML true is never a valid number here.
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise ConfigError(
                f"{where}: key '{prefix}{key}' must be {name}, got {type(value).__name__}"
            )


def _build(data: dict, path: Path | None, base: Path) -> Config:
    where = str(path) if path else "built-in defaults"
    _check_types(data, _TOP_KEYS, where)
    smtp_data = data.get("smtp", {})
    _check_types(smtp_data, _SMTP_KEYS, where, prefix="smtp.")
    bounces = _bounces(data.get("bounces", {}), where, base)

    defaults = Config()
    languages = data.get("languages", list(defaults.languages))
    if not languages or not all(isinstance(lang, str) and lang for lang in languages):
        raise ConfigError(f"{where}: key 'languages' must be a non-empty list of language codes")
    default_language = data.get("default_language", defaults.default_language)
    if "languages" not in data and default_language not in languages:
        languages = [default_language]
    if default_language not in languages:
        raise ConfigError(
            f"{where}: key 'default_language' ({default_language!r}) must be one of 'languages'"
        )
    resend_limit = data.get("resend_limit", defaults.resend_limit)
    if resend_limit < 0:
        raise ConfigError(f"{where}: key 'resend_limit' must be 0 or more")
    timezone = data.get("timezone", defaults.timezone)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: key 'timezone': unknown time zone {timezone!r}") from None
    sender = data.get("sender", defaults.sender)
    try:
        sender_header = format_sender(sender)
    except ValueError:
        raise ConfigError(f"{where}: key 'sender' is not an email address: {sender!r}") from None

    redirect_to = data.get("redirect_to", "").strip()
    if redirect_to and ("@" not in redirect_to or not redirect_to.isprintable()):
        raise ConfigError(f"{where}: key 'redirect_to' is not an email address: {redirect_to!r}")

    smtp_defaults = SmtpConfig()
    security = smtp_data.get("security", smtp_defaults.security)
    if security not in SECURITY_CHOICES:
        raise ConfigError(
            f"{where}: key 'smtp.security' must be one of {', '.join(SECURITY_CHOICES)}, "
            f"got {security!r}"
        )
    port = smtp_data.get("port", smtp_defaults.port)
    if not 0 < port < 65536:
        raise ConfigError(f"{where}: key 'smtp.port' must be between 1 and 65535")
    timeout = float(smtp_data.get("timeout", smtp_defaults.timeout))
    if timeout <= 0:
        raise ConfigError(f"{where}: key 'smtp.timeout' must be more than 0")

    def duration(key: str, default: dt.timedelta, minimum: float = 0) -> dt.timedelta:
        if key not in data:
            return default
        try:
            value = parse_duration(data[key])
        except ValueError as exc:
            raise ConfigError(f"{where}: key '{key}': {exc}") from None
        if value.total_seconds() < minimum:
            raise ConfigError(f"{where}: key '{key}' must be at least {minimum:g}s")
        return value

    connections = smtp_data.get("connections", smtp_defaults.connections)
    if not 1 <= connections <= 64:
        raise ConfigError(f"{where}: key 'smtp.connections' must be between 1 and 64")

    try:
        idle_timeout = parse_duration(smtp_data.get("idle_timeout", "30s")).total_seconds()
    except ValueError as exc:
        raise ConfigError(f"{where}: key 'smtp.idle_timeout': {exc}") from None

    ca_file = None
    if smtp_data.get("ca_file"):
        ca_file = base / Path(smtp_data["ca_file"])
        if not ca_file.is_file():
            raise ConfigError(f"{where}: key 'smtp.ca_file': no such file: {ca_file}")

    def resolve(key: str, default: Path) -> Path:
        return base / Path(data.get(key, str(default)))

    try:
        max_message_size = parse_size(data.get("max_message_size", defaults.max_message_size))
    except ValueError as exc:
        raise ConfigError(f"{where}: key 'max_message_size': {exc}") from None
    if max_message_size < 1024:
        raise ConfigError(f"{where}: key 'max_message_size' must be at least 1KB")

    database, database_url = _database(data.get("database"), base, where)
    rate_limits = parse_limits(data.get("rate_limits", {}), where)

    return Config(
        path=path,
        database=database,
        database_url=database_url,
        templates=resolve("templates", defaults.templates),
        locales=resolve("locales", defaults.locales),
        default_language=default_language,
        languages=tuple(languages),
        resend_limit=resend_limit,
        sender=sender.strip(),
        sender_header=sender_header,
        timezone=timezone,
        redirect_to=redirect_to,
        retry_backoff=duration("retry_backoff", defaults.retry_backoff),
        retry_backoff_max=duration("retry_backoff_max", defaults.retry_backoff_max),
        busy_timeout=duration("busy_timeout", defaults.busy_timeout),
        claim_lease=duration("claim_lease", defaults.claim_lease, minimum=1),
        max_age=duration("max_age", defaults.max_age),
        rate_limits=rate_limits,
        bounces=bounces,
        suppress=data.get("suppress", defaults.suppress),
        allow_local_domains=data.get("allow_local_domains", defaults.allow_local_domains),
        max_message_size=max_message_size,
        allow_envelope_from=data.get("allow_envelope_from", defaults.allow_envelope_from),
        smtp=SmtpConfig(
            host=smtp_data.get("host", smtp_defaults.host),
            port=port,
            security=security,
            username=smtp_data.get("username", smtp_defaults.username),
            timeout=timeout,
            connections=connections,
            idle_timeout=idle_timeout,
            ca_file=ca_file,
            tls_server_name=smtp_data.get("tls_server_name", "").strip(),
        ),
    )


def _bounces(data: dict, where: str, base: Path) -> BouncesConfig:
    _check_types(data, _BOUNCES_KEYS, where, prefix="bounces.")
    return_path = data.get("return_path", "").strip()
    if return_path:
        from devmsg.verp import check_template

        if problem := check_template(return_path):
            raise ConfigError(f"{where}: key 'bounces.return_path' {problem}")
    max_size = data.get("max_size", BouncesConfig.max_size)
    if max_size < 1024:
        raise ConfigError(f"{where}: key 'bounces.max_size' must be at least 1024 (bytes)")
    ca_file = None
    if data.get("imap_ca_file"):
        ca_file = base / Path(data["imap_ca_file"])
        if not ca_file.is_file():
            raise ConfigError(f"{where}: key 'bounces.imap_ca_file': no such file: {ca_file}")
    return BouncesConfig(return_path, max_size, ca_file, data.get("imap_password", ""))


ENV_DATABASE_PASSWORD = "DEVMSG_DATABASE_PASSWORD"


def _database(
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
