"""Checks of the Python API's arguments. A wrong argument is an InputError that names the
API's parameter (`recipients[2]: expected str or Recipient, got int`); the CLI turns the
parameter into its option. A leaf: it imports nothing of devmsg but the errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

from devmsg.errors import InputError


def _names(expected: type | tuple[type, ...]) -> str:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(kind.__name__ for kind in kinds)


def check_type(param: str, value: Any, expected: Any, *, optional: bool = False) -> None:
    """`value` is an instance of `expected` (a type or a tuple of types); None when
    `optional`. A bool is not an int here."""
    if value is None and optional:
        return
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise InputError(
            f"{param}: expected {_names(expected)}, got {type(value).__name__}", param=param
        )


def check_ids(param: str, ids: Any) -> list[int]:
    """A list (or other collection) of receiver ids, each an int."""
    if isinstance(ids, str | bytes) or not hasattr(ids, "__iter__"):
        raise InputError(f"{param}: expected a list of ints, got {type(ids).__name__}", param=param)
    ids = list(ids)
    for i, value in enumerate(ids):
        check_type(f"{param}[{i}]", value, int)
    return ids


def parse_bound(
    value: Any, param: str, tz: dt.tzinfo, end_of_day: bool
) -> tuple[dt.datetime | None, bool]:
    """A bound of `sent_since`/`sent_until`: a date means the start of that day (since) or
    the whole day (until, exclusive), in the time zone `tz`; a naive datetime is in `tz`
    too; text is ISO 8601."""
    if value is None or value == "":
        return None, False
    if isinstance(value, str):
        text = value.strip()
        try:
            value = (
                dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)
            )
        except ValueError:
            raise InputError(
                f"{param}: not an ISO 8601 date or time: {text!r}", param=param
            ) from None
    check_type(param, value, (str, dt.datetime, dt.date))
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)), False
    start = dt.datetime.combine(value, dt.time(), tzinfo=tz)
    if end_of_day:
        return start + dt.timedelta(days=1), True
    return start, False
