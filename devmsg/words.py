"""Counts in human output: `1 receiver`, `2 receivers`. The one helper every summary uses.
A leaf."""

from __future__ import annotations

_PLURALS = {"address": "addresses", "entry": "entries", "is": "are", "was": "were"}


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`1 receiver`, `0 receivers`, `2 addresses`; `many` for an irregular plural."""
    return f"{count} {noun if count == 1 else many or _PLURALS.get(noun, noun + 's')}"
