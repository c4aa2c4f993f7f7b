"""(template, context, receiver, language) -> subject, plain text, HTML. Pure: no store,
no network.

A template is a folder ``<templates>/<name>/`` with ``subject.txt``, ``body.html`` and
optionally ``body.txt`` and ``headers.txt`` (one ``Name: value`` a line, rendered per
receiver like the subject; a value that would carry a line break is refused). Jinja2
with HTML autoescaped in ``.html`` files, the i18n extension backed by the Babel catalogs
in ``<locales>``, undefined variables as errors, and the filters ``format_date``,
``format_datetime`` and ``format_number`` in the receiver's language.
"""

from __future__ import annotations

import os
import re
import secrets
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import jinja2

from devmsg import i18n
from devmsg.errors import DevmsgError, InputError
from devmsg.htmltext import html_to_text

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# The Jinja settings rendering uses, which extraction (devmsg.catalogs) must use too: else the
# msgids extracted are not the ones rendering looks up.
EXTENSIONS = ("jinja2.ext.i18n",)
TRIMMED = True  # {% trans %} blocks: line breaks and indentation become one space


def extraction_options() -> dict[str, str]:
    """Options for Jinja's babel_extract: strings, as Babel passes them; syntax errors raised
    (its default, silent, skips a broken template without a word)."""
    return {"extensions": ",".join(EXTENSIONS), "trimmed": str(TRIMMED).lower(),
            "newstyle_gettext": "true", "silent": "false"}  # fmt: skip


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    headers: tuple[tuple[str, str], ...] = ()


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1


def one_line(value: str) -> str:
    """Line breaks, other control characters and runs of white space become one space: no
    header can be injected, and nothing a header cannot carry gets in."""
    return " ".join(_CONTROL.sub(" ", value).split())


class Renderer:
    def __init__(
        self,
        templates: Path,
        locales: Path,
        languages: tuple[str, ...],
        default_language: str,
        tz: ZoneInfo,
    ) -> None:
        self.templates = Path(templates)
        self.locales = Path(locales)
        self.languages = languages
        self.default_language = default_language
        self.tz = tz
        self._envs: dict[str, jinja2.Environment] = {}
        self._catalogs: dict[str, tuple] = {}  # language -> the catalog files' mtimes
        self._text_files: dict[str, bool] = {}
        self._header_files: dict[str, bool] = {}
        self._header_envs: dict[str, jinja2.Environment] = {}
        self._combined_cache: dict[tuple, jinja2.Template] = {}
        # Splits the combined output; random, so that no context value can contain it.
        self._boundary = f"\x00{secrets.token_hex(16)}\x00"

    def _has_text(self, name: str) -> bool:
        if name not in self._text_files:
            self._text_files[name] = (self.templates / name / "body.txt").is_file()
        return self._text_files[name]  # looked at again by check_template, once a send

    # -- templates -----------------------------------------------------------------------

    def template_names(self) -> list[str]:
        if not self.templates.is_dir():
            return []
        return sorted(p.name for p in self.templates.iterdir() if (p / "subject.txt").is_file())

    def check_template(self, name: str) -> None:
        """The template exists and has its files (os.path: this runs on every API call)."""
        folder = os.path.join(self.templates, name)
        if not _NAME.match(name) or not os.path.isdir(folder):
            known = ", ".join(self.template_names()) or "none"
            raise InputError(f"unknown template {name!r} in {self.templates} (known: {known})")
        for required in ("subject.txt", "body.html"):
            if not os.path.isfile(os.path.join(folder, required)):
                raise InputError(f"{folder}/{required}: missing, every template needs it")
        self._text_files[name] = os.path.isfile(os.path.join(folder, "body.txt"))
        self._header_files[name] = os.path.isfile(os.path.join(folder, "headers.txt"))
        self._refresh()

    def _refresh(self) -> None:
        """Once a send (from check_template), not once a receiver: recompile a template
        whose file changed (Jinja's own staleness check, on our schedule) and read a
        changed catalog again."""
        for env in [*self._envs.values(), *self._header_envs.values()]:
            cache = env.cache if env.cache is not None else {}
            for key, template in list(cache.items()):
                if not template.is_up_to_date:
                    del cache[key]
        # A headers.txt environment is an overlay: it shares its language's globals, and
        # with them the translations installed here.
        for language, env in self._envs.items():
            stamp = i18n.catalog_stamp(self.locales, language)
            if self._catalogs.get(language) != stamp:
                self._install(env, language)
                self._catalogs[language] = stamp

    def _env(self, language: str) -> jinja2.Environment:
        """The language's environment, made once and kept: compiled templates live as long
        as the Renderer (an Outbox's); `_refresh` drops what changed on disk."""
        env = self._envs.get(language)
        if env is None:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(self.templates),
                autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
                undefined=jinja2.StrictUndefined,
                extensions=list(EXTENSIONS),
                auto_reload=False,  # checked once a send by _refresh, not once a receiver
            )
            env.policies["ext.i18n.trimmed"] = TRIMMED
            self._catalogs[language] = i18n.catalog_stamp(self.locales, language)
            self._install(env, language)
            tz = self.tz
            env.filters["format_date"] = lambda v, f="medium": i18n.format_date(
                _defined(v), f, language, tz
            )
            env.filters["format_datetime"] = lambda v, f="medium": i18n.format_datetime(
                _defined(v), f, language, tz
            )
            env.filters["format_number"] = lambda v: i18n.format_number(_defined(v), language)
            self._envs[language] = env
        return env

    def _install(self, env: jinja2.Environment, language: str) -> None:
        translations = i18n.load_translations(
            self.locales, language, required=language != self.default_language
        )
        env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]  # the i18n extension's
        # Every gettext call of a template ({{ _() }}, ngettext, {% trans %}) goes through
        # these names: a translation that does not fit its values says so, whichever
        # string type (str in .txt, Markup in autoescaped .html) did the formatting.
        for name in ("gettext", "ngettext", "pgettext", "npgettext"):
            installed = cast(Callable[..., str], env.globals[name])
            env.globals[name] = _guarded(installed, name, translations, language)

    # -- rendering -----------------------------------------------------------------------

    def render(self, name: str, context: dict, receiver: dict, language: str) -> Rendered:
        """Render template `name` for one receiver. Errors name the file and line."""
        env = self._env(language)
        files = [f"{name}/subject.txt", f"{name}/body.html"]
        if self._has_text(name):
            files.append(f"{name}/body.txt")
        variables = {**context, "receiver": receiver}
        try:
            # One render for the template's two or three files: a third of the cost.
            parts = self._combined(env, files).render(variables).split(self._boundary)
        except jinja2.TemplateSyntaxError as exc:
            file, exc = self._syntax_error(env, files) or (files[0], exc)
            where = exc.filename or str(self.templates / file)
            message = f"{where} line {exc.lineno}: template syntax error: {exc.message}"
            raise InputError(message) from None
        except jinja2.TemplateError as exc:
            raise InputError(f"{self._where(files, exc)}: {_message(exc)}") from None
        except DevmsgError as exc:
            raise InputError(f"{self._where(files, exc)}: {exc}") from None
        except TranslationMismatch as exc:
            raise InputError(f"{self._where(files, exc)}: {exc}") from None
        subject, html = one_line(parts[0]), parts[1]
        text = parts[2] if len(parts) > 2 else html_to_text(html)
        headers = self._headers(name, language, variables) if self._has_headers(name) else ()
        return Rendered(subject=subject, text=text, html=html, headers=headers)

    def _has_headers(self, name: str) -> bool:
        if name not in self._header_files:
            self._header_files[name] = (self.templates / name / "headers.txt").is_file()
        return self._header_files[name]

    def _headers(self, name: str, language: str, variables: dict) -> tuple[tuple[str, str], ...]:
        """headers.txt rendered for one receiver, in an environment where a value with a
        line break is an error (it would start a header of its own: injection)."""
        from devmsg.headers import parse_header_line

        env = self._header_envs.get(language)
        if env is None:
            env = self._header_envs[language] = self._env(language).overlay(finalize=_header_value)
        file = f"{name}/headers.txt"
        try:
            rendered = env.get_template(file).render(variables)
        except jinja2.TemplateSyntaxError as exc:
            where = exc.filename or str(self.templates / file)
            raise InputError(
                f"{where} line {exc.lineno}: template syntax error: {exc.message}"
            ) from None
        except jinja2.TemplateError as exc:
            raise InputError(f"{self._where([file], exc)}: {_message(exc)}") from None
        except (DevmsgError, TranslationMismatch, HeaderInjection) as exc:
            raise InputError(f"{self._where([file], exc)}: {exc}") from None
        where = str(self.templates / file)
        lines = [(n, line.removesuffix("\r"))
                 for n, line in enumerate(rendered.split("\n"), 1) if line.strip()]  # fmt: skip
        return tuple(parse_header_line(line, f"{where} line {n}") for n, line in lines)

    @staticmethod
    def _syntax_error(
        env: jinja2.Environment, files: list[str]
    ) -> tuple[str, jinja2.TemplateSyntaxError] | None:
        """(file, error) of the file that does not compile: some of Jinja's syntax errors
        (an unclosed comment) do not say which file they are in."""
        for file in files:
            try:
                env.get_template(file)
            except jinja2.TemplateSyntaxError as exc:
                return file, exc
        return None

    def _combined(self, env: jinja2.Environment, files: list[str]) -> jinja2.Template:
        key = (id(env), tuple(files))
        template = self._combined_cache.get(key)
        if template is None:
            # Each included file keeps its own autoescaping (by its name).
            source = self._boundary.join("{% include " + repr(f) + " %}" for f in files)
            template = self._combined_cache[key] = env.from_string(source)
        return template

    def _where(self, files: list[str], exc: BaseException) -> str:
        where = str(self.templates / files[0])
        for frame in traceback.extract_tb(exc.__traceback__):
            for file in files:
                path = str(self.templates / file)
                if frame.filename == path or frame.filename.endswith(file):
                    where = f"{path} line {frame.lineno}"
        return where


def _defined(value: Any) -> Any:
    """A filter given an undefined variable raises Jinja's own "is undefined" error."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    return value


class HeaderInjection(Exception):
    """A value rendered into headers.txt that carries a line break."""


def _header_value(value: Any) -> Any:
    if not isinstance(value, jinja2.Undefined) and re.search(r"[\r\n]", str(value)):
        raise HeaderInjection("a value with a line break cannot go into a header (injection)")
    return value


class TranslationMismatch(Exception):
    """A gettext string that cannot be formatted with the values the template gives it."""


_PLACEHOLDER = re.compile(r"%\((?P<name>[^)]*)\)[-#0 +]*\d*(?:\.\d+)?(?P<conv>[a-zA-Z%])")


def _guarded(
    function: Callable[..., str], name: str, translations: Any, language: str
) -> Callable[..., str]:
    """Jinja's newstyle `function` (gettext, ngettext, ...), raising TranslationMismatch
    instead of the KeyError, ValueError or TypeError of its `%` formatting."""

    @jinja2.pass_context
    def guarded(__context: Any, *args: Any, **variables: Any) -> str:
        try:
            return function(__context, *args, **variables)
        except (KeyError, ValueError, TypeError) as exc:
            if name in ("ngettext", "npgettext"):
                variables.setdefault("num", args[-1])
            if name in ("pgettext", "npgettext"):
                variables.setdefault("context", args[0])
            msgid = args[1] if name.startswith("p") else args[0]
            text = getattr(translations, name)(*args)
            raise TranslationMismatch(_mismatch(exc, msgid, text, variables, language)) from None

    return guarded


def _mismatch(exc: Exception, msgid: str, text: str, variables: dict, language: str) -> str:
    """`the nb translation does not fit its msgid: no value for %(navn)s`, or which
    placeholder cannot take its value."""
    translated = text != msgid
    whose = (
        f"the {language} translation does not fit its msgid"
        if translated
        else (f"the text {msgid!r} does not fit its values")
    )
    if isinstance(exc, KeyError):
        return f"{whose}: no value for %({exc.args[0]})s"
    for match in _PLACEHOLDER.finditer(text):
        key = match["name"]
        if key in variables:
            try:
                match[0].replace(f"({key})", "") % (variables[key],)
            except (ValueError, TypeError):
                value = type(variables[key]).__name__
                return f"{whose}: {match[0]} cannot format a {value}"
    return f"{whose}: {exc}"


def _message(exc: jinja2.TemplateError) -> str:
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined variable: {exc.message}"
    return exc.message or type(exc).__name__
