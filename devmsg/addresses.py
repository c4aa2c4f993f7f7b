"""Email addresses: checking one (email-validator, with a fast path for plain ASCII) and
the key of its mailbox. A leaf: the store, the config and the inputs all use it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from devmsg.errors import InputError


@dataclass(frozen=True)
class Address:
    address: str  # normalized, as stored and shown
    envelope: str  # what RCPT TO gets: an IDN domain as punycode
    smtputf8: bool


# The common case, a plain ASCII address, checked without email-validator (which costs
# 0.1 ms an address): dot-atom local part, LDH labels, an alphabetic TLD. Anything else,
# and any A-label ("xn--"), goes to email-validator. A test checks that this never accepts
# what email-validator refuses, and normalizes the same way (the domain lowercased).
_PLAIN = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
_SPECIAL_USE = ("arpa", "invalid", "local", "localhost", "onion", "test")
# RFC 2142 role mailboxes, which email-validator lowercases.
_ROLE_MAILBOXES = frozenset({
    "info", "marketing", "sales", "support", "abuse", "noc", "security", "postmaster",
    "hostmaster", "usenet", "news", "webmaster", "www", "uucp", "ftp",
})  # fmt: skip


def _plain(address: str) -> Address | None:
    match = _PLAIN.fullmatch(address)
    if match is None or len(address) > 254 or address.index("@") > 64:
        return None
    domain = match[1].lower()
    if "xn--" in domain or domain.rsplit(".", 1)[-1] in _SPECIAL_USE:
        return None
    if any(label[2:4] == "--" for label in domain.split(".")):
        return None  # "ab--" is reserved for an IDNA prefix: email-validator decides
    if address[: match.start(1) - 1].lower() in _ROLE_MAILBOXES:
        return None
    normalized = address[: match.start(1)] + domain
    return Address(normalized, normalized, False)


def mailbox_key(address: str) -> str:
    """One mailbox, however it is written: the local part exactly, the domain in any case."""
    local, _, domain = address.strip().rpartition("@")
    return f"{local}@{domain.lower()}"


def _local_domain(domain: str) -> bool:
    """localhost and .test (RFC 2606, 6761): where a developer's capture server lives; and
    a name without a dot (a@x, root@mailhost), which only a local relay can route."""
    domain = domain.rstrip(".").lower()
    if domain and "." not in domain and domain.isascii() and domain.replace("-", "").isalnum():
        return True
    return any(domain == d or domain.endswith("." + d) for d in ("localhost", "test"))


def check_address(address: str, where: str = "", allow_local: bool = False) -> Address:
    """Validate one address. A line break anywhere is invalid: it could inject a header.
    `allow_local` (the config's allow_local_domains) accepts addresses at localhost and
    under .test, which email-validator refuses as special-use."""
    fast = _plain(address.strip())
    if fast is not None:
        return fast
    from email_validator import EmailNotValidError, validate_email  # 20 ms: only when needed

    prefix = f"{where}: " if where else ""
    if "\n" in address or "\r" in address:
        raise InputError(f"{prefix}invalid address {address!r}: contains a line break")
    text = address.strip()
    local, _, domain = text.rpartition("@")
    if allow_local and local and _local_domain(domain):
        # email-validator checks the local part and the domain's syntax; the special-use
        # rule is the one thing set aside, so it checks the address under a test domain.
        try:
            validate_email(f"{local}@{domain.rstrip('.')}.test", check_deliverability=False,
                           test_environment=True, globally_deliverable=False)  # fmt: skip
        except EmailNotValidError as exc:
            raise InputError(f"{prefix}invalid address {address!r}: {exc}") from None
        key = mailbox_key(text)
        return Address(key, key, not key.isascii())
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        hint = ""
        if "@" in text and _local_domain(domain):
            hint = (
                " (allow_local_domains = true in devmsg.toml accepts localhost, .test and a@host)"
            )
        raise InputError(f"{prefix}invalid address {address!r}: {exc}{hint}") from None
    envelope = result.ascii_email or result.normalized
    return Address(result.normalized, envelope, bool(result.smtputf8))
