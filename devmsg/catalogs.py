"""Catalogs from templates, on Babel's API: extract the msgids every template uses into
`<locales>/messages.pot`, start a language's catalog from it, merge it into each catalog,
and count what is translated.

Extraction parses with exactly the Jinja settings rendering uses (`devmsg.render.JINJA`):
the same extensions, newstyle gettext and trimmed `{% trans %}` blocks, so the msgids found
are the ones rendering looks up. Three traps of Babel's defaults are avoided here: the
extractor's options are strings, syntax errors are raised (its `silent` default skips the
file), and folders starting with `_` (shared parts) are searched too.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import PoFileError, read_po, write_po

from devmsg import render
from devmsg.config import Config
from devmsg.errors import InputError
from devmsg.i18n import catalog_path

POT = "messages.pot"
COMMENT_TAGS = ("Translators:",)
_METHOD = "jinja2.ext:babel_extract"
_PATTERNS = ("**.html", "**.txt")  # subject.txt, body.html, body.txt and shared parts
WIDTH = 76
HEADER = "# The messages of the templates: written by `devmsg catalog extract`, do not edit."


def base_of(cfg: Config) -> Path:
    """Paths are shown relative to the config file's folder (the project)."""
    return cfg.path.resolve().parent if cfg.path else Path.cwd()


def shown(path: Path | str, cfg: Config) -> str:
    return os.path.relpath(Path(path).resolve(), base_of(cfg))


def pot_path(cfg: Config) -> Path:
    return cfg.locales / POT


# --- extract -------------------------------------------------------------------------------


def extract(cfg: Config) -> Catalog:
    """Every msgid of every template, with `file:line` locations, `Translators:` comments
    and plurals. A template syntax error raises InputError `path:line: ...`."""
    import jinja2

    catalog = Catalog(
        project="devmsg templates", charset="utf-8", fuzzy=False, header_comment=HEADER
    )
    if not cfg.templates.is_dir():
        raise InputError(f"{shown(cfg.templates, cfg)}: no templates folder")
    options = render.extraction_options()
    current: list[str] = []

    def callback(filename: str, method: str, options: dict) -> None:
        current[:] = [filename]

    results = extract_from_dir(
        cfg.templates,
        method_map=[(pattern, _METHOD) for pattern in _PATTERNS],
        options_map={pattern: options for pattern in _PATTERNS},
        keywords=DEFAULT_KEYWORDS,
        comment_tags=COMMENT_TAGS,
        callback=callback,
        directory_filter=lambda path: not os.path.basename(path).startswith("."),
    )
    try:
        for filename, lineno, message, comments, context in results:
            where = shown(cfg.templates / filename, cfg)
            catalog.add(message, None, [(where, lineno)], auto_comments=comments,
                        context=context)  # fmt: skip
    except jinja2.TemplateSyntaxError as exc:
        where = shown(cfg.templates / current[0], cfg) if current else shown(cfg.templates, cfg)
        raise InputError(f"{where}:{exc.lineno}: template syntax error: {exc.message}") from None
    return catalog


def key_of(message: Message) -> tuple:
    """A msgid as (id or (singular, plural), context)."""
    return _id(message.id), message.context


def keys(catalog: Catalog) -> set:
    return {key_of(message) for message in catalog if message.id}


def _id(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


def label(key: tuple) -> str:
    msgid, context = key
    text = msgid[0] if isinstance(msgid, tuple) else msgid
    return repr(text) + (f" (context {context!r})" if context else "")


def pot_difference(cfg: Config, extracted: Catalog) -> tuple[list, list]:
    """(msgids the .pot on disk lacks, msgids it has too many): dates and headers aside."""
    on_disk = read_catalog(pot_path(cfg), cfg)
    want, have = keys(extracted), keys(on_disk)
    return sorted(want - have, key=str), sorted(have - want, key=str)


def write_pot(cfg: Config, catalog: Catalog) -> Path:
    path = pot_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, catalog)
    return path


def _write(path: Path, catalog: Catalog) -> None:
    """Write a catalog whole, or leave the old file as it was."""
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=WIDTH, include_previous=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)


def read_catalog(path: Path, cfg: Config, locale: str | None = None) -> Catalog:
    if not path.is_file():
        hint = "devmsg catalog extract" if path.name == POT else "devmsg catalog init"
        raise InputError(f"{shown(path, cfg)}: not found (run {hint})")
    try:
        with path.open("rb") as fh:
            return read_po(fh, locale=locale, abort_invalid=True)
    except (PoFileError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{shown(path, cfg)}: cannot be read: {exc}") from None


# --- init ----------------------------------------------------------------------------------


def check_locale(language: str) -> Locale:
    try:
        return Locale.parse(language.replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        raise InputError(f"--language: unknown locale {language!r}") from None


def init(cfg: Config, language: str, force: bool = False) -> Path:
    """A new catalog for `language` from the .pot, with that locale's plural forms."""
    locale = check_locale(language)
    target = catalog_path(cfg.locales, language)
    if target.exists() and not force:
        raise InputError(f"{shown(target, cfg)}: already exists (--force replaces it)")
    catalog = read_catalog(pot_path(cfg), cfg, locale=language)
    catalog.locale = locale
    catalog.revision_date = dt.datetime.now(dt.UTC)
    catalog.fuzzy = False
    target.parent.mkdir(parents=True, exist_ok=True)
    _write(target, catalog)
    return target


# --- update --------------------------------------------------------------------------------


@dataclass
class Update:
    language: str
    path: Path
    new: int
    fuzzy: int
    obsolete: int
    changed: bool

    def line(self) -> str:
        return f"{self.language}: {self.new} new, {self.fuzzy} fuzzy, {self.obsolete} obsolete"


def catalog_languages(cfg: Config, chosen: list[str] | None) -> list[str]:
    """The languages whose catalogs are kept: every configured one but the default (whose
    msgids are its text) unless it has a catalog; or those chosen."""
    if chosen:
        return list(dict.fromkeys(chosen))
    default = cfg.default_language
    return [lang for lang in cfg.languages
            if lang != default or catalog_path(cfg.locales, lang).is_file()]  # fmt: skip


def update(
    cfg: Config, languages: list[str] | None = None, fuzzy: bool = True, write: bool = True
) -> list[Update]:
    """Merge the .pot into each catalog: new msgids added, translations kept, a changed
    msgid's old translation marked fuzzy (with `fuzzy`), vanished msgids obsolete, and a
    msgid that comes back gets its obsolete translation back. Every catalog is read and
    merged before any is written."""
    template = read_catalog(pot_path(cfg), cfg)
    results, merged = [], []
    for language in catalog_languages(cfg, languages):
        path = catalog_path(cfg.locales, language)
        catalog = read_catalog(path, cfg, locale=language)
        before = _signature(catalog)
        active_before, obsolete_before = set(catalog._messages), set(catalog.obsolete)
        restored = _restore_obsolete(catalog, template)
        catalog.update(template, no_fuzzy_matching=not fuzzy)
        for key in [k for k in catalog.obsolete if k in catalog._messages]:
            del catalog.obsolete[key]
        added = [m for k, m in catalog._messages.items()
                 if k and k not in active_before and k not in restored]  # fmt: skip
        became_fuzzy = sum(1 for m in added if m.fuzzy and m.previous_id)
        result = Update(
            language, path, len(added) - became_fuzzy, became_fuzzy,
            len(set(catalog.obsolete) - obsolete_before), _signature(catalog) != before,
        )  # fmt: skip
        results.append(result)
        merged.append((result, catalog))
    if write:  # (locations and dates too, so every catalog is written)
        for result, catalog in merged:
            _write(result.path, catalog)
    return results


def _restore_obsolete(catalog: Catalog, template: Catalog) -> set:
    """Msgids the template has again whose translation is obsolete: back, as they were."""
    restored = set()
    for message in template:
        if not message.id:
            continue
        key = catalog._key_for(message.id, message.context)
        if key not in catalog._messages and key in catalog.obsolete:
            old: Message = catalog.obsolete.pop(key)
            catalog[old.id] = old
            restored.add(key)
    return restored


def _signature(catalog: Catalog) -> tuple[dict, set]:
    """What a catalog says, locations and dates aside: has an update changed it?"""
    active = {key: (_id(m.string), m.fuzzy) for key, m in catalog._messages.items() if key}
    return active, set(catalog.obsolete)


# --- stats ---------------------------------------------------------------------------------


def is_translated(message: Message) -> bool:
    """Every form filled, and not fuzzy."""
    if message.fuzzy:
        return False
    if isinstance(message.string, list | tuple):
        return bool(message.string) and all(message.string)
    return bool(message.string)


def catalog_stats(language: str, catalog: Catalog, source: bool = False) -> dict:
    """Counts of one catalog. The `source` language's (the default language, whose msgids
    are the text) needs no msgstr: it counts as wholly translated, and says so."""
    total = translated = fuzzy = 0
    for message in catalog:
        if not message.id:
            continue
        total += 1
        if message.fuzzy:
            fuzzy += 1
        elif is_translated(message):
            translated += 1
    percent = round(100 * translated / total, 1) if total else 100.0
    return {"language": language, "total": total, "translated": translated, "fuzzy": fuzzy,
            "untranslated": total - translated - fuzzy, "obsolete": len(catalog.obsolete),
            "percent_translated": 100.0 if source else percent, "source": source}  # fmt: skip


def stats(cfg: Config, languages: list[str] | None = None) -> list[dict]:
    """Per language with a catalog: total, translated, fuzzy, untranslated (exclusive),
    obsolete and percent translated."""
    rows = []
    for language in catalog_languages(cfg, languages):
        path = catalog_path(cfg.locales, language)
        if path.is_file():
            catalog = read_catalog(path, cfg, locale=language)
            rows.append(catalog_stats(language, catalog, language == cfg.default_language))
    return rows
