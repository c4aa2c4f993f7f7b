"""Counts in human output: `1 receiver`, `2 receivers`. The one helper every summary uses.
A leaf."""

from __future__ import annotations

_PLURALS = {"address": "addresses"}  # the nouns whose plural is not noun + "s"


def plural(count: int, noun: str) -> str:
    """`1 receiver`, `0 receivers`, `2 addresses`."""
    return f"{count} {noun if count == 1 else _PLURALS.get(noun, noun + 's')}"
