"""From a send's input to the rows it stores: each receiver checked (one mail per mailbox),
its language chosen, and its mail rendered and built, exactly as it will be sent."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from devmsg.addresses import Address, mailbox_key
from devmsg.config import Config
from devmsg.errors import InputError, UsageError
from devmsg.inputs import Recipient

if TYPE_CHECKING:
    from devmsg.attachments import Attachment
    from devmsg.render import Rendered


def _eol(body: str) -> str:
    return body if not body or body.endswith("\n") else body + "\n"


def _recipient(value: object, index: int) -> Recipient:
    """A Recipient, or a plain address string as one; anything else is an InputError."""
    if isinstance(value, str):
        return Recipient(value)
    where = f"recipients[{index}]"
    if not isinstance(value, Recipient):
        raise InputError(
            f"{where}: expected an address (str) or Recipient, got {type(value).__name__}",
            param="recipients",
        )
    for field, kinds in (("address", str), ("name", str | None), ("language", str | None)):
        if not isinstance(getattr(value, field), kinds):
            kind = type(getattr(value, field)).__name__
            raise InputError(f"{where}.{field} must be text, not {kind}", param="recipients")
    return value


def check_receivers(
    recipients: Iterable[Recipient | str], language: str | None, cfg: Config
) -> tuple[list[tuple[Address, str, str]], int, dict[str, int]]:
    """Check every receiver before anything is stored; keep only what is needed, compact:
    [(address, name, language)], how many duplicates were merged, and the languages asked
    for that are not configured (-> how many receivers, rendered in the default language).
    One mail per mailbox: the same local part, and the domain in any case; the first
    occurrence wins (its name and language)."""
    from devmsg import i18n
    from devmsg.addresses import check_address
    from devmsg.render import one_line

    if isinstance(recipients, str | bytes | Recipient) or not hasattr(recipients, "__iter__"):
        raise InputError(
            "recipients: expected a list of addresses (str) or Recipient, "
            f"got {type(recipients).__name__}",
            param="recipients",
        )
    checked, seen, duplicates = [], set(), 0
    fallbacks: dict[str, int] = {}
    for position, recipient in enumerate(recipients, start=1):
        recipient = _recipient(recipient, position - 1)
        where = recipient.source or f"receiver {position}"
        address = check_address(recipient.address, where, cfg.allow_local_domains)
        key = mailbox_key(address.address)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        asked = (recipient.language or language or "").strip()
        lang = i18n.negotiate(asked, cfg.languages, "")  # "": no configured language fits
        if not lang:
            lang = cfg.default_language
            if asked:
                fallbacks[asked] = fallbacks.get(asked, 0) + 1
        checked.append((address, one_line(recipient.name or ""), sys.intern(lang)))
    if not checked:
        raise UsageError("recipients is empty", cli="no receivers: give --to or --receivers")
    return checked, duplicates, fallbacks


def build_rows(
    chunk: list,
    cfg: Config,
    template: str | None,
    context: dict,
    render: Callable[..., Rendered] | None,
    inline: Rendered | None,
    date: str,
    listed: dict,
    headers: tuple[tuple[str, str], ...] = (),
    attachments: tuple[Attachment, ...] = (),
) -> list[dict]:
    """The stored rows of a chunk of checked receivers. `render(template, context, info,
    language)` renders a template; `inline` is the Rendered of a message without one.
    Receivers whose address is on the suppression list (`listed`: mailbox_key -> entry)
    are stored `suppressed`, saying why. `headers` (checked) are added to the template's
    own (headers.txt), replacing one of the same name; `attachments` go to every one."""
    from devmsg import mime
    from devmsg.content import length
    from devmsg.store.suppression import reason_text

    given = {name.lower() for name, _ in headers}
    rows = []
    for address, name, lang in chunk:
        if template is None or render is None:
            assert inline is not None  # a message without a template has its content
            rendered = inline
        else:
            info = {"address": address.address, "name": name, "language": lang}
            rendered = render(template, context, info, lang)
        # What is stored is exactly what is sent: MIME ends a part with a newline.
        body_text, body_html = _eol(rendered.text), _eol(rendered.html)
        if "\x00" in body_text or "\x00" in body_html:
            raise InputError(
                f"{template or '--text/--html'}: the content contains a NUL "
                "character, which email cannot carry"
            )
        header_id = mime.new_message_id(cfg.sender_address)
        entry = listed.get(mailbox_key(address.address)) if listed else None
        extra = tuple(h for h in rendered.headers if h[0].lower() not in given) + tuple(headers)
        built = mime.build(
            sender=cfg.sender_header,
            address=address.address if address.smtputf8 else address.envelope,
            name=name,
            subject=rendered.subject,
            text=body_text,
            html=body_html,
            message_id=header_id,
            date=date,
            smtputf8=address.smtputf8,
            headers=extra,
            attachments=attachments,
        )
        size = len(built) if isinstance(built, bytes) else length(built)
        if size > cfg.max_message_size:
            from devmsg.eml import too_big

            raise InputError(too_big(size, cfg.max_message_size), param="attachments")
        rows.append(
            {
                "address": address.address,
                "envelope_to": address.envelope,
                "name": name,
                "language": lang,
                "subject": rendered.subject,
                "body_text": body_text,
                "body_html": body_html,
                "message_id_header": header_id,
                "suppressed": None if entry is None else reason_text(entry, cfg.minute),
                "headers": extra,
                "mime": built,
            }
        )
    return rows
