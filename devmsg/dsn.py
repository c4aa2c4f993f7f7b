"""Bounce mail -> what it reports: delivery status notifications (RFC 3464), complaint
reports (ARF, RFC 5965), and, for the many bounces in neither form, what flufl.bounce
(Mailman's detectors) finds. Pure: bytes in, a `Parsed` out; no store, no network, no HTML
parsed, no link followed. Bounce mail comes from anyone: `parse` never raises, and what it
cannot read it says why."""

from __future__ import annotations

import datetime as dt
import email
import email.parser
import email.policy
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, cast

KINDS = ("failed", "delayed", "complaint")
# Where the address a bounce was sent to shows (the VERP return path): the headers an MTA
# adds at delivery, and To. Postfix's pipe sets $ORIGINAL_RECIPIENT and $RECIPIENT, Exim's
# $LOCAL_PART, $LOCAL_PART_SUFFIX and $DOMAIN: `addressed_to` reads those.
_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_MESSAGE_ID = re.compile(r"^message-id:[ \t]*(<[^<>\s]{1,250}>)", re.IGNORECASE | re.MULTILINE)
_FIELD_LIMIT = 1000  # characters kept of a diagnostic or a name: reports are other people's


@dataclass(frozen=True)
class Report:
    """One receiver's fate, as a report tells it."""

    kind: str  # failed, delayed or complaint
    recipient: str | None = None  # the address it names (Final-Recipient, Original-Rcpt-To)
    status: str | None = None  # the enhanced status code: 5.1.1
    diagnostic: str | None = None  # the remote server's words: 550 5.1.1 no such user
    reported_by: str | None = None  # the reporting MTA: mx.example.no
    reported_at: dt.datetime | None = None  # when it happened, as the report says (UTC)

    @property
    def mailbox_gone(self) -> bool:
        """5.1.x (bad address) or 5.2.1 (mailbox disabled): the address is dead. 5.2.2
        (mailbox full) and 5.7.x (policy) are not about the address."""
        if self.kind != "failed" or self.status is None:
            return False
        klass, subject, detail = self.status.split(".")
        return klass == "5" and (subject == "1" or (subject, detail) == ("2", "1"))


@dataclass
class Parsed:
    reports: list[Report] = field(default_factory=list)
    format: str = ""  # dsn, arf, or the flufl.bounce detector's name
    addressed_to: list[str] = field(default_factory=list)  # where to look for a VERP token
    message_ids: list[str] = field(default_factory=list)  # the original's Message-ID(s)
    identity: str = ""  # the same report read twice has the same identity
    why: str | None = None  # not a report: why


def parse(raw: bytes, environ: dict[str, str] | None = None) -> Parsed:
    """What this bounce reports. `environ`: the pipe's environment, for the recipient an MTA
    passes there."""
    parsed = Parsed(identity=hashlib.sha256(raw).hexdigest())
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        _read(message, raw, parsed)
    except Exception as exc:  # noqa: BLE001 (hostile input: a report of nothing, not a crash)
        parsed.reports = []
        parsed.why = f"unreadable: {type(exc).__name__}"
        return parsed
    for name in ("ORIGINAL_RECIPIENT", "RECIPIENT"):
        if environ and environ.get(name):
            parsed.addressed_to.insert(0, environ[name])
    if environ and environ.get("LOCAL_PART") and environ.get("DOMAIN"):
        local = environ["LOCAL_PART"] + environ.get("LOCAL_PART_SUFFIX", "")
        parsed.addressed_to.insert(
            0, f"{environ.get('LOCAL_PART_PREFIX', '')}{local}@{environ['DOMAIN']}"
        )
    if not parsed.reports and parsed.why is None:
        parsed.why = "not a bounce: no delivery report, complaint or known bounce format"
    return parsed


def _read(message: Message, raw: bytes, parsed: Parsed) -> None:
    own_id = _text(message.get("Message-ID"))
    if own_id:
        parsed.identity = "message-id:" + own_id.strip()
    parsed.addressed_to = [_text(v) for name in _RECIPIENT_HEADERS
                           for v in (message.get_all(name) or [])]  # fmt: skip
    sent = _date(message.get("Date"))
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            parsed.format = parsed.format or "dsn"
            parsed.reports += _delivery_status(part, sent)
        elif kind == "message/feedback-report":
            parsed.format = parsed.format or "arf"
            parsed.reports += _feedback(part, sent)
        elif kind in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            _returned(part, parsed)
    text = raw.decode("latin-1")  # for searching only: any bytes decode
    if not parsed.reports:
        _fallback(message, text, parsed, sent)
    if not parsed.message_ids:  # a bounce that quotes the original as text
        parsed.message_ids = [m for m in _MESSAGE_ID.findall(text) if m != own_id.strip()]


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a report part: the email package parses message/delivery-status
    into them; other report types arrive as one message or as text."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    body = cast(bytes, part.get_payload(decode=True) or b"")
    parser = email.parser.HeaderParser(policy=email.policy.compat32)
    text = body.decode("utf-8", "replace").replace("\r\n", "\n")
    return [
        parser.parsestr(chunk + "\n") for chunk in re.split(r"\n[ \t]*\n", text) if chunk.strip()
    ]


def _delivery_status(part: Message, sent: dt.datetime | None) -> list[Report]:
    blocks = _blocks(part)
    if not blocks:
        return []
    head, recipients = blocks[0], blocks[1:]
    mta = _typed(head.get("Reporting-MTA"))
    arrived = _date(head.get("Arrival-Date"))
    reports = []
    for block in recipients:
        action = _text(block.get("Action")).strip().lower()
        if action not in ("failed", "delayed"):
            continue  # delivered, relayed, expanded: nothing went wrong
        status = _status(_text(block.get("Status")))
        if action == "failed" and status and status[0] != "5":
            action = "delayed" if status[0] == "4" else action
        reports.append(
            Report(
                kind=action,
                recipient=_typed(block.get("Final-Recipient"))
                or _typed(block.get("Original-Recipient")),
                status=status,
                diagnostic=_typed(block.get("Diagnostic-Code")),
                reported_by=mta or _typed(block.get("Remote-MTA")),
                reported_at=_date(block.get("Last-Attempt-Date")) or arrived or sent,
            )
        )  # fmt: skip
    return reports


def _feedback(part: Message, sent: dt.datetime | None) -> list[Report]:
    fields = Message()
    for block in _blocks(part):
        for name, value in block.items():
            fields[name] = value
    kind = _text(fields.get("Feedback-Type")).strip().lower()
    if kind == "not-spam":
        return []
    named = [_text(v).strip() for v in fields.get_all("Original-Rcpt-To") or []]
    recipients: list[str | None] = [*named] or [None]
    when = _date(fields.get("Arrival-Date")) or _date(fields.get("Received-Date")) or sent
    by = _typed(fields.get("Reporting-MTA")) or _clean(_text(fields.get("User-Agent"))) or None
    return [
        Report(kind="complaint", recipient=recipient, diagnostic=f"feedback: {kind or 'abuse'}",
               reported_by=by, reported_at=when)
        for recipient in recipients
    ]  # fmt: skip


def _returned(part: Message, parsed: Parsed) -> None:
    """The original, or its headers, returned with a report: its Message-ID, and its
    Return-Path (where a complaint shows the VERP address it was sent from)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        headers = payload[0] if payload and isinstance(payload[0], Message) else Message()
    else:
        body = cast(bytes, part.get_payload(decode=True) or b"")
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(body)
    message_id = _text(headers.get("Message-ID")).strip()
    if message_id and message_id not in parsed.message_ids:
        parsed.message_ids.append(message_id)
    for name in ("Return-Path", "Sender"):
        parsed.addressed_to += [_text(v) for v in headers.get_all(name) or []]


def _fallback(message: Message, text: str, parsed: Parsed, sent: dt.datetime | None) -> None:
    """Neither a DSN nor a complaint report: Mailman's detectors, which know Exim's,
    Exchange's, Yahoo's, qmail's and a dozen other formats. A detector that trips over a
    hostile message is a format not recognised."""
    from flufl.bounce import _scan

    for detector in _scan._DETECTORS:
        if detector.__name__ == "DSN":
            continue  # read above, with the fields flufl.bounce does not give
        try:
            temporary, permanent = detector().process(message)
        except Exception:  # noqa: BLE001 (not this format)
            continue
        if not (temporary or permanent):
            continue
        parsed.format = detector.__name__.lower()
        sender = email.utils.parseaddr(_text(message.get("From")))[1]
        by = sender.rpartition("@")[2] or None
        for kind, found in (("failed", permanent), ("delayed", temporary)):
            for address in sorted(found):
                recipient = (
                    address.decode("utf-8", "replace")
                    if isinstance(address, bytes)
                    else str(address)
                )
                parsed.reports.append(
                    Report(
                        kind=kind, recipient=recipient, status=_status_near(text, recipient, kind),
                        diagnostic=_line_near(text, recipient), reported_by=by, reported_at=sent,
                    )
                )  # fmt: skip
        return


def _status_near(text: str, address: str, kind: str) -> str | None:
    """An enhanced status code in the bounce's text, the one nearest after the address."""
    at = text.lower().find(address.lower())
    window = text[at:] if at >= 0 else text
    wanted = "5" if kind == "failed" else "4"
    for match in _STATUS.finditer(window):
        if match[1] == wanted:
            return ".".join(match.groups())
    return None


def _line_near(text: str, address: str) -> str | None:
    """The remote server's words: the first line after the address that reads like an
    SMTP reply."""
    at = text.lower().find(address.lower())
    for line in (text[at:] if at >= 0 else text).splitlines()[:40]:
        match = re.search(r"\b[45]\d\d[ -].*", line)
        if match:
            return _clean(match[0])
    return None


def _status(value: str) -> str | None:
    match = _STATUS.search(value or "")
    return None if match is None else ".".join(match.groups())


def _text(value: Any) -> str:
    """A header value as text, whatever it holds (compat32 may give a Header object)."""
    if value is None:
        return ""
    return _clean(str(value), limit=None)


def _typed(value: Any) -> str | None:
    """`rfc822; ola@example.no` -> `ola@example.no`; `dns; mx.example.no` -> the name."""
    text = _text(value)
    if not text:
        return None
    _, semicolon, rest = text.partition(";")
    return _clean(rest if semicolon else text) or None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _clean(text: str, limit: int | None = _FIELD_LIMIT) -> str:
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if limit is None else text[:limit]


def _date(value: Any) -> dt.datetime | None:
    text = _text(value)
    if not text:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        return when.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return None
