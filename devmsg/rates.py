"""The `[rate_limits]` table of devmsg.toml: rates (`14/s`, `50000/24h`) and the limits
they make. A leaf beside the config's other parsing; the limiter is `devmsg.limits`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from devmsg.errors import ConfigError

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


@dataclass(frozen=True)
class Limit:
    scope: str  # "*", or a domain (and its subdomains), lower case, IDNA
    count: int
    window: float  # seconds
    text: str  # as configured: "14/s"

    @property
    def name(self) -> str:
        """The limit's identity in the store: a changed count keeps the permits counted."""
        return f"{self.scope} {self.window:g}s"

    def covers(self, domain: str) -> bool:
        return self.scope == "*" or domain == self.scope or domain.endswith("." + self.scope)


def parse_rate(text: str) -> tuple[int, float]:
    """`14/s`, `100/m`, `50000/24h` -> (count, window seconds). ValueError if not."""
    match = _RATE.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not a rate: {text!r} (use COUNT/UNIT such as 14/s, 100/m, 50000/24h)")
    count, number, unit = int(match[1]), int(match[2] or 1), match[3]
    if count < 1 or number < 1:
        raise ValueError(f"not a rate: {text!r} (the count and the window must be 1 or more)")
    return count, float(number * _UNIT_SECONDS[unit])


def _domain(text: str) -> str:
    domain = text.strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def parse_limits(data: dict, where: str) -> tuple[Limit, ...]:
    """The `[rate_limits]` table: scope -> a rate or a list of rates."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: key 'rate_limits' must be a table")
    limits = []
    for scope, rates in data.items():
        key = f"rate_limits.{scope!r}" if scope != "*" else "rate_limits.'*'"
        rates = [rates] if isinstance(rates, str) else rates
        if not isinstance(rates, list) or not rates:
            raise ConfigError(f'{where}: key {key} must be a rate or a list, such as ["14/s"]')
        domain = "*" if scope.strip() == "*" else _domain(scope)
        if domain != "*" and ("@" in domain or not domain or " " in domain):
            raise ConfigError(f'{where}: key {key}: not a domain (use "*" or example.org)')
        windows = set()
        for rate in rates:
            try:
                count, window = parse_rate(rate)
            except ValueError as exc:
                raise ConfigError(f"{where}: key {key}: {exc}") from None
            if window in windows:
                raise ConfigError(f"{where}: key {key}: two limits with the same window")
            windows.add(window)
            limits.append(Limit(domain, count, window, rate.strip()))
    return tuple(limits)
