"""catalog (extract, init, update, stats), check and preview: authors' tools for templates
and translations. They read templates and catalogs; none opens the store."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from devmsg.cli.base import DevmsgGroup, app, console, echo, print_json
from devmsg.errors import DevmsgError

if TYPE_CHECKING:
    from devmsg.config import Config


def _config(ctx: typer.Context) -> Config:
    from devmsg.config import load_config

    return load_config(ctx.obj["config"])


catalog_app = typer.Typer(
    cls=DevmsgGroup,
    help="Translation catalogs from the templates: extract, init, update, stats.",
    no_args_is_help=True,
)
app.add_typer(catalog_app, name="catalog")

_LANGUAGES = Annotated[
    list[str] | None,
    typer.Option("--language", "-l", metavar="LANG", help="Only this language. Repeatable."),
]


@catalog_app.command("extract")
def catalog_extract(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if the .pot is out of date.")
    ] = False,
) -> None:
    """Write <locales>/messages.pot: every msgid the templates use, with file:line.

    Example: devmsg catalog extract
    """
    from devmsg import catalogs

    cfg = _config(ctx)
    extracted = catalogs.extract(cfg)
    pot = catalogs.shown(catalogs.pot_path(cfg), cfg)
    if check:
        missing, extra = catalogs.pot_difference(cfg, extracted)
        for key in missing:
            echo(f"{pot}: lacks {catalogs.label(key)}")
        for key in extra:
            echo(f"{pot}: has {catalogs.label(key)}, which no template uses")
        if missing or extra:
            raise DevmsgError(f"{pot} is out of date: run devmsg catalog extract")
        echo(f"{pot}: up to date ({len(catalogs.keys(extracted))} msgids)")
        return
    catalogs.write_pot(cfg, extracted)
    echo(f"{pot}: {len(catalogs.keys(extracted))} msgids")


@catalog_app.command("init")
def catalog_init(
    ctx: typer.Context,
    language: Annotated[
        str, typer.Option("--language", "-l", metavar="LANG", help="The new catalog's locale.")
    ],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing catalog.")] = False,
) -> None:
    """Create <locales>/LANG/LC_MESSAGES/messages.po from the .pot, with LANG's plural forms.

    Example: devmsg catalog init --language nb
    """
    from devmsg import catalogs

    cfg = _config(ctx)
    path = catalogs.init(cfg, language, force)
    echo(f"{catalogs.shown(path, cfg)}: created")
    new = path.parent.parent.name  # the locale as Babel spells it
    if new not in cfg.languages:
        import json

        where = cfg.path.name if cfg.path else "devmsg.toml"
        wanted = json.dumps([*cfg.languages, new])
        echo(f"{new} is not in languages: add it there in {where} (languages = {wanted}); "
              f"until then send renders {new} receivers in {cfg.default_language}",
              err=True)  # fmt: skip


@catalog_app.command("update")
def catalog_update(
    ctx: typer.Context,
    language: _LANGUAGES = None,
    no_fuzzy_matching: Annotated[
        bool, typer.Option("--no-fuzzy-matching", help="A changed msgid starts untranslated.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a catalog would change.")
    ] = False,
) -> None:
    """Merge the .pot into each language's catalog: new, fuzzy, obsolete, and back.

    Example: devmsg catalog update --language nb
    """
    from devmsg import catalogs

    cfg = _config(ctx)
    results = catalogs.update(cfg, language, fuzzy=not no_fuzzy_matching, write=not check)
    for result in results:
        echo(result.line())
    changed = [result.language for result in results if result.changed]
    if check and changed:
        raise DevmsgError(f"catalogs out of date: {', '.join(changed)} (devmsg catalog update)")


@catalog_app.command("stats")
def catalog_stats(
    ctx: typer.Context,
    language: _LANGUAGES = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Per language: total, translated, fuzzy, untranslated, obsolete, percent translated.

    Example: devmsg catalog stats
    """
    from devmsg import catalogs

    rows = catalogs.stats(_config(ctx), language)
    if json_output:
        print_json(rows)
        return
    from devmsg.views import catalog_stats_table

    console().print(catalog_stats_table(rows))


@app.command()
def check(
    ctx: typer.Context,
    template: Annotated[
        list[str] | None,
        typer.Option("--template", "-t", metavar="NAME", help="Only this template. Repeatable."),
    ] = None,
    language: _LANGUAGES = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Check templates and catalogs before sending: one line per finding, then the stats.

    Exit 0 when clean, 1 on errors (and on warnings with --strict).

    Example (in CI): devmsg check --strict
    """
    from devmsg.checks import check as run_check

    report = run_check(_config(ctx), template, language)
    if json_output:
        print_json(report.as_dict())
    else:
        for finding in report.findings:
            echo(str(finding))
        from devmsg.views import catalog_stats_table

        if report.stats:
            console().print(catalog_stats_table(report.stats))
        echo(f"check: {report.errors} errors, {report.warnings} warnings")
    if report.errors or (strict and report.warnings):
        raise typer.Exit(1)


@app.command()
def preview(
    ctx: typer.Context,
    template: Annotated[str, typer.Argument(metavar="TEMPLATE", help="The template's name.")],
    language: Annotated[
        str | None, typer.Option("--language", "-l", metavar="LANG", help="The receiver's.")
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            metavar="JSON",
            help="Template variables (@FILE reads a file, @- stdin). Default: its context.json.",
        ),
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", metavar="'NAME <ADDRESS>'", help="The receiver.")
    ] = None,
    eml: Annotated[
        bool, typer.Option("--eml", help="Write the whole email (bytes) to stdout.")
    ] = False,
) -> None:
    """Show what send would render for one receiver: subject, plain text and HTML.

    Stores nothing and sends nothing.

    Example: devmsg preview deadline_moved --language nb --eml > preview.eml
    """
    from devmsg.inputs import parse_json_object
    from devmsg.preview import preview as render_preview

    variables = None if context is None else parse_json_object(context, "--context")
    row = render_preview(_config(ctx), template, language, variables, to)
    if eml:
        sys.stdout.buffer.write(row["mime"])
        sys.stdout.flush()
        return
    from devmsg.views import preview_view

    console().print(preview_view(row))
