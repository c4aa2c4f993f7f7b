"""Every shipped template in every shipped language, real catalogs, filters, template errors."""

from __future__ import annotations

import datetime as dt
import io
import os
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from conftest import DEMO_DATA, EXAMPLES

from devmsg import i18n
from devmsg.errors import ConfigError, InputError
from devmsg.render import Renderer

pytestmark = pytest.mark.sqlite_only

OSLO = ZoneInfo("Europe/Oslo")
SHIPPED = [EXAMPLES, DEMO_DATA]
SAMPLE_CONTEXT = {
    "deadline_moved": {
        "assignment": "Oblig 2", "deadline": "2026-12-04T23:59:00+01:00",
        "reason": "Exam office", "url": "https://devilry.example/a/2",
    },
    "feedback": {
        "assignment": "Oblig 1", "course": "INF1000", "published": "2026-11-27T14:30:00+00:00",
        "points": 87.5, "comments": 1, "url": "https://devilry.example/f/1",
    },
    "course_news": {
        "course": "INF1000", "news": "Room 2.", "url": "https://devilry.example/n/1",
        "unsubscribe_url": "https://devilry.example/unsubscribe/inf1000",
    },
}  # fmt: skip


def shipped_templates():
    for root in SHIPPED:
        for folder in sorted((root / "templates").iterdir()):
            yield pytest.param(root, folder.name, id=f"{root.name}/{folder.name}")


def catalogs():
    for root in SHIPPED:
        for po in sorted((root / "locales").glob("*/LC_MESSAGES/messages.po")):
            yield pytest.param(po, id=str(po.relative_to(root.parent)))


@pytest.mark.parametrize(("root", "name"), list(shipped_templates()))
def test_every_template_renders_in_every_language(root, name):
    languages = ("en", "nb")  # en, the default, needs no catalog: its msgids are its text
    assert (root / "locales/nb/LC_MESSAGES/messages.po").is_file()
    renderer = Renderer(root / "templates", root / "locales", languages, "en", OSLO)
    renderer.check_template(name)
    context = SAMPLE_CONTEXT[name]  # a new template needs a sample context here
    out = {}
    for lang in languages:
        receiver = {"address": "a@example.com", "name": "A", "language": lang}
        out[lang] = renderer.render(name, context, receiver, lang)
        assert out[lang].subject and "\n" not in out[lang].subject
        assert out[lang].text.strip() and out[lang].html.strip()
    # Norwegian really is Norwegian: no English msgid survives in it.
    english_ids = [
        m.id for m in read_po((root / "locales/nb/LC_MESSAGES/messages.po").open("rb")) if m.id
    ]
    for msgid in english_ids:
        first = (msgid[0] if isinstance(msgid, tuple) else msgid).split("%")[0].strip()
        if first:
            assert first not in out["nb"].subject + out["nb"].text + out["nb"].html, msgid
    assert out["en"].subject != out["nb"].subject


@pytest.mark.parametrize("po", list(catalogs()))
def test_every_shipped_catalog_really_loads(po):
    language = po.parent.parent.name
    catalog = read_po(po.open("rb"), locale=language)
    translations = i18n.load_translations(po.parent.parent.parent, language, required=True)
    checked = 0
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            singular, plural = message.id
            expected = message.string[0] or singular
            assert translations.ngettext(singular, plural, 1) == expected
        else:
            assert translations.gettext(message.id) == (message.string or message.id)
        checked += 1
        if language == "nb":
            assert all(message.string) if isinstance(message.string, tuple) else message.string
    assert checked >= 5


def test_missing_catalog_is_an_error_for_a_listed_language(tmp_path):
    with pytest.raises(ConfigError, match="no catalog for language 'nb' listed in 'languages'"):
        i18n.load_translations(tmp_path, "nb", required=True)
    assert i18n.load_translations(tmp_path, "en", required=False).gettext("Hi") == "Hi"


def _catalog(folder: Path, text: str, mo_text: str | None = None) -> Path:
    po = folder / "nb" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True, exist_ok=True)
    po.write_text(f'msgid ""\nmsgstr ""\n"Language: nb\\n"\n\nmsgid "Hello"\nmsgstr "{text}"\n')
    if mo_text is not None:
        catalog = read_po(io.BytesIO(po.read_bytes().replace(text.encode(), mo_text.encode())))
        with po.with_suffix(".mo").open("wb") as fh:
            write_mo(fh, catalog)
    return po


def test_mo_is_used_when_current_and_po_when_newer(tmp_path):
    po = _catalog(tmp_path, "Hei fra po", mo_text="Hei fra mo")
    old = time.time() - 100
    os.utime(po, (old, old))
    assert i18n.load_translations(tmp_path, "nb", True).gettext("Hello") == "Hei fra mo"
    os.utime(po, (old + 200, old + 200))  # edited after the .mo was compiled
    assert i18n.load_translations(tmp_path, "nb", True).gettext("Hello") == "Hei fra po"


def test_broken_catalog_is_a_clear_error(tmp_path):
    po = tmp_path / "nb" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid "a"\nmsgstr "b"\nmsgid\n')
    with pytest.raises(ConfigError, match="invalid catalog"):
        i18n.load_translations(tmp_path, "nb", True)


def _template(tmp_path, body_html, subject="Hi"):
    folder = tmp_path / "templates" / "t"
    folder.mkdir(parents=True)
    (folder / "subject.txt").write_text(subject)
    (folder / "body.html").write_text(body_html)
    return Renderer(tmp_path / "templates", tmp_path / "locales", ("en", "nb"), "en", OSLO)


def test_syntax_error_names_file_and_line(tmp_path):
    renderer = _template(tmp_path, "<p>ok</p>\n<p>{% if %}</p>\n")
    with pytest.raises(InputError) as info:
        renderer.render("t", {}, {}, "en")
    assert str(info.value).startswith(
        f"{tmp_path}/templates/t/body.html line 2: template syntax error"
    )


def test_unclosed_comment_names_its_own_file(tmp_path):
    # Jinja's lexer reports this one without a file name; the error must still not blame
    # subject.txt for a mistake in body.html.
    renderer = _template(tmp_path, "<p>ok</p>{#{")
    with pytest.raises(InputError) as info:
        renderer.render("t", {}, {}, "en")
    assert str(info.value) == (
        f"{tmp_path}/templates/t/body.html line 1: template syntax error: Missing end of comment tag"
    )


def test_unknown_template_lists_the_known_ones(tmp_path):
    renderer = _template(tmp_path, "x")
    for name in ("nope", "../t", ""):
        with pytest.raises(InputError, match=r"unknown template .* \(known: t\)"):
            renderer.check_template(name)


def test_filters_format_in_the_receivers_language_and_time_zone(tmp_path):
    body = (
        "{{ d | format_date }}|{{ d | format_date('long') }}|{{ t | format_datetime }}|"
        "{{ t | format_datetime('short') }}|{{ n | format_number }}|{{ s | format_number }}"
    )
    renderer = _template(tmp_path, body)
    (tmp_path / "locales").mkdir()
    _catalog(tmp_path / "locales", "Hei")
    context = {"d": "2026-05-17", "t": "2026-05-17T10:00:00Z", "n": 1234567.5, "s": "0.5"}
    assert renderer.render("t", context, {}, "en").html == (
        "May 17, 2026|May 17, 2026|May 17, 2026, 12:00:00\u202fPM|5/17/26, 12:00\u202fPM|1,234,567.5|0.5"
    )
    assert renderer.render("t", context, {}, "nb").html == (
        "17. mai 2026|17. mai 2026|17. mai 2026, 12:00:00|17.05.2026, 12:00|1\xa0234\xa0567,5|0,5"
    )
    real = {"d": dt.date(2026, 1, 2), "t": dt.datetime(2026, 1, 2, 23, 30, tzinfo=dt.UTC),
            "n": 3, "s": 4}  # fmt: skip
    assert renderer.render("t", real, {}, "en").html.startswith(
        "Jan 2, 2026|January 2, 2026|Jan 3, 2026"
    )


def test_filter_on_a_bad_value_is_a_clear_error(tmp_path):
    renderer = _template(tmp_path, "<p>\n{{ d | format_date }}</p>")
    with pytest.raises(InputError) as info:
        renderer.render("t", {"d": "next week"}, {}, "en")
    assert str(info.value) == (
        f"{tmp_path}/templates/t/body.html line 2: not an ISO 8601 date or time: 'next week'"
    )
