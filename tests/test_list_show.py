"""`devmsg list` and `devmsg show`: filters, tables, JSON."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from conftest import Cli, mask, mask_times, sql, write_project

SEND = ("send", "--subject", "Your results", "--text", "t")


def set_sent_at(cli, receiver_id, utc_text):
    when = dt.datetime.fromisoformat(utc_text)
    sql("update receiver set sent_at = ? where id = ?", (when, receiver_id))


def test_list_table_whole_output(cli, smtp):
    smtp.refuse("kari@example.no", "451 4.3.0 try later")
    cli(*SEND, "--type", "results", "--to", "Ola Nordmann <ola@example.no>")
    cli(*SEND, "--type", "reminder", "--to", "kari@example.no")
    result = cli("list")
    assert result.exit_code == 0
    lines = [line.rstrip() for line in mask_times(result.stdout).splitlines()]
    assert lines == [
        "",
        " ID  Created      Subject       Receiver         Sent  Failed  Status  Sent at      Next attempt  Type",
        " " + "━" * 105,
        "  2  MM-DD hh:mm  Your results  kari@example.no     0       1  failed               MM-DD hh:mm   reminder",
        "  1  MM-DD hh:mm  Your results  Ola Nordmann        1       0  sent    MM-DD hh:mm                results",
        "                                ola@example.no",
        "",
    ]  # fmt: skip


def test_list_filters(cli, smtp):
    smtp.refuse("b@example.com", "451 4.3.0 try later")
    smtp.refuse("c@example.com", "550 5.1.1 no")
    cli(*SEND, "--type", "feedback", "--to", "A@Example.com", "--to", "b@example.com")
    cli(*SEND, "--type", "deadline", "--to", "c@example.com", "--to", "a@example.com")

    def ids(*args):
        result = cli("list", "--json", *args)
        assert result.exit_code == 0, result.output
        return [row["id"] for row in json.loads(result.stdout)]

    assert ids() == [4, 3, 2, 1]
    assert ids("--status", "failed") == [2]
    assert ids("--status", "sent", "--status", "failed") == [4, 2, 1]
    assert ids("--status", "error") == [3]
    assert ids("--status", "sending") == []
    assert ids("--type", "feedback") == [2, 1]
    assert ids("--to", "a@EXAMPLE.com") == [4, 1]
    assert ids("--message", "2") == [4, 3]
    assert ids("--limit", "1") == [4]
    assert ids("--limit", "0") == [4, 3, 2, 1]
    assert ids("--type", "feedback", "--status", "sent") == [1]


def test_list_sent_dates_are_inclusive_in_the_configured_time_zone(cli, smtp):
    cli(*SEND, "--type", "t", "--to", "a@example.com", "--to", "b@example.com",
        "--to", "c@example.com")  # fmt: skip
    # Europe/Oslo is UTC+1 in winter.
    set_sent_at(cli, 1, "2026-03-02 22:30:00")  # 2 March 23:30 in Oslo
    set_sent_at(cli, 2, "2026-03-02 23:30:00")  # 3 March 00:30 in Oslo
    set_sent_at(cli, 3, "2026-03-03 22:59:59")  # 3 March 23:59:59 in Oslo

    def ids(*args):
        return [row["id"] for row in json.loads(cli("list", "--json", *args).stdout)]

    assert ids("--sent-until", "2026-03-02") == [1]
    assert ids("--sent-since", "2026-03-03") == [3, 2]
    assert ids("--sent-since", "2026-03-03", "--sent-until", "2026-03-03") == [3, 2]
    assert ids("--sent-since", "2026-03-02T23:30:00") == [3, 2, 1]
    assert ids("--sent-until", "2026-03-02T23:30:00+01:00") == [1]
    result = cli("list", "--sent-since", "yesterday")
    assert result.exit_code == 1
    assert result.stderr == "Error: --sent-since: not an ISO 8601 date or time: 'yesterday'\n"


def test_list_json_fields_and_times(cli, smtp):
    cli(*SEND, "--type", "t", "--to", "Ola <ola@example.no>", "--language", "nb")
    rows = json.loads(cli("list", "--json").stdout)
    assert list(rows[0]) == [
        "id", "message_id", "type", "created_at", "to", "name", "language", "subject",
        "status", "sent_count", "failed_count", "sent_at", "next_attempt_at", "expires_at",
    ]  # fmt: skip
    row = rows[0]
    assert row["created_at"].endswith("+00:00") and row["sent_at"].endswith("+00:00")
    assert mask(json.dumps(row)) == json.dumps(
        {
            "id": 1,
            "message_id": 1,
            "type": "t",
            "created_at": "<time>",
            "to": "ola@example.no",
            "name": "Ola",
            "language": "nb",
            "subject": "Your results",
            "status": "sent",
            "sent_count": 1,
            "failed_count": 0,
            "sent_at": "<time>",
            "next_attempt_at": None,
            "expires_at": None,
        }  # fmt: skip
    )


def test_list_bad_status_and_empty_store(cli):
    assert cli("resend-failed", "--quiet").exit_code == 0  # makes the store
    result = cli("list")
    assert (result.exit_code, result.stdout) == (0, "No receivers match.\n")
    result = cli("list", "--status", "lost")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: --status: unknown status 'lost' (not_sent, failed, error, sent, held, cancelled, expired, suppressed, bounced, sending)\n"
    )


def test_show_json_has_everything(cli, smtp):
    smtp.refuse("a@example.com", "451 4.3.0 try later", times=1)
    cli(*SEND, "--type", "t", "--to", "a@example.com", "--html", "<p>Hi</p>",
        "--metadata", '{"k": 1}')  # fmt: skip
    cli("resend", "1")
    shown = json.loads(cli("show", "1", "--json").stdout)
    for key in ("id", "message_id", "type", "created_at", "to", "name", "language", "subject",
                "status", "sent_count", "failed_count", "sent_at", "body_text", "body_html",
                "metadata", "failures"):  # fmt: skip
        assert key in shown
    assert shown["body_html"] == "<p>Hi</p>\n"
    assert shown["metadata"] == {"k": 1}
    assert (shown["status"], shown["sent_count"], shown["failed_count"]) == ("sent", 1, 1)
    [failure] = shown["failures"]
    assert list(failure) == ["at", "error", "traceback", "counts"]
    assert failure["error"] == "recipient refused: 451 4.3.0 try later"


def test_show_unknown_id(cli):
    cli("resend-failed", "--quiet")
    result = cli("show", "7")
    assert (result.exit_code, result.stderr) == (1, "Error: no receiver with id 7\n")


def test_show_whole_output(cli, smtp):
    cli("send", "--type", "t", "--subject", "Hello", "--text", "Plain body",
        "--to", "Ola <ola@example.no>")  # fmt: skip
    result = cli("show", "1")
    lines = [line.rstrip() for line in mask(result.stdout).splitlines()]
    assert lines[:19] == [
        "Receiver       #1",
        "Message        #1 (t, template -)",
        "To             Ola <ola@example.no>",
        "Language       en",
        "Status         sent",
        "Status reason  -",
        "Sent count     1",
        "Failed count   0",
        "Created        <time>",
        "Sent at        <time>",
        "Next attempt   -",
        "Claimed by     -",
        "Sent to        ola@example.no",
        "From           Devilry <noreply@devilry.example>",
        "Message-ID     <msgid>",
        f"Created by     {json.loads(cli('show', '1', '--json').stdout)['created_by']}",
        "Context        {}",
        "Metadata       {}",
        "Subject        Hello",
    ]
    assert lines[19].startswith("╭─ Plain text ─")
    assert lines[20].startswith("│ Plain body")
    assert lines[-1] == "No failures."


def test_an_id_that_is_not_a_number_is_one_line_and_exit_1(cli):
    for args in (["show", "abc"], ["resend", "1", "x2"], ["hold", "abc"], ["cancel", "1.5"]):
        result = cli(*args)
        given = args[-1]
        assert (result.exit_code, result.stderr) == (
            1, f"Error: the ID must be a number, not {given!r}\n"), args  # fmt: skip
    result = cli("show")
    assert result.exit_code == 2 and "Missing argument 'ID'" in result.stderr


@pytest.mark.sqlite_only
def test_looking_makes_no_store(home, monkeypatch):
    """list, show, stats, limits and suppress list on a store that is not there say so in
    one line, exit 1, and create nothing; with and without a config file."""
    no_limits = Cli(None)("limits")
    assert (no_limits.exit_code, no_limits.stdout) == (
        0, "No rate limits configured ([rate_limits] in devmsg.toml).\n")  # fmt: skip
    for config in (None, home / "devmsg.toml"):
        if config is not None:
            config.write_text('database = "data/devmsg.sqlite3"\n[rate_limits]\n"*" = "9/s"\n')
            (home / "data").mkdir()
        shown = "./devmsg.sqlite3" if config is None else "./data/devmsg.sqlite3"
        limits = [["limits"]] if config else []  # none configured: nothing to look up
        for args in (["list"], ["show", "1"], ["stats"], ["stats", "--json"], *limits,
                     ["suppress", "list"]):  # fmt: skip
            result = Cli(config)(*args)
            assert (result.exit_code, result.stderr) == (
                1, f"Error: no store at {shown}: devmsg send creates it, or give --config\n"
            ), args  # fmt: skip
        assert sorted(p.name for p in home.rglob("*.sqlite3*")) == []


@pytest.mark.sqlite_only
@pytest.mark.parametrize("columns", [80, 60])
def test_tables_never_cut_an_address_or_a_header(home, smtp, monkeypatch, columns):
    """At 80 and 60 columns (and in a pipe, which is 80): every address and header shown
    is whole; columns that do not fit whole are left out, `show` has them."""
    cli = Cli(write_project(home, smtp.port))
    cli("send", "--type", "deadline_moved", "--subject", "Your deadline moved to next week",
        "--text", "t", "--to", "Sam Long-Name <sam.longname@example.com>",
        "--to", "kari@example.no")  # fmt: skip
    monkeypatch.setenv("COLUMNS", str(columns))
    listed = cli("list").stdout
    assert max(len(line) for line in listed.splitlines()) <= columns
    for whole in ("sam.longname@example.com", "kari@example.no", "deadline_moved", "Status",
                  "Receiver", "Type", "ID"):  # fmt: skip
        assert re.search(rf"(^|\s){re.escape(whole)}(\s|$)", listed, re.M), (whole, listed)
    stats = cli("stats").stdout
    assert max(len(line) for line in stats.splitlines()) <= columns
    for status in ("not_sent", "failed", "error", "sent", "held", "cancelled", "expired",
                   "suppressed", "sending"):  # fmt: skip
        assert re.search(rf"^ {status} +\d+ $", stats, re.M), (status, stats)
    by_type = cli("stats", "--by", "type").stdout
    assert re.search(r"^ Status +deadline_moved $", by_type, re.M), by_type
