"""Attachments of a rendered message: checked once a send, and made into
the MIME pieces every receiver's email carries (an attachment's encoded body is the same
bytes for all of them, stored once: see devmsg.content.Shared)."""

from __future__ import annotations

import binascii
import mimetypes
import os
import re
from dataclasses import dataclass
from email.utils import encode_rfc2231
from pathlib import Path
from typing import Any

from devmsg.content import Shared
from devmsg.errors import InputError


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    body: Shared  # the base64 lines, CRLF-ended

    def head(self) -> bytes:
        """The part's headers (RFC 2231 for a file name that is not ASCII)."""
        name = self.filename
        if name.isascii() and '"' not in name and "\\" not in name:
            params = f'; name="{name}"', f'; filename="{name}"'
        else:
            encoded = encode_rfc2231(name, "utf-8")
            params = f"; name*={encoded}", f"; filename*={encoded}"
        return (
            f"Content-Type: {self.content_type}{params[0]}\r\n"
            f"Content-Disposition: attachment{params[1]}\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode("ascii")


def attachment(item: Any, where: str = "attachments") -> Attachment:
    """A path (its name kept, its type from mimetypes) or (filename, bytes, content_type)."""
    if isinstance(item, str | os.PathLike):
        path = Path(item)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(
                f"{where}: {path}: cannot read: {exc.strerror}", param="attachments"
            ) from None
        filename, content_type = path.name, None
    elif isinstance(item, tuple) and len(item) == 3:
        filename, data, content_type = item
        if not isinstance(filename, str) or not isinstance(data, bytes | bytearray):
            raise InputError(f"{where}: give (filename, bytes, content_type)", param="attachments")
        if content_type is not None and not isinstance(content_type, str):
            raise InputError(f"{where}: content_type must be text", param="attachments")
        data = bytes(data)
    else:
        raise InputError(
            f"{where}: give a path or (filename, bytes, content_type), not {type(item).__name__}",
            param="attachments",
        )
    filename = " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f/\\]", " ", filename).split())
    if not filename:
        raise InputError(f"{where}: the attachment has no file name", param="attachments")
    if not content_type:
        guessed, encoding = mimetypes.guess_type(filename)
        content_type = guessed if guessed and not encoding else "application/octet-stream"
    if not re.fullmatch(r"[\w.+-]+/[\w.+-]+", content_type):
        raise InputError(f"{where}: not a content type: {content_type!r}", param="attachments")
    encoded = b"".join(
        binascii.b2a_base64(data[i : i + 57]).replace(b"\n", b"\r\n")
        for i in range(0, len(data), 57)
    )
    return Attachment(filename, content_type.lower(), Shared.of(encoded))
