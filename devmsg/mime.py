"""One receiver's email as the exact bytes every (re)send delivers: built once, when the
receiver is created.

Built by hand rather than with `email.message.EmailMessage`, which costs 1.5-2 ms a message
(more than the SMTP exchange); the result is checked against Python's own parser in the
tests. Headers are encoded per RFC 2047 when not ASCII; bodies are 7bit when they can be,
else quoted-printable."""

from __future__ import annotations

import binascii
import datetime as dt
import functools
import re
import secrets
import time
from email.utils import format_datetime, formataddr, parseaddr

from devmsg.render import one_line

_MAX_LINE = 998


@functools.lru_cache(maxsize=16)
def _id_domain(sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "devmsg.invalid"
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "devmsg.invalid"


def new_message_id(sender: str) -> str:
    """Unique without coordination: time, then 96 random bits from the OS."""
    return f"<{time.time_ns()}.{secrets.token_hex(12)}@{_id_domain(sender)}>"


def date_header(now: dt.datetime) -> str:
    return format_datetime(now)


def encode_words(value: str) -> str:
    """RFC 2047 encoded words (base64), folded; chunks never split a character."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in value:
        n = len(char.encode("utf-8"))
        if size + n > 45:  # 45 bytes -> 60 base64 characters: a word stays under 76
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += n
    words.append("".join(chunk))
    return "\r\n ".join(
        "=?utf-8?b?" + binascii.b2a_base64(w.encode("utf-8"), newline=False).decode() + "?="
        for w in words
    )


def _header(name: str, value: str) -> str:
    if value.isascii() and len(value) < 900:
        return f"{name}: {value}"  # folding is optional below SMTP's 998 characters
    return f"{name}: {encode_words(value)}"


def _address(name: str, address: str, smtputf8: bool) -> str:
    name = one_line(name)
    if smtputf8:
        # With SMTPUTF8 the header carries UTF-8 as is (RFC 6532).
        if not name:
            return address
        if re.search(r'[()<>@,;:\\".\[\]]', name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{address}>"
    if not name:
        return address
    if name.isascii():
        return formataddr((name, address))
    return f"{encode_words(name)} <{address}>"


def _part(content_type: str, body: str) -> str:
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    lines = body.split("\n")
    if body.isascii() and all(len(line) <= _MAX_LINE for line in lines):
        encoding, payload = "7bit", "\r\n".join(lines)
    else:
        encoding = "quoted-printable"
        payload = binascii.b2a_qp(body.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n{payload}"
    )


def build(
    *,
    sender: str,
    address: str,
    name: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    date: str,
    smtputf8: bool,
    headers: tuple[tuple[str, str], ...] = (),
    attachments: tuple = (),
) -> bytes | list:
    """The email's bytes; with attachments, its pieces (bytes, and each attachment's body
    as the Shared bytes all receivers carry: see devmsg.content)."""
    lines = [
        f"From: {sender}",  # config.format_sender made it a header, once
        f"To: {_address(name, address, smtputf8)}",
        _header("Subject", one_line(subject)) if not smtputf8 else f"Subject: {one_line(subject)}",
        f"Date: {date}",
        f"Message-ID: {message_id}",
    ]
    for name, value in headers:
        lines.append(f"{name}: {value}" if smtputf8 else _header(name, value))
    lines.append("MIME-Version: 1.0")
    if not html:
        body = _part("text/plain", text)
    else:
        boundary = "=_devmsg_" + secrets.token_hex(12)
        body = (
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
            + f"--{boundary}\r\n{_part('text/plain', text)}\r\n"
            + f"--{boundary}\r\n{_part('text/html', html)}\r\n"
            + f"--{boundary}--\r\n"
        )
    if not body.endswith("\r\n"):
        body += "\r\n"
    head = "\r\n".join(lines) + "\r\n"
    if not attachments:
        return (head + body).encode("utf-8")
    mixed = "=_devmsg_" + secrets.token_hex(12)
    pieces: list = [
        (head + f'Content-Type: multipart/mixed; boundary="{mixed}"\r\n\r\n'
         f"--{mixed}\r\n{body}").encode("utf-8")
    ]  # fmt: skip
    for attachment in attachments:
        # The line break before a delimiter is the delimiter's (RFC 2046): one more keeps
        # the part before it whole.
        pieces += [f"\r\n--{mixed}\r\n".encode() + attachment.head(), attachment.body]
    pieces.append(f"\r\n--{mixed}--\r\n".encode())
    return pieces


# Anchored: a header given from outside cannot start a line with it.
_BOUNDARY = re.compile(rb'\r\nContent-Type: multipart/alternative; boundary="([^"]+)"')
_PART = re.compile(rb"Content-Transfer-Encoding: (7bit|quoted-printable)\r\n\r\n(.*)", re.S)


def bodies(message: bytes) -> tuple[str, str]:
    """(plain text, HTML) back out of bytes `build` made: the inverse of `build` for bodies
    without a carriage return (`build` turns CR into line breaks; `content.pack` keeps such
    bodies itself)."""
    found = _BOUNDARY.search(message.split(b"\r\n\r\n", 1)[0])
    if found is None:  # no HTML: a single text part
        return _decode(message.split(b"\r\nMIME-Version: 1.0\r\n", 1)[1]), ""
    delimiter = b"--" + found[1]
    parts = message.split(b"\r\n" + delimiter)
    # [headers, CRLF + text part, CRLF + html part, "--" CRLF]
    return _decode(parts[1][2:]), _decode(parts[2][2:])


def _decode(part: bytes) -> str:
    match = _PART.search(part)
    assert match is not None  # a part `build` made
    encoding, payload = match[1], match[2]
    if encoding == b"7bit":
        return payload.replace(b"\r\n", b"\n").decode("ascii")
    return binascii.a2b_qp(payload.replace(b"\r\n", b"\n")).decode("utf-8")
