"""Prebuilt messages: mail devmsg did not render (a Django app's, a sendmail caller's, an
.eml file), checked and made ready to store exactly as it will be sent.

The bytes given are kept, with these changes only: `Bcc` is removed; `Message-ID`, `Date`
and `MIME-Version` are added when missing, and `From` (the config's sender); every line
ends in CRLF. Anything that cannot be sent as given is refused with one line: a message too
big, one that cannot be parsed, one with a bare CR or LF in a header (header injection)."""

from __future__ import annotations

import datetime as dt
import email
import email.message
import email.policy
import email.utils
import re
from dataclasses import dataclass
from typing import Any

from devmsg.errors import InputError

_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")  # a header's name, then its colon
_LINE_END = re.compile(rb"\r\n|\r|\n")
_BLANK = re.compile(rb"\n\r?\n|^\r?\n")  # the empty line after the headers
_FOLDED = re.compile(r"\r?\n[ \t]")  # a folded header's line break: not an injection


@dataclass(frozen=True)
class Prebuilt:
    data: bytes  # what is stored and sent, exactly
    subject: str
    message_id: str
    mailboxes: list[tuple[str, str]]  # (name, address) of To, Cc and Bcc, in order


def prepare(
    message: Any,
    *,
    sender_header: str,
    message_id: str,
    max_size: int,
    now: dt.datetime,
    mailboxes: bool = True,
) -> Prebuilt:
    """The message as it will be stored and sent. `message` is an
    `email.message.Message` (or EmailMessage) or its bytes; `message_id` is used when it
    has none; `mailboxes`: read To, Cc and Bcc (not needed when the envelope is given).
    InputError when it cannot be sent as given."""
    raw = _bytes(message)
    if len(raw) > max_size:
        raise InputError(too_big(len(raw), max_size), param="message")
    if raw.startswith(b"From "):  # an mbox separator, as sendmail drops it
        raw = raw.partition(b"\n")[2]
    # Only the headers go line by line; the body (maybe megabytes) is left in one piece.
    end = _BLANK.search(raw)
    lines = (raw[: end.start()] if end else raw).split(b"\n")
    rest = raw[end.end() :] if end else b""
    crlf = lines[0].endswith(b"\r")
    headers: list[list[bytes]] = []  # each field's lines, without their line ends
    for number, line in enumerate(lines):
        ends_in_cr = line.endswith(b"\r")
        text = line[:-1] if ends_in_cr else line
        if not text:  # only when the message starts with an empty line: no headers
            break
        if b"\r" in text or (crlf and not ends_in_cr and number < len(lines) - 1):
            raise InputError(
                f"header line {number + 1}: a bare CR or LF in a header (header injection?)",
                param="message",
            )
        if text[:1] in (b" ", b"\t") and headers:
            headers[-1].append(text)
        elif _FIELD.match(text):
            headers.append([text])
        else:
            raise InputError(
                f"header line {number + 1} is not a header (Name: value); the message "
                "cannot be parsed",
                param="message",
            )
    if not headers:
        raise InputError("the message has no headers: it cannot be parsed", param="message")
    if b"\r" not in rest:
        body = rest.replace(b"\n", b"\r\n")
    elif rest.count(b"\r") == rest.count(b"\r\n") == rest.count(b"\n"):
        body = rest  # CRLF already
    else:
        body = _LINE_END.sub(b"\r\n", rest)
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"  # the last line ends in CRLF too: SMTP would add it, unrecorded

    names = [field[0].split(b":", 1)[0].strip().lower() for field in headers]
    # Only the headers devmsg reads are parsed (the whole message's parse costs a
    # millisecond): the subject, the Message-ID, and the mailboxes when they are asked for.
    wanted = (b"subject", b"message-id") + ((b"to", b"cc", b"bcc") if mailboxes else ())
    values: dict[bytes, list[str]] = {}
    for field, name in zip(headers, names, strict=True):
        if name in wanted:
            raw = b" ".join(line.strip() for line in field).split(b":", 1)[1].strip()
            values.setdefault(name, []).append(raw.decode("utf-8", "replace"))
    found = []
    for header in ("to", "cc", "bcc") if mailboxes else ():
        for value in values.get(header.encode(), []):
            try:
                addresses = _factory(header, value).addresses
            except (AttributeError, ValueError, IndexError, TypeError):
                raise InputError(
                    f"{header.title()}: cannot read its addresses", param="message"
                ) from None
            for address in addresses:
                found.append((str(address.display_name or ""), str(address.addr_spec)))
    added = []
    if b"from" not in names:
        added.append(f"From: {sender_header}".encode())
    if b"date" not in names:
        added.append(f"Date: {email.utils.format_datetime(now)}".encode())
    if b"message-id" not in names:
        added.append(f"Message-ID: {message_id}".encode())
    else:
        message_id = " ".join(values[b"message-id"][0].split())[:255]
    if b"mime-version" not in names:
        added.append(b"MIME-Version: 1.0")
    kept = [b"\r\n".join(field) for field, name in zip(headers, names, strict=True)
            if name != b"bcc"]  # fmt: skip
    data = b"\r\n".join([*kept, *added]) + b"\r\n\r\n" + body
    if len(data) > max_size:
        raise InputError(too_big(len(data), max_size), param="message")
    # decode_header, not the default policy's parser: linear in a huge subject's length
    subject = _decoded(values.get(b"subject", [""])[0])
    return Prebuilt(data, " ".join(subject.split()), message_id, found)


def _factory(name: str, value: str) -> Any:
    return email.policy.default.header_factory(name, value)


def _bytes(message: Any) -> bytes:
    if isinstance(message, bytes | bytearray | memoryview):
        return bytes(message)
    if isinstance(message, email.message.Message):
        for name, value in message.items():
            if re.search(r"[\r\n]", _FOLDED.sub(" ", str(value))):
                raise InputError(
                    f"{name}: a CR or LF in a header value (header injection?)", param="message"
                )
        try:
            # Django's messages take a line separator, not a policy; either way line ends
            # are made CRLF in `prepare`, which has less to do when they are CRLF already.
            try:
                return message.as_bytes(linesep="\r\n")  # type: ignore[call-arg]  # Django's
            except TypeError:
                return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        except (TypeError, ValueError, LookupError, UnicodeError) as exc:
            raise InputError(f"the message cannot be written out: {exc}", param="message") from None
    raise InputError(
        f"message: expected an email.message.Message or bytes, got {type(message).__name__}",
        param="message",
    )


def too_big(size: int, limit: int) -> str:
    return (
        f"the message is {_megabytes(size)}, more than max_message_size ({_megabytes(limit)}); "
        "nothing was stored"
    )


def _megabytes(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size:,} bytes"
    return f"{size / (1024 * 1024):.1f} MB"


def describe(data: bytes) -> dict:
    """What `show` says of a stored email beside its bodies: its headers, decoded, and its
    attachments (filename, content type, size)."""
    # compat32 and decode_header: linear in the header's length (the default policy's parser
    # takes 50 s for a 1 MB subject of encoded words).
    parsed = email.message_from_bytes(data, policy=email.policy.compat32)
    headers = []
    for name, value in parsed.items():
        text = _decoded(str(value))
        headers.append([name, " ".join(text.split())])
    attachments = []
    for part in parsed.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        if filename:  # RFC 2047 in a parameter too, as some mailers write it
            filename = _decoded(filename)
        if filename is None and part.get_content_disposition() != "attachment":
            continue
        payload = part.get_payload(decode=True) or b""
        attachments.append({"filename": filename or "", "content_type": part.get_content_type(),
                            "size": len(payload)})  # fmt: skip
    return {"headers": headers, "attachments": attachments}


def _decoded(text: str) -> str:
    """RFC 2047 encoded words decoded; as written when they do not decode."""
    if "=?" not in text:
        return text
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(text)))
    except (ValueError, IndexError, LookupError, UnicodeError):
        return text
