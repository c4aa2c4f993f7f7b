"""Languages: negotiation against the configured languages, gettext catalogs, and
locale-aware formatting. The locale is always passed explicitly; nothing reads the
process locale.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.core import LOCALE_ALIASES, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.support import NullTranslations, Translations

from devmsg.errors import ConfigError, InputError


def negotiate(requested: str | None, available: tuple[str, ...], default: str) -> str:
    """The configured language that best fits `requested` (`nb_NO`, `nb-NO`, `NB` -> `nb`).

    Unknown, empty or unparsable requests get `default`.
    """
    if not requested or not requested.strip():
        return default
    tag = requested.strip().replace("-", "_")
    by_lower = {lang.lower(): lang for lang in available}
    tag = LOCALE_ALIASES.get(tag.lower(), tag)  # "no" -> "nb_NO"
    found = negotiate_locale([tag], list(available))
    if found:
        return by_lower.get(found.lower(), found)
    try:
        locale = Locale.parse(tag)
    except (ValueError, UnknownLocaleError):
        return default
    for candidate in (str(locale), locale.language):
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    return default


def catalog_path(locales: Path, language: str) -> Path:
    return locales / language / "LC_MESSAGES" / "messages.po"


def catalog_stamp(locales: Path, language: str) -> tuple:
    """What changes when the language's catalog files change: their modification times."""
    po = _catalog_file(str(locales), language)
    return _mtime(po), _mtime(po[:-3] + ".mo")


@lru_cache(maxsize=64)
def _catalog_file(locales: str, language: str) -> str:
    return str(catalog_path(Path(locales), language))


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def load_translations(locales: Path, language: str, required: bool) -> NullTranslations:
    """The catalog for `language`: the `.mo` when it is newer than the `.po`, else the `.po`
    compiled in memory. A missing catalog is an error when `required` (Babel would quietly
    fall back to the untranslated text)."""
    po = catalog_path(locales, language)
    po_mtime, mo_mtime = catalog_stamp(locales, language)
    return _load_cached(po, po.with_suffix(".mo"), po_mtime, mo_mtime, language, required)


@lru_cache(maxsize=64)
def _load_cached(
    po: Path, mo: Path, po_mtime: float | None, mo_mtime: float | None, language: str,
    required: bool,
) -> Any:  # fmt: skip
    if mo_mtime is not None and (po_mtime is None or mo_mtime >= po_mtime):
        with mo.open("rb") as fh:
            return Translations(fh, domain="messages")
    if po_mtime is None:
        if required:
            raise ConfigError(f"{po}: no catalog for language '{language}' listed in 'languages'")
        return NullTranslations()
    try:
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=language, abort_invalid=True)
    except (PoFileError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{po}: invalid catalog: {exc}") from None
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain="messages")


# --- formatting -----------------------------------------------------------------------------


def _to_datetime(value: Any, tz: ZoneInfo) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise InputError(f"not an ISO 8601 date or time: {value!r}") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # naive means UTC, as in Babel
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(tz)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=tz)
    raise InputError(f"not a date or time: {value!r}")


def _memo(function: Callable[..., str]) -> Callable[..., str]:
    """Cache a formatter: a send formats the same context values for every receiver."""
    cached = lru_cache(maxsize=4096, typed=True)(function)

    def formatter(value: Any, *args: Any) -> str:
        try:
            return cached(value, *args)
        except TypeError:  # an unhashable value
            return function(value, *args)

    return formatter


@_memo
def format_date(value: Any, format: str, language: str, tz: ZoneInfo) -> str:
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise InputError(f"not an ISO 8601 date: {value!r}") from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return babel_dates.format_date(value, format=format, locale=language)
    return babel_dates.format_date(_to_datetime(value, tz).date(), format=format, locale=language)


@_memo
def format_datetime(value: Any, format: str, language: str, tz: ZoneInfo) -> str:
    return babel_dates.format_datetime(
        _to_datetime(value, tz), format=format, tzinfo=tz, locale=language
    )


@_memo
def format_number(value: Any, language: str) -> str:
    if isinstance(value, str):
        try:
            value = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            raise InputError(f"not a number: {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        raise InputError(f"not a number: {value!r}")
    return babel_numbers.format_decimal(value, locale=language)
