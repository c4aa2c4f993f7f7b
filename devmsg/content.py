"""How a receiver's content is kept small in the store: the exact email bytes, compressed
(zlib), and nothing else. The plain text and the HTML are what those bytes carry, so `show`
reads them back out of the email (`mime.bodies`); only a body that the email cannot give
back exactly (one with a carriage return, which email turns into a line break) is kept as
well, compressed beside it. The store holds one copy instead of three, and every resend
delivers exactly the stored bytes."""

from __future__ import annotations

import json
import zlib

LEVEL = 3  # 2 KB of email: 17 us at 1, 23 us at 3, 37 us at 6, for 10% less from 1 to 6


def pack(text: str, html: str, message: bytes, verify: bool = False) -> tuple[bytes, bytes | None]:
    """(compressed email, compressed bodies or None when the email gives them back).

    Bytes `mime.build` made give back any body without a carriage return (a property the
    tests check with generated text). `verify` decodes to be sure, for bytes of unknown
    origin (a store written by an older devmsg)."""
    exact = "\r" not in text and "\r" not in html
    if exact and verify:
        from devmsg import mime

        try:
            exact = mime.bodies(message) == (text, html)
        except (IndexError, TypeError, ValueError, UnicodeDecodeError):
            exact = False
    bodies = None
    if not exact:
        bodies = zlib.compress(json.dumps([text, html], ensure_ascii=False).encode(), LEVEL)
    return zlib.compress(message, LEVEL), bodies


def email(packed: bytes) -> bytes:
    return zlib.decompress(packed)


def bodies(packed: bytes, extra: bytes | None) -> tuple[str, str]:
    """(plain text, HTML) exactly as rendered and stored."""
    if extra is not None:
        text, html = json.loads(zlib.decompress(extra))
        return text, html
    from devmsg import mime  # only `show` reads bodies: not on the delivery path

    return mime.bodies(email(packed))
