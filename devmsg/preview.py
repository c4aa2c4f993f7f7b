"""`devmsg preview`: what `send` would render and build for one receiver, through the same
code (devmsg.compose), catalogs and filters. Stores nothing, sends nothing."""

from __future__ import annotations

import datetime as dt

from devmsg.config import Config
from devmsg.errors import InputError

EXAMPLE_TO = "Ola Nordmann <ola.nordmann@example.com>"


def preview(
    cfg: Config,
    template: str,
    language: str | None = None,
    context: dict | None = None,
    to: str | None = None,
) -> dict:
    """The stored row `send` would make: address, name, language, subject, body_text,
    body_html and mime (the email's bytes). The context defaults to the template's
    context.json. Render errors raise InputError (one line, with file and line)."""
    from devmsg import mime
    from devmsg.checks import example_context
    from devmsg.compose import build_rows, check_receivers
    from devmsg.inputs import parse_recipient
    from devmsg.render import Renderer

    if language is not None and language not in cfg.languages:
        known = ", ".join(cfg.languages)
        raise InputError(
            f"language: {language!r} is not a configured language ({known})", param="language"
        )
    renderer = Renderer(cfg.templates, cfg.locales, cfg.languages, cfg.default_language,
                        cfg.tzinfo)  # fmt: skip
    renderer.check_template(template)
    if context is None:
        context = example_context(cfg, template) or {}
    if "receiver" in context:
        raise InputError(
            "context: the key 'receiver' is reserved for the receiver", param="context"
        )
    recipient = parse_recipient(to or EXAMPLE_TO, language, "--to")
    checked, _, _ = check_receivers([recipient], language, cfg)
    date = mime.date_header(dt.datetime.now(dt.UTC))
    (row,) = build_rows(checked, cfg, template, context, renderer.render, None, date, {})
    return row
