"""devmsg.toml -> frozen dataclasses, validated, with the file and key named in every error.

Lookup order: an explicit path (``--config``), else ``$DEVMSG_CONFIG``, else ``./devmsg.toml``,
else built-in defaults. Relative paths in the file are relative to the file's folder.
The SMTP password is never part of the config: it is read from ``$DEVMSG_SMTP_PASSWORD``
by the transport at connect time.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from devmsg.errors import ConfigError

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

    @property
    def password(self) -> str:
        """Read from the environment on every use; never stored, never printed."""
        return os.environ.get(ENV_SMTP_PASSWORD, "")


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    database: Path = Path("devmsg.sqlite3")
    templates: Path = Path("templates")
    locales: Path = Path("locales")
    default_language: str = "en"
    languages: tuple[str, ...] = ("en",)
    resend_limit: int = 2
    sender: str = "devmsg <devmsg@localhost>"
    timezone: str = "UTC"
    redirect_to: str = ""
    smtp: SmtpConfig = field(default_factory=SmtpConfig)

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]


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
    "smtp": ((dict,), "a table"),
}
_SMTP_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "host": ((str,), "a string"),
    "port": ((int,), "an integer"),
    "security": ((str,), "a string"),
    "username": ((str,), "a string"),
    "timeout": ((int, float), "a number"),
}


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to use, or None for built-in defaults."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        return path
    env = os.environ.get(ENV_CONFIG)
    if env:
        path = Path(env)
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
        if isinstance(value, bool) or not isinstance(value, types):
            raise ConfigError(
                f"{where}: key '{prefix}{key}' must be {name}, got {type(value).__name__}"
            )


def _build(data: dict, path: Path | None, base: Path) -> Config:
    where = str(path) if path else "built-in defaults"
    _check_types(data, _TOP_KEYS, where)
    smtp_data = data.get("smtp", {})
    _check_types(smtp_data, _SMTP_KEYS, where, prefix="smtp.")

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
    if "@" not in parseaddr(sender)[1] or "\n" in sender or "\r" in sender:
        raise ConfigError(f"{where}: key 'sender' is not an email address: {sender!r}")

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

    def resolve(key: str, default: Path) -> Path:
        return base / Path(data.get(key, str(default)))

    return Config(
        path=path,
        database=resolve("database", defaults.database),
        templates=resolve("templates", defaults.templates),
        locales=resolve("locales", defaults.locales),
        default_language=default_language,
        languages=tuple(languages),
        resend_limit=resend_limit,
        sender=sender,
        timezone=timezone,
        redirect_to=data.get("redirect_to", ""),
        smtp=SmtpConfig(
            host=smtp_data.get("host", smtp_defaults.host),
            port=port,
            security=security,
            username=smtp_data.get("username", smtp_defaults.username),
            timeout=timeout,
        ),
    )
