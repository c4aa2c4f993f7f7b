"""`devmsg check`: what an author or a CI job runs before sending. Every template compiles and
renders in every configured language with its example context (`templates/<name>/context.json`),
every language has a catalog that parses, has no duplicate msgid and keeps each msgid's
placeholders, and the catalogs hold what the templates use and nothing stale.

Findings are `path:line: error|warning: text`. Errors would break or garble a send; warnings
would send some text in the default language, or are clutter.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import unescape

from devmsg import catalogs
from devmsg.config import Config
from devmsg.errors import DevmsgError
from devmsg.i18n import catalog_path

if TYPE_CHECKING:
    from devmsg.render import Renderer

CONTEXT_FILE = "context.json"
EXAMPLE_RECEIVER = {"address": "ola.nordmann@example.com", "name": "Ola Nordmann"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int | None
    severity: str  # "error" or "warning"
    text: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.text}"


@dataclass
class Report:
    findings: list[Finding]
    stats: list[dict]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    def as_dict(self) -> dict:
        return {"errors": self.errors, "warnings": self.warnings,
                "findings": [asdict(f) for f in self.findings], "stats": self.stats}  # fmt: skip


_WHERE = re.compile(r"^(?P<path>.+?)(?: line |:)(?P<line>\d+): (?P<text>.*)$", re.S)


def _finding(message: str, severity: str, cfg: Config, fallback: Path) -> Finding:
    """A Finding from one of devmsg's error lines (`path line N: text`, or `path:N: text`)."""
    match = _WHERE.match(message)
    if match:
        return Finding(catalogs.shown(match["path"], cfg), int(match["line"]), severity,
                       match["text"])  # fmt: skip
    return Finding(catalogs.shown(fallback, cfg), None, severity, message)


def example_context(cfg: Config, name: str) -> dict | None:
    """The template's example context, or None when it has none. InputError if unreadable."""
    from devmsg.inputs import parse_json_object

    path = cfg.templates / name / CONTEXT_FILE
    if not path.is_file():
        return None
    try:
        return parse_json_object(path.read_text(encoding="utf-8"), catalogs.shown(path, cfg))
    except (OSError, UnicodeDecodeError) as exc:
        raise DevmsgError(f"{catalogs.shown(path, cfg)}: cannot read: {exc}") from None


def check(
    cfg: Config, templates: list[str] | None = None, languages: list[str] | None = None
) -> Report:
    from devmsg.render import Renderer

    findings: list[Finding] = []
    for language in languages or []:
        if language not in cfg.languages:
            raise DevmsgError(f"--language: {language!r} is not one of the configured languages")
    languages = list(languages or cfg.languages)
    renderer = Renderer(cfg.templates, cfg.locales, cfg.languages, cfg.default_language,
                        cfg.tzinfo)  # fmt: skip
    names = renderer.template_names()
    for name in templates or []:
        if name not in names:
            raise DevmsgError(f"--template: unknown template {name!r} (known: {', '.join(names)})")
    extracted = None
    try:
        extracted = catalogs.extract(cfg)
    except DevmsgError as exc:
        findings.append(_finding(str(exc), "error", cfg, cfg.templates))
    missing_catalog = set()
    for language in languages:
        path = catalog_path(cfg.locales, language)
        if language != cfg.default_language and not path.is_file():
            missing_catalog.add(language)
            findings.append(Finding(catalogs.shown(path, cfg), None, "error",
                                    f"no catalog for the configured language {language} "
                                    f"(devmsg catalog init --language {language})"))  # fmt: skip
    rendering = [lang for lang in languages if lang not in missing_catalog]
    for name in templates or names:
        for finding in _render(cfg, renderer, name, rendering):
            if not any((f.path, f.line) == (finding.path, finding.line) for f in findings):
                findings.append(finding)  # (a syntax error is found by extraction too)
    stats = []
    for language in catalogs.catalog_languages(cfg, languages):
        path = catalog_path(cfg.locales, language)
        if path.is_file():
            found, catalog = _catalog(cfg, language, path, extracted)
            findings += found
            if catalog is not None:
                stats.append(
                    catalogs.catalog_stats(language, catalog, language == cfg.default_language)
                )
    return Report(findings, stats)


def _render(cfg: Config, renderer: Renderer, name: str, languages: list[str]) -> list[Finding]:
    """Render in each language with the example context: one finding per problem, naming
    the languages it shows in."""
    folder = cfg.templates / name
    try:
        context = example_context(cfg, name)
    except DevmsgError as exc:
        return [_finding(str(exc), "error", cfg, folder / CONTEXT_FILE)]
    problems: dict[Finding, list[str]] = {}
    for language in languages:
        receiver = {**EXAMPLE_RECEIVER, "language": language}
        try:
            renderer.render(name, context or {}, receiver, language)
        except DevmsgError as exc:
            finding = _finding(str(exc), "error", cfg, folder)
            if context is None:  # nothing to check the variables with
                where = f"{finding.path}:{finding.line}" if finding.line else finding.path
                text = f"no {CONTEXT_FILE}, so its variables cannot be checked ({where}: "
                return [Finding(catalogs.shown(folder, cfg), None, "warning",
                                text + f"{finding.text})")]  # fmt: skip
            problems.setdefault(finding, []).append(language)
    return [Finding(f.path, f.line, f.severity, f"{f.text} (language {', '.join(langs)})")
            for f, langs in problems.items()]  # fmt: skip


def _catalog(
    cfg: Config, language: str, path: Path, extracted: Catalog | None
) -> tuple[list[Finding], Catalog | None]:
    """(findings, the catalog or None if it does not parse)."""
    shown = catalogs.shown(path, cfg)
    findings = [Finding(shown, line, "error", f"duplicate msgid {text!r}")
                for line, text in _duplicates(path)]  # fmt: skip
    try:
        catalog = catalogs.read_catalog(path, cfg, locale=language)
    except DevmsgError as exc:
        return findings + [Finding(shown, None, "error", str(exc).split(": ", 1)[-1])], None
    is_default = language == cfg.default_language
    used = catalogs.keys(extracted) if extracted is not None else None
    for message in catalog:
        if not message.id:
            continue
        key = catalogs.key_of(message)
        where = (shown, message.lineno)
        for problem in placeholder_problems(message.id, message.string):
            findings.append(Finding(*where, "error", f"{catalogs.label(key)}: {problem}"))
        if message.fuzzy:
            findings.append(Finding(*where, "warning", f"fuzzy: {catalogs.label(key)}"))
        elif not catalogs.is_translated(message) and not is_default:
            findings.append(Finding(*where, "warning", f"untranslated: {catalogs.label(key)}"))
        if used is not None and key not in used:
            text = f"not used by any template: {catalogs.label(key)}"
            findings.append(Finding(*where, "warning", text))
    if extracted is not None:
        have = catalogs.keys(catalog)
        for message in extracted:
            key = catalogs.key_of(message)
            if message.id and key not in have:
                file, line = message.locations[0]
                findings.append(Finding(shown, None, "warning",
                                        f"{catalogs.label(key)} (used at {file}:{line}) is "
                                        f"missing: it goes out in {cfg.default_language} "
                                        "(devmsg catalog update)"))  # fmt: skip
    return findings, catalog


# --- placeholders ---------------------------------------------------------------------------

_SPEC = re.compile(
    r"%(?:\((?P<name>[^)]*)\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?"
    r"(?P<conv>[diouxXeEfFgGcrsa%])"
)


def placeholders(text: str) -> tuple[tuple[str, ...], bool]:
    """(the %-placeholders of a string, sorted, `%%` aside; whether a lone % is left over).
    With newstyle gettext every msgid and translation is %-formatted."""
    found = []
    for match in _SPEC.finditer(text):
        if match["conv"] != "%":
            found.append(f"%({match['name']})" if match["name"] is not None else match[0])
    rest = _SPEC.sub("", text)
    return tuple(sorted(found)), "%" in rest


def placeholder_problems(msgid: Any, string: Any) -> list[str]:
    """How a translation's placeholders differ from its msgid's. A plural's forms may drop
    a placeholder except in the last form (`one file` for `%(count)s file`)."""
    ids = list(msgid) if isinstance(msgid, list | tuple) else [msgid]
    forms = list(string) if isinstance(string, list | tuple) else [string]
    want = set()
    for text in ids:
        want |= set(placeholders(text)[0])
    problems = []
    for index, form in enumerate(forms):
        if not form:
            continue
        have, lone = placeholders(form)
        label = f"form {index}" if len(forms) > 1 else "translation"
        if lone:
            problems.append(f"the {label} has a lone % (write %% for a percent sign)")
        extra = sorted(set(have) - want)
        missing = sorted(want - set(have))
        if len(forms) > 1 and index < len(forms) - 1:
            missing = []
        if extra:
            problems.append(f"the {label} has {_names(extra)}, which the msgid does not")
        if missing:
            problems.append(f"the {label} lacks {_names(missing)}")
    return problems


def _names(items: list[str]) -> str:
    return ", ".join(item + "s" if item.startswith("%(") else repr(item) for item in items)


def _duplicates(path: Path) -> list[tuple[int, str]]:
    """(line, msgid) of each msgid given twice (with the same context), obsolete entries
    aside: Babel merges them silently when it reads the file."""
    seen: set[tuple] = set()
    found: list[tuple[int, str]] = []
    context: str | None = None
    msgid: str | None = None
    line = 0
    field = None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []

    def done() -> None:
        if msgid:
            key = (context, msgid)
            if key in seen:
                found.append((line, msgid))
            seen.add(key)

    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if text.startswith("msgctxt "):
            context, field = unescape(text[8:]), "context"
        elif text.startswith("msgid "):
            msgid, line, field = unescape(text[6:]), number, "msgid"
        elif text.startswith('"') and field in ("context", "msgid"):
            if field == "context":
                context = (context or "") + unescape(text)
            else:
                msgid = (msgid or "") + unescape(text)
        elif text.startswith(("msgid_plural", "msgstr")):
            if field == "msgid":
                done()
                context = msgid = None
            field = None
        elif not text or text.startswith("#"):
            field = None
    return found
