"""Headers given from outside (--header, headers=, --reply-to, a template's headers.txt):
never one devmsg writes itself, never a line break (that is header injection)."""

from __future__ import annotations

import re

from devmsg.errors import InputError

# Headers devmsg writes itself: given from outside they would contradict or duplicate them.
OWNED = ("from", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version")
_NAME = re.compile(r"[!-9;-~]+")  # a header's name: printable ASCII but the colon


def extra_header(name: str, value: str, where: str) -> tuple[str, str]:
    """A header given from outside (--header, headers=, headers.txt, --reply-to), checked:
    never one devmsg writes, never a CR or LF (that is header injection)."""
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise InputError(f"{where}: not a header name: {name!r}", param="headers")
    if name.lower() in OWNED or name.lower().startswith("content-"):
        raise InputError(f"{where}: devmsg writes the {name} header itself", param="headers")
    if "\r" in value or "\n" in value:
        raise InputError(
            f"{where}: a line break in the {name} header's value (header injection)",
            param="headers",
        )
    if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", value):
        raise InputError(f"{where}: a control character in the {name} header", param="headers")
    return name, value.strip()


def parse_header_line(line: str, where: str) -> tuple[str, str]:
    """`Name: value`, as --header and headers.txt give it."""
    name, colon, value = line.partition(":")
    if not colon:
        raise InputError(f"{where}: give a header as 'Name: value', not {line!r}", param="headers")
    return extra_header(name, value, where)
