"""VERP: a return path (the envelope sender, MAIL FROM) that names its receiver, so that a
bounce sent back to it says which receiver bounced. The token is the receiver's id and a
keyed MAC of it (HMAC-SHA256, 65 bits, base32): a forged bounce cannot name a receiver.
Lowercase letters and digits only, since some systems fold a local part's case."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable

PLACEHOLDER = "{token}"
_MAC_LENGTH = 13  # base32 characters: 65 bits


def check_template(template: str) -> str | None:
    """Why this return path cannot be used, or None: one {token}, in the local part."""
    if template.count(PLACEHOLDER) != 1:
        return "must contain {token} once, as in bounces+{token}@example.org"
    local, at, domain = template.rpartition("@")
    if not at or PLACEHOLDER not in local or not domain or "@" in local:
        return "must be an address with {token} in its local part (before the @)"
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`|~.{}-]+", local) or not re.fullmatch(
        r"[A-Za-z0-9.-]+", domain
    ):
        return "must be a plain ASCII address"
    return None


def _mac(key: bytes, receiver_id: int) -> str:
    digest = hmac.new(key, f"receiver:{receiver_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:_MAC_LENGTH].lower()


def token(key: bytes, receiver_id: int) -> str:
    return f"{receiver_id}-{_mac(key, receiver_id)}"


def return_path(template: str, key: bytes, receiver_id: int) -> str:
    return template.replace(PLACEHOLDER, token(key, receiver_id))


class Matcher:
    """Finds this template's return paths in text, and says which receiver each names."""

    def __init__(self, template: str, key: bytes) -> None:
        prefix, _, suffix = template.partition(PLACEHOLDER)
        self._key = key
        self._pattern = re.compile(
            r"(?<![\w.+-])" + re.escape(prefix) + rf"([0-9]{{1,18}})-([0-9a-z]{{{_MAC_LENGTH}}})"
            + re.escape(suffix) + r"(?![\w-])",
            re.IGNORECASE,
        )  # fmt: skip

    def tokens(self, texts: Iterable[str]) -> tuple[list[int], int]:
        """(receiver ids with a valid MAC, in order found, once each; how many had a bad
        one)."""
        found: list[int] = []
        forged = 0
        for text in texts:
            for match in self._pattern.finditer(text):
                receiver_id, mac = int(match[1]), match[2].lower()
                if not hmac.compare_digest(mac, _mac(self._key, receiver_id)):
                    forged += 1
                elif receiver_id not in found:
                    found.append(receiver_id)
        return found, forged
