"""Where bounce mail waits: one message on stdin (an MTA's alias pipe), an mbox file, a
Maildir, or an IMAP folder over TLS. Each source yields `Letter`s; `done()` marks one as
processed (a Maildir message moves to cur/ with the seen flag, an IMAP one is flagged
\\Seen or moved), and is called only after what it reported is committed, so that a crash
in between reads it again (a second read changes nothing)."""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote, urlsplit

from devmsg.errors import InputError

if TYPE_CHECKING:
    import imaplib


@dataclass
class Letter:
    label: str  # which message, for people: "stdin", "mbox message 3", a file name
    raw: bytes | None  # None: over the size limit, not read
    size: int
    done: Callable[[], None] = lambda: None


def from_stdin(stream: BinaryIO, limit: int) -> Iterator[Letter]:
    raw = stream.read(limit + 1)
    too_big = len(raw) > limit
    if too_big:
        size = len(raw)
        while chunk := stream.read(1 << 20):  # drain it: a pipe's writer must not block
            size += len(chunk)
        yield Letter("stdin", None, size)
    else:
        yield Letter("stdin", raw, len(raw))


def from_mbox(path: Path, limit: int) -> Iterator[Letter]:
    import mailbox

    if not path.is_file():
        raise InputError(f"{path}: no such mbox file")
    box = mailbox.mbox(path, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            raw = box.get_bytes(key)
            yield Letter(f"{path.name} message {number}", raw if len(raw) <= limit else None,
                         len(raw))  # fmt: skip
    finally:
        box.close()


def from_maildir(path: Path, limit: int) -> Iterator[Letter]:
    """new/, then the messages in cur/ not yet seen. Processed: moved to cur/, flag S."""
    if not (path / "new").is_dir() or not (path / "cur").is_dir():
        raise InputError(f"{path}: not a Maildir (no new/ and cur/ folders)")
    for sub in ("new", "cur"):
        for entry in sorted(os.scandir(path / sub), key=lambda e: e.name):
            if not entry.is_file() or entry.name.startswith("."):
                continue
            name, _, info = entry.name.partition(":")
            flags = info[2:] if info.startswith("2,") else ""
            if sub == "cur" and "S" in flags:
                continue
            size = entry.stat().st_size
            raw = Path(entry.path).read_bytes() if size <= limit else None
            seen = f"{name}:2,{''.join(sorted(set(flags + 'S')))}"
            yield Letter(f"{sub}/{entry.name}", raw, size,
                         done=_rename(entry.path, str(path / "cur" / seen)))  # fmt: skip


def _rename(source: str, target: str) -> Callable[[], None]:
    def done() -> None:
        with contextlib.suppress(FileNotFoundError):  # another ingest took it meanwhile
            os.rename(source, target)

    return done


@dataclass(frozen=True)
class ImapUrl:
    host: str
    port: int
    user: str
    folder: str

    @classmethod
    def parse(cls, url: str) -> ImapUrl:
        parts = urlsplit(url)
        if parts.scheme == "imap":
            raise InputError(f"{url}: use imaps:// (IMAP over TLS)", param="imap")
        if parts.scheme != "imaps" or not parts.hostname:
            raise InputError(f"{url}: not an IMAP URL such as imaps://user@host/INBOX",
                             param="imap")  # fmt: skip
        if parts.password is not None:
            raise InputError(f"imaps://{parts.hostname}: no password in the URL; use "
                             "$DEVMSG_IMAP_PASSWORD", param="imap")  # fmt: skip
        if not parts.username:
            raise InputError(f"imaps://{parts.hostname}: the URL names no user", param="imap")
        try:
            port = parts.port or 993
        except ValueError:
            raise InputError(f"{url}: not a port number", param="imap") from None
        folder = unquote(parts.path.strip("/")) or "INBOX"
        return cls(parts.hostname, port, unquote(parts.username), folder)


def from_imap(
    url: ImapUrl, password: str, limit: int, ca_file: Path | None, timeout: float,
    move_to: str | None,
) -> Iterator[Letter]:  # fmt: skip
    """The unseen messages of the folder, read without marking them; processed: flagged
    \\Seen, or moved to `move_to` (MOVE, or COPY and expunge where MOVE is not offered)."""
    import imaplib

    where = f"imaps://{url.user}@{url.host}:{url.port}/{url.folder}"
    if not password:
        raise InputError(f"{where}: no password: set $DEVMSG_IMAP_PASSWORD")
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    try:
        imap = imaplib.IMAP4_SSL(url.host, url.port, ssl_context=context, timeout=timeout)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise InputError(f"{where}: cannot connect: {_reason(exc)}") from None
    try:
        try:
            imap.login(url.user, password)
        except imaplib.IMAP4.error:
            raise InputError(f"{where}: login refused for {url.user}") from None
        _, capabilities = imap.capability()  # after login: the server's full list
        movable = b"MOVE" in b" ".join(capabilities or []).upper().split()
        status, _ = imap.select(_quote(url.folder))
        if status != "OK":
            raise InputError(f"{where}: no such folder")
        _, data = imap.uid("SEARCH", "UNSEEN")
        uids = data[0].split() if data and data[0] else []
        for uid in uids:
            _, sized = imap.uid("FETCH", uid, "(RFC822.SIZE)")
            size = _size(sized)
            raw = None
            if size <= limit:
                _, fetched = imap.uid("FETCH", uid, "(BODY.PEEK[])")
                raw = next((part[1] for part in fetched if isinstance(part, tuple)), b"")
            yield Letter(f"{url.folder} uid {uid.decode()}", raw, size,
                         done=_imap_done(imap, uid, move_to, movable))  # fmt: skip
        if move_to and not movable:
            imap.expunge()
    except (OSError, imaplib.IMAP4.error) as exc:
        raise InputError(f"{where}: {_reason(exc)}") from None
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            imap.logout()


def _imap_done(
    imap: imaplib.IMAP4, uid: bytes, move_to: str | None, movable: bool
) -> Callable[[], None]:
    uid_text = uid.decode("ascii")  # digits

    def done() -> None:
        if move_to is None:
            imap.uid("STORE", uid_text, "+FLAGS", "(\\Seen)")
        elif movable:
            imap.uid("MOVE", uid_text, _quote(move_to))
        else:
            imap.uid("COPY", uid_text, _quote(move_to))
            imap.uid("STORE", uid_text, "+FLAGS", "(\\Seen \\Deleted)")

    return done


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _size(data: Any) -> int:
    import re

    text = b" ".join(part if isinstance(part, bytes) else b"" for part in data or [])
    match = re.search(rb"RFC822\.SIZE (\d+)", text)
    return int(match[1]) if match else 0


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]
