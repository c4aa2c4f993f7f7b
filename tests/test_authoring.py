"""Authors' tools: catalog extract/init/update/stats, check and preview, on the example
template and on templates made for the known traps."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest
from babel.messages.pofile import read_po, write_po
from conftest import ROOT, Cli, run, write_project

pytestmark = pytest.mark.sqlite_only  # templates and catalogs: no store involved

CONFIG = """\
templates = "templates"
locales = "locales"
default_language = "en"
languages = {languages}
timezone = "Europe/Oslo"
sender = "Devilry <noreply@devilry.example>"
"""

GREET = {
    "greet/subject.txt": '{{ _("Hello %(name)s", name=receiver.name) }}\n',
    "greet/body.html": (
        "<p>{{ _('Plain hello') }}</p>\n"
        "{# Translators: the course code, like INF1000 #}\n"
        "<p>{% trans course=course %}Welcome to\n"
        "   {{ course }}{% endtrans %}</p>\n"
        '<p>{{ ngettext("%(num)d new file", "%(num)d new files", files) }}</p>\n'
        "<p>{% trans count=comments %}One comment{% pluralize %}{{ count }} comments"
        "{% endtrans %}</p>\n"
        "<p>{{ _('100%% done') }} {% trans %}50% off{% endtrans %}</p>\n"
        "{% include '_shared/footer.html' %}\n"
    ),
    "greet/context.json": '{"course": "INF1000", "files": 3, "comments": 1}\n',
    "_shared/footer.html": "<p>{{ _('Sent by devmsg') }}</p>\n",
}


def project(home: Path, files: dict[str, str], languages=("en", "nb")) -> Cli:
    for name, text in files.items():
        path = home / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (home / "locales").mkdir(exist_ok=True)
    config = home / "devmsg.toml"
    config.write_text(CONFIG.format(languages=json.dumps(list(languages))))
    return Cli(config)


def catalog(home: Path, language: str | None = None):
    path = (
        home / "locales" / (f"{language}/LC_MESSAGES/messages.po" if language else "messages.pot")
    )
    with path.open("rb") as fh:
        return read_po(fh, locale=language)


def translate(home: Path, language: str, strings: dict) -> None:
    """What a translator does: fill in msgstrs (and clear fuzzy) in an editor."""
    po = catalog(home, language)
    for msgid, string in strings.items():
        message = po[msgid]
        message.string = string
        message.flags.discard("fuzzy")
    path = home / "locales" / language / "LC_MESSAGES" / "messages.po"
    with path.open("wb") as fh:
        write_po(fh, po)


def ok(result, stdout: str | None = None):
    assert result.exit_code == 0, result.output
    if stdout is not None:
        assert result.stdout == stdout
    return result


def test_extract_takes_every_msgid_with_the_rendering_settings(home):
    cli = project(home, GREET)

    ok(cli("catalog", "extract"), "locales/messages.pot: 8 msgids\n")

    pot = catalog(home)
    found = [(m.id, m.locations, m.auto_comments, sorted(m.flags)) for m in pot if m.id]
    body = "templates/greet/body.html"
    assert found == [
        ("Sent by devmsg", [("templates/_shared/footer.html", 1)], [], []),  # an _ folder
        ("Plain hello", [(body, 1)], [], []),
        ("Welcome to %(course)s", [(body, 3)],  # trimmed, as rendering trims it
         ["the course code, like INF1000"], ["python-format"]),  # Jinja strips the tag
        (("%(num)d new file", "%(num)d new files"), [(body, 5)], [], ["python-format"]),
        (("One comment", "%(count)s comments"), [(body, 6)], [], ["python-format"]),
        ("100%% done", [(body, 7)], [], ["python-format"]),
        ("50%% off", [(body, 7)], [], ["python-format"]),
        ("Hello %(name)s", [("templates/greet/subject.txt", 1)], [], ["python-format"]),
    ]  # fmt: skip


def test_a_syntax_error_is_one_line_with_its_file_and_line(home):
    files = {**GREET, "greet/body.txt": "Hello\n\n{% if %}\n"}
    cli = project(home, files)

    result = cli("catalog", "extract")

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: templates/greet/body.txt:3: template syntax error: Expected an expression, "
        "got 'end of statement block'\n"
    )
    assert not (home / "locales" / "messages.pot").exists()
    checked = cli("check")
    assert checked.exit_code == 1
    assert checked.stdout.splitlines()[0] == (
        "templates/greet/body.txt:3: error: template syntax error: Expected an expression, "
        "got 'end of statement block'"
    )


def test_round_trip_extract_init_update_translate_check_preview(home):
    cli = project(home, GREET)
    ok(cli("catalog", "extract"))
    ok(cli("catalog", "init", "--language", "nb"), "locales/nb/LC_MESSAGES/messages.po: created\n")
    assert catalog(home, "nb").plural_forms == "nplurals=2; plural=(n != 1);"

    checked = cli("check")  # untranslated: warnings, not errors
    assert checked.exit_code == 0
    assert "templates/greet/body.html" not in checked.stdout  # it renders
    assert cli("check", "--strict").exit_code == 1

    translate(home, "nb", {
        "Hello %(name)s": "Hei %(name)s",
        "Plain hello": "Hei",
        "Welcome to %(course)s": "Velkommen til %(course)s",
        ("%(num)d new file", "%(num)d new files"): ("%(num)d ny fil", "%(num)d nye filer"),
        ("One comment", "%(count)s comments"): ("Én kommentar", "%(count)s kommentarer"),
        "100%% done": "100%% ferdig",
        "50%% off": "50%% avslag",
        "Sent by devmsg": "Sendt av devmsg",
    })  # fmt: skip
    ok(cli("check", "--strict"))
    ok(cli("catalog", "update", "--check"), "nb: 0 new, 0 fuzzy, 0 obsolete\n")

    shown = ok(cli("preview", "greet", "--language", "nb", "--to", "Kari <kari@example.no>"))
    for text in ("Hei Kari", "Velkommen til INF1000", "3 nye filer", "Én kommentar",
                 "100% ferdig", "50% avslag", "Sendt av devmsg"):  # fmt: skip
        assert text in shown.stdout, text
    english = ok(cli("preview", "greet", "--to", "Kari <kari@example.no>"))
    assert "Welcome to INF1000" in english.stdout and "100% done" in english.stdout


def test_update_fuzzy_obsolete_and_back_again(home):
    cli = project(home, GREET)
    ok(cli("catalog", "extract"))
    ok(cli("catalog", "init", "--language", "nb"))
    translate(home, "nb", {"Hello %(name)s": "Hei %(name)s", "Plain hello": "Hei"})

    # A changed msgid: its old translation, marked fuzzy.
    body = GREET["greet/body.html"]
    project(home, {"greet/subject.txt": '{{ _("Hello there %(name)s", name=receiver.name) }}'})
    ok(cli("catalog", "extract"))
    before = (home / "locales/nb/LC_MESSAGES/messages.po").read_bytes()
    result = cli("catalog", "update", "--check")
    assert (result.exit_code, result.stdout) == (1, "nb: 0 new, 1 fuzzy, 0 obsolete\n")
    assert result.stderr == "Error: catalogs out of date: nb (devmsg catalog update)\n"
    assert (home / "locales/nb/LC_MESSAGES/messages.po").read_bytes() == before
    ok(cli("catalog", "update"), "nb: 0 new, 1 fuzzy, 0 obsolete\n")
    changed = catalog(home, "nb")["Hello there %(name)s"]
    assert (changed.string, changed.fuzzy) == ("Hei %(name)s", True)

    # A removed msgid goes obsolete; when it comes back, so does its translation.
    project(home, {"greet/body.html": body.replace("<p>{{ _('Plain hello') }}</p>\n", "")})
    ok(cli("catalog", "extract"))
    ok(cli("catalog", "update"), "nb: 0 new, 0 fuzzy, 1 obsolete\n")
    po = (home / "locales/nb/LC_MESSAGES/messages.po").read_text()
    assert '#~ msgid "Plain hello"\n#~ msgstr "Hei"\n' in po
    project(home, {"greet/body.html": body})
    ok(cli("catalog", "extract"))
    ok(cli("catalog", "update"), "nb: 0 new, 0 fuzzy, 0 obsolete\n")
    po = (home / "locales/nb/LC_MESSAGES/messages.po").read_text()
    assert po.count('"Plain hello"') == 1 and "#~" not in po
    back = catalog(home, "nb")["Plain hello"]
    assert (back.string, back.fuzzy) == ("Hei", False)

    # Without fuzzy matching, a changed msgid starts untranslated and the old one goes.
    project(home, {"greet/subject.txt": '{{ _("Hi there %(name)s", name=receiver.name) }}'})
    ok(cli("catalog", "extract"))
    ok(cli("catalog", "update", "--no-fuzzy-matching"), "nb: 1 new, 0 fuzzy, 1 obsolete\n")
    assert catalog(home, "nb")["Hi there %(name)s"].string == ""


def test_extract_check_compares_msgids_only(home):
    cli = project(home, GREET)
    ok(cli("catalog", "extract"))
    ok(cli("catalog", "extract", "--check"), "locales/messages.pot: up to date (8 msgids)\n")

    project(home, {"greet/body.txt": "{{ _('New line') }}\n"})
    pot = (home / "locales/messages.pot").read_bytes()
    result = cli("catalog", "extract", "--check")
    assert result.exit_code == 1
    assert result.stdout == "locales/messages.pot: lacks 'New line'\n"
    assert result.stderr == (
        "Error: locales/messages.pot is out of date: run devmsg catalog extract\n"
    )
    assert (home / "locales/messages.pot").read_bytes() == pot

    (home / "templates/greet/body.txt").unlink()
    (home / "templates/_shared/footer.html").write_text("<p>no words</p>\n")
    result = cli("catalog", "extract", "--check")
    assert result.stdout == "locales/messages.pot: has 'Sent by devmsg', which no template uses\n"


def test_init_refuses_to_overwrite_and_knows_locales(home):
    cli = project(home, GREET, languages=("en", "nb", "pl"))
    assert cli("catalog", "init", "--language", "nb").stderr == (
        "Error: locales/messages.pot: not found (run devmsg catalog extract)\n"
    )
    ok(cli("catalog", "extract"))
    ok(cli("catalog", "init", "--language", "pl"))
    assert catalog(home, "pl").num_plurals == 3
    again = cli("catalog", "init", "--language", "pl")
    assert (again.exit_code, again.stderr) == (
        1, "Error: locales/pl/LC_MESSAGES/messages.po: already exists (--force replaces it)\n")  # fmt: skip
    ok(cli("catalog", "init", "--language", "pl", "--force"))
    unknown = cli("catalog", "init", "--language", "xx")
    assert (unknown.exit_code, unknown.stderr) == (1, "Error: --language: unknown locale 'xx'\n")
    # A language that is not configured: the catalog is made, and the user told what to add.
    de = ok(cli("catalog", "init", "--language", "de"),
            "locales/de/LC_MESSAGES/messages.po: created\n")  # fmt: skip
    assert de.stderr == (
        'de is not in languages: add it there in devmsg.toml (languages = ["en", "nb", "pl", '
        '"de"]); until then send renders de receivers in en\n'
    )
    assert ok(cli("catalog", "init", "--language", "pl", "--force")).stderr == ""


def test_stats_categories_are_exclusive(home):
    cli = project(home, GREET)
    ok(cli("catalog", "extract"))
    ok(cli("catalog", "init", "--language", "nb"))
    translate(home, "nb", {
        "Hello %(name)s": "Hei %(name)s",
        "Plain hello": "Hei",
        ("%(num)d new file", "%(num)d new files"): ("%(num)d ny fil", ""),  # one form: not done
    })  # fmt: skip
    po = catalog(home, "nb")
    po["Welcome to %(course)s"].string = "Velkommen til %(course)s"
    po["Welcome to %(course)s"].flags.add("fuzzy")
    with (home / "locales/nb/LC_MESSAGES/messages.po").open("wb") as fh:
        write_po(fh, po)
    project(home, {"greet/body.txt": ""})
    (home / "templates/_shared/footer.html").write_text("")
    ok(cli("catalog", "extract"))
    ok(cli("catalog", "update"), "nb: 0 new, 0 fuzzy, 1 obsolete\n")

    data = json.loads(ok(cli("catalog", "stats", "--json")).stdout)

    assert data == [{"language": "nb", "total": 7, "translated": 2, "fuzzy": 1,
                     "untranslated": 4, "obsolete": 1, "percent_translated": 28.6, "source": False}]  # fmt: skip
    table = ok(cli("catalog", "stats")).stdout.splitlines()
    assert table[1].split() == ["Language", "Total", "Translated", "Fuzzy", "Untranslated",
                                "Obsolete", "%"]  # fmt: skip
    assert table[3].split() == ["nb", "7", "2", "1", "4", "1", "28.6"]


BROKEN_NB = """\
msgid ""
msgstr ""
"Language: nb\\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\\n"

msgid "Hello %(name)s"
msgstr "Hei %(navn)s"

msgid "Plain hello"
msgstr ""

#, fuzzy
msgid "Sent by devmsg"
msgstr "Sendt av devmsg"

msgid "Gone for good"
msgstr "Borte"

msgid "Plain hello"
msgstr "Hei"

msgid "100%% done"
msgstr "100% ferdig"

msgid "%(num)d file"
msgid_plural "%(num)d files"
msgstr[0] "%(num)d fil"
"""  # (a plural with a form left empty is untranslated)


def test_check_reports_each_finding_then_the_stats(home):
    files = {
        "greet/subject.txt": '{{ _("Hello %(name)s", name=receiver.name) }}\n',
        "greet/body.html": "<p>{{ _('Plain hello') }} {{ _('100%% done') }}</p>\n"
                           "{% include '_shared/footer.html' %}\n<p>{{ missing }}</p>\n",
        "greet/context.json": "{}\n",
        "_shared/footer.html": "<p>{{ _('Sent by devmsg') }}</p>\n",
        "nocontext/subject.txt": "{{ course }}\n",
        "nocontext/body.html": "<p>{{ _('Welcome') }}</p>\n",
    }  # fmt: skip
    cli = project(home, files, languages=("en", "nb", "de"))
    path = home / "locales/nb/LC_MESSAGES/messages.po"
    path.parent.mkdir(parents=True)
    path.write_text(BROKEN_NB)

    result = cli("check")

    assert result.exit_code == 1
    po = "locales/nb/LC_MESSAGES/messages.po"
    assert result.stdout.splitlines() == [
        "locales/de/LC_MESSAGES/messages.po: error: no catalog for the configured language de "
        "(devmsg catalog init --language de)",
        "templates/greet/body.html:3: error: undefined variable: 'missing' is undefined "
        "(language en)",
        "templates/greet/subject.txt:1: error: the nb translation does not fit its msgid: no "
        "value for %(navn)s (language nb)",
        "templates/nocontext: warning: no context.json, so its variables cannot be checked "
        "(templates/nocontext/subject.txt:1: undefined variable: 'course' is undefined)",
        f"{po}:19: error: duplicate msgid 'Plain hello'",
        f"{po}:6: error: 'Hello %(name)s': the translation has %(navn)s, which the msgid does not",
        f"{po}:6: error: 'Hello %(name)s': the translation lacks %(name)s",
        f"{po}:9: warning: untranslated: 'Plain hello'",
        f"{po}:13: warning: fuzzy: 'Sent by devmsg'",
        f"{po}:16: warning: not used by any template: 'Gone for good'",
        f"{po}:22: error: '100%% done': the translation has '% f', which the msgid does not",
        f"{po}:25: warning: untranslated: '%(num)d file'",
        f"{po}:25: warning: not used by any template: '%(num)d file'",
        f"{po}: warning: 'Welcome' (used at templates/nocontext/body.html:1) is missing: it "
        "goes out in en (devmsg catalog update)",
        "                                                                ",
        " Language  Total  Translated  Fuzzy  Untranslated  Obsolete   % ",
        " ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ ",
        " nb            6           3      1             2         0  50 ",
        "                                                                ",
        "check: 7 errors, 7 warnings",
    ]
    data = json.loads(cli("check", "--json").stdout)
    assert (data["errors"], data["warnings"], len(data["findings"])) == (7, 7, 14)
    assert data["findings"][1] == {
        "path": "templates/greet/body.html", "line": 3, "severity": "error",
        "text": "undefined variable: 'missing' is undefined (language en)",
    }  # fmt: skip
    assert data["stats"] == [{"language": "nb", "total": 6, "translated": 3, "fuzzy": 1,
                              "untranslated": 2, "obsolete": 0,
                              "percent_translated": 50.0, "source": False}]  # fmt: skip
    only = cli("check", "--template", "nocontext", "--language", "en")
    assert (only.exit_code, only.stdout.splitlines()[0]) == (0, (
        "templates/nocontext: warning: no context.json, so its variables cannot be checked "
        "(templates/nocontext/subject.txt:1: undefined variable: 'course' is undefined)"))  # fmt: skip
    assert cli("check", "--template", "nocontext", "--language", "en", "--strict").exit_code == 1


def test_placeholders_of_every_entry_are_compared():
    from devmsg.checks import placeholder_problems as problems

    assert problems("Hi %(name)s", "Hei %(name)s") == []
    assert problems("100%% done", "ferdig: 100 %") == [
        "the translation has a lone % (write %% for a percent sign)"]  # fmt: skip
    assert problems("100%% done", "100%% ferdig") == []
    assert problems("Hi", "Hei %(name)s") == [
        "the translation has %(name)s, which the msgid does not"]  # fmt: skip
    # A plural's forms may drop the count, except the last.
    plural = ("%(count)s file", "%(count)s files")
    assert problems(plural, ("én fil", "%(count)s filer")) == []
    assert problems(plural, ("%(count)s fil", "filer")) == ["the form 1 lacks %(count)s"]
    assert problems(plural, ("%(n)s fil", "%(count)s filer")) == [
        "the form 0 has %(n)s, which the msgid does not"]  # fmt: skip


def test_preview_renders_what_send_stores_and_stores_nothing(home, smtp):
    cli = Cli(write_project(home, smtp.port))

    shown = ok(cli("preview", "deadline_moved", "--language", "nb"))

    lines = [line.rstrip() for line in shown.stdout.splitlines()]
    assert lines[:3] == [
        "To        Ola Nordmann <ola.nordmann@example.com>",
        "Language  nb",
        "Subject   Ny frist for Oblig 2",
    ]
    assert "│ Hei Ola Nordmann," in shown.stdout and "Plain text" in shown.stdout
    assert '│ <html lang="nb">' in shown.stdout
    assert not (home / "store" / "devmsg.sqlite3").exists()
    assert smtp.messages == []

    eml = run("preview", "deadline_moved", "--language", "nb", "--to", "Kari <kari@example.no>",
              "--eml", cwd=home)  # fmt: skip
    assert eml.returncode == 0, eml.stderr
    preview = email.message_from_string(eml.stdout, policy=email.policy.default)
    context = (home / "templates/deadline_moved/context.json").read_text()
    ok(cli("send", "--template", "deadline_moved", "--type", "t", "--context", context,
           "--to", "Kari <kari@example.no>", "--language", "nb"))  # fmt: skip
    sent = email.message_from_bytes(smtp.messages[0].content, policy=email.policy.default)
    for header in ("From", "To", "Subject", "Content-Type", "MIME-Version"):
        assert str(preview[header]).split(";")[0] == str(sent[header]).split(";")[0], header
    for kind in ("plain", "html"):  # (text mode turned the preview's CRLF into LF)
        want = sent.get_body((kind,)).get_content().replace("\r\n", "\n")
        assert preview.get_body((kind,)).get_content() == want


def test_preview_errors_are_one_line(home, smtp):
    cli = Cli(write_project(home, smtp.port))
    result = cli("preview", "deadline_moved", "--context", "{}")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1
    assert "subject.txt line 1: undefined variable: 'assignment' is undefined" in result.stderr
    result = cli("preview", "deadline_moved", "--language", "de")
    assert result.stderr == "Error: --language: 'de' is not a configured language (en, nb)\n"
    assert cli("preview", "nope").exit_code == 1


def test_the_examples_pass_check_strict_and_are_up_to_date():
    for args in (["check", "--strict"], ["catalog", "extract", "--check"],
                 ["catalog", "update", "--check"]):  # fmt: skip
        result = run("--config", str(ROOT / "devmsg.toml"), *args, cwd=ROOT)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert "check: 0 errors, 0 warnings" in run("check", cwd=ROOT).stdout


# A translator's typo, wherever users hit it: in `.txt` (plain str formatting) and in `.html`
# (autoescaped: markupsafe's Markup does the formatting), through each way templates call
# gettext, as a missing value (KeyError) and as a type mismatch.
_CALLS = {
    "gettext": ('{{ _("Hello %(name)s, %(count)d new", name="Ola", count=files) }}',
                "Hello %(name)s, %(count)d new", None),
    "ngettext": ('{{ ngettext("%(num)d file for %(name)s", "%(num)d files for %(name)s", '
                 'files, name="Ola") }}', "%(num)d file for %(name)s",
                 "%(num)d files for %(name)s"),
    "trans": ("{% trans count=files, name='Ola' %}Hi {{ name }}{% pluralize %}Hi {{ name }} and "
              "{{ count }}{% endtrans %}", "Hi %(name)s", "Hi %(name)s and %(count)s"),
}  # fmt: skip


@pytest.mark.parametrize("kind", ["txt", "html"])
@pytest.mark.parametrize("call", sorted(_CALLS))
@pytest.mark.parametrize("typo", ["missing", "type"])
def test_a_translation_that_does_not_fit_is_one_line_everywhere(home, smtp, kind, call, typo):
    source, msgid, plural = _CALLS[call]
    body = f"<p>x</p>\n<p>{source}</p>\n" if kind == "html" else f"x\n{source}\n"
    files = {"t/subject.txt": "Subject\n", "t/body.html": "<p>x</p>\n",
             f"t/body.{kind}": body, "t/context.json": '{"files": 3}\n'}  # fmt: skip
    cli = project(home, files)
    cli.config.write_text(
        cli.config.read_text() + f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\n'
    )
    ok(cli("catalog", "extract"))
    ok(cli("catalog", "init", "--language", "nb"))
    bad = "%(navn)s" if typo == "missing" else "%(name)d"
    forms = [f.replace("%(name)s", bad) for f in (msgid, plural) if f]
    translate(home, "nb", {msgid: tuple(forms) if plural else forms[0]})
    problem = "no value for %(navn)s" if typo == "missing" else "%(name)d cannot format a str"
    where = f"templates/t/body.{kind} line 2"
    want = f"the nb translation does not fit its msgid: {problem}"

    sent = cli("send", "--template", "t", "--type", "t", "--to", "a@example.com",
               "--language", "nb", "--context", '{"files": 3}')  # fmt: skip
    assert (sent.exit_code, sent.stdout) == (1, ""), sent.output
    assert sent.stderr == f"Error: {home / where}: {want}\n"
    assert smtp.messages == []
    shown = cli("preview", "t", "--language", "nb")
    assert (shown.exit_code, shown.stderr) == (1, f"Error: {home / where}: {want}\n")
    found = cli("check", "--json")
    assert {"path": f"templates/t/body.{kind}", "line": 2, "severity": "error",
            "text": f"{want} (language nb)"} in json.loads(found.stdout)["findings"]  # fmt: skip
    ok(cli("send", "--template", "t", "--type", "t", "--to", "a@example.com",
           "--language", "en", "--context", '{"files": 3}'))  # fmt: skip
