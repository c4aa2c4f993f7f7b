"""`devmsg send`: rendering per receiver and language, storing, delivering for real."""

from __future__ import annotations

import email
import email.policy
import json

import pytest
from conftest import DEMO_DATA, FEEDBACK_CONTEXT, Cli, sql, write_project

CONTEXT = json.dumps(
    {
        "assignment": "Oblig 2",
        "deadline": "2026-12-04T23:59:00+01:00",
        "reason": "",
        "url": "https://devilry.example/a/2",
    }
)


def received(smtp, index=0, to=None):
    """A message the server received: the index-th, or the one for `to` (several
    connections deliver in no fixed order)."""
    if to is not None:
        [message] = [m for m in smtp.messages if to in m.rcpt_tos]
    else:
        message = smtp.messages[index]
    raw = message.content.replace(b"\r\n", b"\n")
    return email.message_from_bytes(raw, policy=email.policy.default)


def count_rows(config_path, table="receiver"):
    """Rows in `table`; 0 when devmsg has made no store or no tables yet (nothing stored).
    Any other error is the test's to see."""
    from devmsg.config import load_config

    config = load_config(config_path)
    if config.database_url is None and not config.database.exists():
        return 0
    import sqlite3

    import psycopg

    try:
        return sql(f"select count(*) from {table}", config=config_path)[0][0]
    except sqlite3.OperationalError as exc:
        if str(exc).startswith("no such table"):
            return 0
        raise
    except psycopg.errors.UndefinedTable:
        return 0


def test_send_renders_each_receiver_in_their_language_and_delivers(cli, smtp):
    result = cli(
        "send", "--template", "deadline_moved", "--type", "deadline_moved",
        "--context", CONTEXT,
        "--to", "Ola Nordmann <ola@example.no>", "--to", "alex@example.com",
        "--language", "nb_NO", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == {
        "message_id": 1, "receivers": [1, 2], "queued": False,
        "attempted": 2, "sent": 2, "failed": 0, "error": 0, "deferred": 0, "suppressed": 0,
        "reasons": {}, "paused": False, "duplicates": 0, "fallbacks": {},
    }  # fmt: skip
    assert sorted(smtp.recipients()) == ["alex@example.com", "ola@example.no"]
    msg = received(smtp, to="ola@example.no")
    assert msg["Subject"] == "Ny frist for Oblig 2"
    assert msg["To"] == "Ola Nordmann <ola@example.no>"
    assert msg["From"] == "Devilry <noreply@devilry.example>"
    text = msg.get_body(("plain",)).get_content()
    assert text == (
        "Hei Ola Nordmann,\n\nFristen for Oblig 2 er flyttet.\n\n"
        "Ny frist: 4. desember 2026, 23:59:00 CET\n\n"
        "Åpne oppgaven: https://devilry.example/a/2\n"
    )
    shown = json.loads(cli("show", "1", "--json").stdout)
    assert shown["language"] == "nb"
    assert shown["status"] == "sent"
    assert shown["sent_count"] == 1
    assert shown["body_text"] == text
    assert shown["message_id_header"] == msg["Message-ID"]
    assert shown["sent_to"] == "ola@example.no"
    assert shown["context"]["assignment"] == "Oblig 2"


def test_language_negotiation_and_fallback(cli, smtp, tmp_path):
    rows = tmp_path / "r.csv"
    rows.write_text(
        "address,name,language\n"
        "a@example.com,A,nb-NO\nb@example.com,B,de\nc@example.com,C,\nd@example.com,D,NB\n"
    )
    result = cli("send", "-t", "deadline_moved", "--type", "t", "--context", CONTEXT,
                 "--receivers", str(rows))  # fmt: skip
    assert result.exit_code == 0, result.output
    listed = json.loads(cli("list", "--json").stdout)
    assert {r["to"]: r["language"] for r in listed} == {
        "a@example.com": "nb", "b@example.com": "en", "c@example.com": "en", "d@example.com": "nb",
    }  # fmt: skip
    subjects = {r["to"]: r["subject"] for r in listed}
    assert subjects["a@example.com"] == "Ny frist for Oblig 2"
    assert subjects["b@example.com"] == "New deadline for Oblig 2"


def test_language_option_applies_to_file_rows_without_one(cli, smtp, tmp_path):
    rows = tmp_path / "r.jsonl"
    rows.write_text(
        '{"address": "a@example.com"}\n\n{"address": "b@example.com", "language": "en"}\n'
    )
    result = cli("send", "-t", "deadline_moved", "--type", "t", "--context", CONTEXT,
                 "--receivers", str(rows), "--language", "nb")  # fmt: skip
    assert result.exit_code == 0, result.output
    listed = json.loads(cli("list", "--json").stdout)
    assert {r["to"]: r["language"] for r in listed} == {
        "a@example.com": "nb",
        "b@example.com": "en",
    }


def test_receivers_from_stdin(cli, smtp):
    result = cli("send", "--subject", "Hi", "--text", "Hello", "--type", "t", "--receivers", "-",
                 input="address,name\nx@example.com,X\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert smtp.recipients() == ["x@example.com"]


def test_plain_text_is_derived_from_html_when_there_is_no_body_txt(home, smtp):
    cli = Cli(write_project(home, smtp.port, source=DEMO_DATA))
    result = cli("send", "-t", "feedback", "--type", "feedback", "--context", FEEDBACK_CONTEXT,
                 "--to", "Kari <kari@example.no>", "--language", "nb")  # fmt: skip
    assert result.exit_code == 0, result.output
    text = received(smtp).get_body(("plain",)).get_content()
    assert text == (
        "Hei Kari,\n\nTilbakemeldingen din på Oblig 1 i INF1000 er klar.\n\n"
        "- Publisert: 27. november 2026, 15:30:00 CET\n- Poeng: 87,5\n"
        "- Du har 2 nye kommentarer.\n\n"
        "Les tilbakemeldingen (https://devilry.example/feedback/1)\n"
    )
    html = received(smtp).get_body(("html",)).get_content()
    assert '<a href="https://devilry.example/feedback/1">Les tilbakemeldingen</a>' in html


def test_html_is_autoescaped_but_text_is_not(cli, smtp):
    context = json.loads(CONTEXT) | {"reason": "<script>x</script> & more"}
    result = cli("send", "-t", "deadline_moved", "--type", "t", "--context", json.dumps(context),
                 "--to", "a@example.com")  # fmt: skip
    assert result.exit_code == 0, result.output
    msg = received(smtp)
    assert "&lt;script&gt;x&lt;/script&gt; &amp; more" in msg.get_body(("html",)).get_content()
    assert "Reason: <script>x</script> & more" in msg.get_body(("plain",)).get_content()


def test_send_without_template(cli, smtp):
    result = cli("send", "--type", "notice", "--subject", "Server\nmaintenance",
                 "--html", "<p>Down <b>tonight</b>, see <a href='https://s.example'>status</a></p>",
                 "--to", "a@example.com")  # fmt: skip
    assert result.exit_code == 0, result.output
    msg = received(smtp)
    assert msg["Subject"] == "Server maintenance"
    assert (
        msg.get_body(("plain",)).get_content() == "Down tonight, see status (https://s.example)\n"
    )


def test_header_injection_is_neutralised(cli, smtp):
    context = json.loads(CONTEXT) | {"assignment": "X\r\nBcc: victim@example.com"}
    result = cli("send", "-t", "deadline_moved", "--type", "t", "--context", json.dumps(context),
                 "--to", "Evil\nBcc: victim@example.com <a@example.com>")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert smtp.recipients() == ["a@example.com"]
    msg = received(smtp)
    assert msg["Bcc"] is None
    assert msg["Subject"] == "New deadline for X Bcc: victim@example.com"
    assert msg["To"].addresses[0].addr_spec == "a@example.com"
    assert "\n" not in msg["To"].addresses[0].display_name


def test_address_with_line_break_is_invalid(cli, smtp, tmp_path):
    rows = tmp_path / "r.jsonl"
    rows.write_text(
        '{"address": "a@example.com"}\n{"address": "b@example.com\\nBcc: c@example.com"}\n'
    )
    result = cli("send", "--subject", "s", "--text", "t", "--type", "t", "--receivers", str(rows))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {rows} line 2: invalid address")
    assert result.stderr.count("\n") == 1
    assert count_rows(cli.config) == 0
    assert smtp.messages == []


def test_message_id_is_kept_across_resends(cli, smtp):
    smtp.refuse("a@example.com", "451 4.3.0 try later", times=1)
    cli("send", "--subject", "s", "--text", "t", "--type", "t", "--to", "a@example.com")
    assert cli("resend", "1").exit_code == 0
    assert cli("resend", "1").exit_code == 0
    ids = {received(smtp, i)["Message-ID"] for i in range(len(smtp.messages))}
    assert len(smtp.messages) == 2 and len(ids) == 1
    assert smtp.messages[0].content == smtp.messages[1].content


def test_bad_input_stores_nothing(cli, smtp, tmp_path):
    good_csv = tmp_path / "good.csv"
    good_csv.write_text("address\na@example.com\n")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("address,name\na@example.com,A\nnot-an-address,B\nc@example.com,C\n")
    cases = [
        (["-t", "nope", "--to", "a@example.com"], "Error: unknown template 'nope'"),
        (["-t", "deadline_moved", "--context", "{bad", "--to", "a@example.com"],
         "Error: --context: invalid JSON"),
        (["-t", "deadline_moved", "--context", "[1]", "--to", "a@example.com"],
         "Error: --context: must be a JSON object, got list"),
        (["-t", "deadline_moved", "--context", "{}", "--to", "a@example.com"],
         "Error: "),  # undefined variable, checked below
        (["-t", "deadline_moved", "--context", CONTEXT, "--receivers", str(bad_csv)],
         f"Error: {bad_csv} line 3: invalid address 'not-an-address'"),
        (["-t", "deadline_moved", "--context", CONTEXT, "--receivers", str(tmp_path / "no.csv")],
         f"Error: {tmp_path / 'no.csv'}: cannot read receivers file"),
        (["-t", "deadline_moved", "--context", CONTEXT, "--to", "x@"], "Error: --to 'x@': invalid"),
        (["-t", "deadline_moved", "--context", CONTEXT],
         "Error: no receivers: give --to or --receivers"),
        (["-t", "deadline_moved", "--context", CONTEXT, "--to", "a@example.com",
          "--receivers", str(good_csv)], "Error: give receivers with --to or with --receivers, not both"),
        (["--subject", "s", "--to", "a@example.com"], "Error: without --template, give"),
        (["-t", "deadline_moved", "--subject", "s", "--to", "a@example.com"],
         "Error: give either --template or --subject/--text/--html, not both"),
        (["--subject", "s", "--text", "t", "--metadata", "3", "--to", "a@example.com"],
         "Error: --metadata: must be a JSON object"),
    ]  # fmt: skip
    for args, expected in cases:
        result = cli("send", "--type", "t", *args)
        usage = "no receivers" in expected or "not both" in expected or "without" in expected
        assert result.exit_code == (2 if usage else 1), (args, result.output)
        assert result.stderr.startswith(expected), (args, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.output
    assert count_rows(cli.config, "message") == 0
    assert count_rows(cli.config) == 0
    assert smtp.messages == []


def test_undefined_variable_is_an_error_naming_the_file(cli, smtp):
    result = cli("send", "--type", "t", "-t", "deadline_moved", "--context", '{"assignment": "A"}',
                 "--to", "a@example.com")  # fmt: skip
    assert result.exit_code == 1
    assert (
        "templates/deadline_moved/body.html line 6: undefined variable: 'deadline' is undefined"
        in (result.stderr)
    )


def test_refused_recipients_and_server_down_are_failures_never_sent(cli, smtp, home, closed_port):
    smtp.refuse("later@example.com", "451 4.3.0 mailbox busy")
    smtp.refuse("nobody@example.com", "550 5.1.1 no such user")
    result = cli("send", "--subject", "s", "--text", "t", "--type", "t", "--to", "ok@example.com",
                 "--to", "later@example.com", "--to", "nobody@example.com")  # fmt: skip
    assert result.exit_code == 3
    assert result.stdout == (
        "message 1: attempted 3, sent 1, failed 1, error 1\n"
        "failed 1: recipient refused: 451 4.3.0 mailbox busy (1)\n"
        "error 1: recipient refused: 550 5.1.1 no such user (1)\n"
    )
    assert result.stderr == (
        "Not sent: see devmsg list --message 1 --status failed --status error\n"
    )
    listed = {r["to"]: r for r in json.loads(cli("list", "--json").stdout)}
    assert listed["ok@example.com"]["status"] == "sent"
    assert listed["later@example.com"]["status"] == "failed"
    assert listed["nobody@example.com"]["status"] == "error"  # 5xx at RCPT: permanent
    failure = json.loads(cli("show", str(listed["nobody@example.com"]["id"]), "--json").stdout)
    assert failure["failures"][0]["error"] == "recipient refused: 550 5.1.1 no such user"
    assert "Traceback (most recent call last)" in failure["failures"][0]["traceback"]

    (home / "down").mkdir()
    down = Cli(write_project(home / "down", closed_port))
    result = down("send", "--subject", "s", "--text", "t", "--type", "t",
                  "--to", "a@example.com", "--to", "b@example.com")  # fmt: skip
    assert result.exit_code == 3
    for row in json.loads(down("list", "--json").stdout):
        assert row["status"] == "failed" and row["sent_count"] == 0
        detail = json.loads(down("show", str(row["id"]), "--json").stdout)
        assert detail["failures"][0]["error"] == f"127.0.0.1:{closed_port}: connection refused"


def test_dropped_connection_is_a_failure_and_the_next_receiver_still_goes(cli, smtp):
    smtp.refuse("drop@example.com", "drop")
    result = cli("send", "--subject", "s", "--text", "t", "--type", "t",
                 "--to", "drop@example.com", "--to", "after@example.com")  # fmt: skip
    assert result.exit_code == 3
    listed = {r["to"]: r["status"] for r in json.loads(cli("list", "--json").stdout)}
    assert listed == {"drop@example.com": "failed", "after@example.com": "sent"}
    detail = json.loads(cli("show", "1", "--json").stdout)
    assert "connection lost" in detail["failures"][0]["error"]


def test_idn_domain_is_sent_as_punycode(cli, smtp):
    result = cli(
        "send", "--subject", "s", "--text", "t", "--type", "t", "--to", "ola@bücher.example"
    )
    assert result.exit_code == 0, result.output
    assert smtp.recipients() == ["ola@xn--bcher-kva.example"]
    shown = json.loads(cli("show", "1", "--json").stdout)
    assert shown["to"] == "ola@bücher.example"
    assert shown["sent_to"] == "ola@xn--bcher-kva.example"


def test_metadata_and_creator_are_stored(cli, smtp):
    cli("send", "--subject", "s", "--text", "t", "--type", "t", "--to", "a@example.com",
        "--metadata", '{"course_id": 7}')  # fmt: skip
    shown = json.loads(cli("show", "1", "--json").stdout)
    assert shown["metadata"] == {"course_id": 7}
    assert shown["created_by"]


def test_redirect_to_delivers_everything_to_one_address(home, smtp):
    cli = Cli(write_project(home, smtp.port, extra='redirect_to = "staging@example.org"\n'))
    result = cli(
        "send", "--subject", "s", "--text", "t", "--type", "t", "--to", "Ola <ola@example.no>"
    )
    assert result.exit_code == 0, result.output
    assert smtp.recipients() == ["staging@example.org"]
    assert received(smtp)["To"] == "Ola <ola@example.no>"
    shown = json.loads(cli("show", "1", "--json").stdout)
    assert (shown["to"], shown["sent_to"]) == ("ola@example.no", "staging@example.org")


def test_one_mail_per_mailbox_per_message(cli, smtp, home):
    (home / "dup.csv").write_text(
        "address,name,language\n"
        "Ola@Example.no,Ola,nb\n"
        "Ola@EXAMPLE.NO,Ola again,en\n"  # the same mailbox: merged, the first wins
        "ola@example.no,Other,en\n"  # another local part: its own mailbox
        "kari@example.no,Kari,nb\n"
    )
    result = cli("send", "--type", "t", "--subject", "s", "--text", "t", "--receivers",
                 "dup.csv", "--json")  # fmt: skip
    assert json.loads(result.stdout)["duplicates"] == 1
    rows = json.loads(cli("list", "--json").stdout)
    assert sorted((r["to"], r["name"], r["language"]) for r in rows) == [
        ("Ola@example.no", "Ola", "nb"), ("kari@example.no", "Kari", "nb"),
        ("ola@example.no", "Other", "en"),
    ]  # fmt: skip
    assert len(smtp.messages) == 3
    human = cli("send", "--type", "t", "--subject", "s", "--text", "t",
                "--to", "a@example.com", "--to", "a@EXAMPLE.COM")  # fmt: skip
    assert human.stderr == "1 duplicate receiver merged: one mail per mailbox\n"


@pytest.mark.parametrize(
    ("line", "told"),
    [
        ('{"address": 5}', "address must be text, not a number"),
        ('{"address": ["a@example.com"]}', "address must be text, not a list"),
        ('{"address": "a@example.com", "name": {"x": 1}}', "name must be text, not an object"),
        ('{"address": "a@example.com", "language": true}', "language must be text, not true/false"),
        ('{"name": "Ola"}', "missing address"),
        ('{"address": " "}', "missing address"),
    ],
)
def test_a_jsonl_row_with_a_value_that_is_not_text_says_which(cli, smtp, tmp_path, line, told):
    rows = tmp_path / "r.jsonl"
    rows.write_text('{"address": "a@example.com"}\n' + line + "\n")
    result = cli("send", "--subject", "s", "--text", "t", "--type", "t", "--receivers", str(rows))
    assert (result.exit_code, result.stderr) == (1, f"Error: {rows} line 2: {told}\n")
    assert count_rows(cli.config) == 0
    assert smtp.messages == []


def test_local_test_addresses_need_allow_local_domains(cli, smtp):
    """localhost and .test are special-use: refused, naming the key that accepts them."""
    for address in ("dev@localhost", "ola@school.test"):
        result = cli("send", "--type", "t", "--subject", "s", "--text", "t", "--to", address)
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: --to {address!r}: invalid address {address!r}")
        assert result.stderr.endswith(
            "(allow_local_domains = true in devmsg.toml accepts localhost, .test and a@host)\n"
        )
    assert count_rows(cli.config) == 0
    cli.config.write_text("allow_local_domains = true\n" + cli.config.read_text())
    result = cli("send", "--type", "t", "--subject", "s", "--text", "t",
                 "--to", "dev@localhost", "--to", "Ola <ola@School.test>")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(smtp.recipients()) == ["dev@localhost", "ola@school.test"]
    result = cli("send", "--type", "t", "--subject", "s", "--text", "t", "--to", "a b@localhost")
    assert result.exit_code == 1 and "invalid address 'a b@localhost'" in result.stderr


def test_context_and_metadata_from_a_file_or_stdin(cli, smtp, tmp_path):
    ctx = tmp_path / "ctx.json"
    ctx.write_text(CONTEXT)
    meta = tmp_path / "meta.json"
    meta.write_text('{"course": "INF1000"}')
    base = ["send", "-t", "deadline_moved", "--type", "t", "--to", "a@example.com"]
    result = cli(*base, "--context", f"@{ctx}", "--metadata", f"@{meta}")
    assert result.exit_code == 0, result.output
    result = cli(*base, "--context", "@-", input=CONTEXT)
    assert result.exit_code == 0, result.output
    assert sql("SELECT metadata FROM message ORDER BY id", config=cli.config) == [
        ('{"course": "INF1000"}',), ("{}",)]  # fmt: skip
    assert len(smtp.messages) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    for args, told in [
        (["--context", f"@{tmp_path / 'none.json'}"],
         f"--context {tmp_path / 'none.json'}: cannot read the file: No such file or directory"),
        (["--context", f"@{bad}"], f"--context {bad}: must be a JSON object, got list"),
        (["--context", f"@{ctx}", "--metadata", f"@{tmp_path}"],
         f"--metadata {tmp_path}: cannot read the file: Is a directory"),
    ]:  # fmt: skip
        result = cli(*base, *args)
        assert (result.exit_code, result.stderr) == (1, f"Error: {told}\n")
    assert len(sql("SELECT id FROM message", config=cli.config)) == 2


def test_the_summary_says_why_and_which_languages_fell_back(home, closed_port, tmp_path):
    """A dead server: the reasons, grouped with counts, in the summary and the JSON; a
    language that is not configured: rendered in the default one, and said so."""
    config = home / "devmsg.toml"
    config.write_text(f'[smtp]\nhost = "127.0.0.1"\nport = {closed_port}\n')
    cli = Cli(config)
    result = cli("send", "--type", "t", "--subject", "s", "--text", "t", "--to", "a@example.com",
                 "--to", "b@example.com", "--language", "de")  # fmt: skip
    refused = f"127.0.0.1:{closed_port}: connection refused"
    assert (result.exit_code, result.stdout) == (3, (
        "2 receivers asked for de: sent in en\n"
        "message 1: attempted 2, sent 0, failed 2, error 0\n"
        f"failed 2: {refused} (2)\n"))  # fmt: skip
    result = cli("send", "--json", "--type", "t", "--subject", "s", "--text", "t",
                 "--to", "c@example.com", "--language", "nb")  # fmt: skip
    data = json.loads(result.stdout)
    assert (data["reasons"], data["fallbacks"]) == ({refused: 1}, {"nb": "en"})
    result = cli("resend", "1", "3")
    assert result.stdout == (
        f"resend: attempted 2, sent 0, failed 2, error 0\nfailed 2: {refused} (2)\n"
    )
    result = cli("send", "--queue", "--type", "t", "--subject", "s", "--text", "t",
                 "--to", "d@example.com", "--language", "en_GB")  # fmt: skip
    assert (
        result.stdout
        == "message 3: queued 1 receiver (devmsg worker or resend-failed delivers them)\n"
    )


def test_only_one_option_reads_stdin(cli, smtp):
    result = cli("send", "--type", "t", "--subject", "s", "--text", "t", "--receivers", "-",
                 "--metadata", "@-", input="address\na@example.com\n")  # fmt: skip
    assert (result.exit_code, result.stderr) == (
        2, "Error: --metadata and --receivers cannot both read stdin\n")  # fmt: skip
    assert count_rows(cli.config) == 0
