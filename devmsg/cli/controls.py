"""Control characters made visible, without rich: for the console (`terminal`) and for
lines written to stderr as they are (`devmsg worker`'s log when stderr is not a terminal)."""

from __future__ import annotations

import re

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _picture(match: re.Match) -> str:
    code = ord(match[0])
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode control picture: ESC -> ␛, CR -> ␍
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\\x{code:02x}"  # C1 has no pictures


def visible(text: str) -> str:
    """`text` with every control character but newline and tab made visible."""
    return CONTROL.sub(_picture, text)
