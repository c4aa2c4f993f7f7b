"""Bounces read back: per-receiver return paths (VERP) seen by the SMTP server, the DSNs of
Postfix, Exim, Exchange and Gmail and older non-standard bounces, through stdin, mbox and
Maildir, making the right receiver `bounced` and suppressing its address; what must change
nothing (a forged token, another domain, a second read); delays and complaints; and
hostile mail. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import mailbox
import os
import re
import subprocess

import pytest
from bounce_mail import FORMATS, complaint, delayed, postfix
from conftest import Cli, devmsg_command, sql, write_project

RETURN_PATH = "bounces+{token}@devilry.example"
BOUNCES = f'[bounces]\nreturn_path = "{RETURN_PATH}"\n'
VERP = re.compile(r"^bounces\+(\d+)-[0-9a-z]{13}@devilry\.example$")
SEND = ("send", "--type", "t", "--subject", "s", "--text", "hello")


@pytest.fixture
def vcli(home, smtp):
    """A project whose return path is VERP."""
    return Cli(write_project(home, smtp.port, extra=BOUNCES))


def send(cli, *to: str) -> None:
    result = cli(*SEND, *(arg for address in to for arg in ("--to", address)))
    assert result.exit_code == 0, result.output


def receivers() -> dict[str, tuple]:
    rows = sql("select address, id, status, message_id_header from receiver order by id")
    return {address: (rid, status, msgid) for address, rid, status, msgid in rows}


def envelope_of(smtp, address: str) -> str:
    (got,) = [r for r in smtp.messages if r.rcpt_tos == [address]]
    return got.mail_from


def ingest(cli, source: str, raw: bytes, home) -> dict:
    """`bounces ingest --json` of one message, from stdin, an mbox file or a Maildir."""
    if source == "stdin":
        result = cli("bounces", "ingest", "--json", input=raw)
    elif source == "mbox":
        box = mailbox.mbox(home / "bounces.mbox")
        box.add(raw)
        box.close()
        result = cli("bounces", "ingest", "--json", "--mbox", str(home / "bounces.mbox"))
    else:
        box = mailbox.Maildir(home / "Maildir")
        box.add(raw)
        box.close()
        result = cli("bounces", "ingest", "--json", "--maildir", str(home / "Maildir"))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def counts(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "messages"}


def test_each_receiver_has_its_own_return_path_and_the_from_header_stays(vcli, smtp):
    send(vcli, "a@example.com", "b@example.com", "c@example.com")

    rows = receivers()
    senders = {}
    for address, (rid, status, _) in rows.items():
        envelope = envelope_of(smtp, address)
        match = VERP.match(envelope)
        assert match and int(match[1]) == rid and status == "sent", envelope
        senders[address] = envelope
    assert len(set(senders.values())) == 3
    for got in smtp.messages:
        assert b"\r\nFrom: Devilry <noreply@devilry.example>\r\n" in b"\r\n" + got.content


@pytest.mark.parametrize("source", ["stdin", "mbox", "maildir"])
@pytest.mark.parametrize("form", sorted(FORMATS))
def test_a_bounce_makes_its_receiver_bounced_and_suppresses_the_address(
    vcli, smtp, home, form, source
):
    send(vcli, "dead@example.com", "alive@example.com")
    rid, _, msgid = receivers()["dead@example.com"]

    raw = FORMATS[form](envelope_of(smtp, "dead@example.com"), "dead@example.com", msgid)
    report = ingest(vcli, source, raw, home)

    assert counts(report) == {"read": 1, "matched": 1, "bounced": 1, "delayed": 0,
                              "complaints": 0, "duplicates": 0, "suppressed": 1,
                              "unmatched": 0, "rejected": 0}  # fmt: skip
    assert report["messages"][0]["receiver_ids"] == [rid]
    rows = receivers()
    assert rows["dead@example.com"][1] == "bounced"
    assert rows["alive@example.com"][1] == "sent"
    (reason,) = sql("select status_reason from receiver where id = ?", (rid,))[0:1]
    assert re.fullmatch(r"bounced: 5\.1\.10? .+ \(reported by [\w.-]+ at 2026-12-03 10:15 CET\)",
                        reason[0]), reason  # fmt: skip
    (entry,) = json.loads(vcli("suppress", "list", "--json").stdout)
    assert (entry["address"], entry["receiver_id"]) == ("dead@example.com", rid)
    assert entry["reason"].startswith("bounced: 5.1.1")
    if source == "maildir":  # processed: moved to cur/, seen
        assert not list((home / "Maildir" / "new").iterdir())
        (done,) = (home / "Maildir" / "cur").iterdir()
        assert done.name.endswith(":2,S")


def test_show_list_stats_and_prometheus_tell_of_the_bounce(vcli, smtp, home):
    send(vcli, "dead@example.com", "alive@example.com")
    rid, _, msgid = receivers()["dead@example.com"]
    ingest(vcli, "stdin", postfix(envelope_of(smtp, "dead@example.com"), "dead@example.com",
                                  msgid), home)  # fmt: skip

    listed = json.loads(vcli("list", "--status", "bounced", "--json").stdout)
    assert [row["id"] for row in listed] == [rid]
    detail = json.loads(vcli("show", str(rid), "--json").stdout)
    assert (detail["sent_count"], detail["failed_count"]) == (1, 1)
    (failure,) = detail["failures"]
    assert failure["error"] == detail["status_reason"]
    assert "Status: 5.1.1" in failure["traceback"]
    assert [r["kind"] for r in detail["reports"]] == ["failed"]
    shown = vcli("show", str(rid)).stdout
    assert "bounced: 5.1.1 550 5.1.1 <dead@example.com>: Recipient address rejected" in shown
    stats = json.loads(vcli("stats", "--json").stdout)
    assert (stats["receivers"]["bounced"], stats["bounces_last_24h"]) == (1, 1)
    prometheus = vcli("stats", "--prometheus").stdout
    assert "\ndevmsg_bounces_last_24h 1\n" in prometheus
    assert 'devmsg_receivers{status="bounced"} 1' in prometheus


def test_without_a_return_path_the_original_message_id_matches(cli, smtp, home):
    send(cli, "dead@example.com", "alive@example.com")
    assert envelope_of(smtp, "dead@example.com") == "noreply@devilry.example"
    rid, _, msgid = receivers()["dead@example.com"]

    report = ingest(cli, "mbox", postfix("noreply@devilry.example", "dead@example.com", msgid),
                    home)  # fmt: skip

    assert (report["bounced"], report["messages"][0]["receiver_ids"]) == (1, [rid])
    assert receivers()["dead@example.com"][1] == "bounced"


def test_a_forged_token_another_domain_and_a_second_read_change_nothing_more(vcli, smtp, home):
    send(vcli, "dead@example.com", "alive@example.com")
    dead, _, msgid = receivers()["dead@example.com"]
    alive, _, alive_msgid = receivers()["alive@example.com"]
    real = envelope_of(smtp, "dead@example.com")
    forged = re.sub(r"\+\d+-", f"+{alive}-", real)  # another receiver's id, dead's MAC
    other_domain = real.replace("@devilry.example", "@elsewhere.example")

    report = ingest(vcli, "stdin", postfix(forged, "alive@example.com", alive_msgid), home)
    assert counts(report)["unmatched"] == 1
    assert "not valid" in report["messages"][0]["why"]
    report = ingest(vcli, "stdin", postfix(other_domain, "x@elsewhere.example", "<1.2@x>"), home)
    assert counts(report)["unmatched"] == 1
    assert receivers()["alive@example.com"][1] == "sent"
    assert sql("select count(*) from bounce") == [(0,)]

    bounce = postfix(real, "dead@example.com", msgid)
    first = ingest(vcli, "stdin", bounce, home)
    before = sql("select status, failed_count, status_reason from receiver order by id")
    second = ingest(vcli, "stdin", bounce, home)

    assert (first["bounced"], second["bounced"], second["duplicates"]) == (1, 0, 1)
    assert sql("select status, failed_count, status_reason from receiver order by id") == before
    assert sql("select count(*) from bounce") == [(1,)]
    assert sql("select count(*) from failure") == [(1,)]
    assert sql("select count(*) from suppression") == [(1,)]
    text = vcli("bounces", "ingest", input=bounce).stdout
    assert text == (
        "bounces: read 1: 0 bounced, 0 delayed, 0 complaints, 0 unmatched, 0 rejected; "
        "1 read before (nothing changed)\n"
    )


def test_a_delay_notice_is_noted_and_changes_no_status(vcli, smtp, home):
    send(vcli, "slow@example.com")
    rid, _, msgid = receivers()["slow@example.com"]

    report = ingest(vcli, "stdin", delayed(envelope_of(smtp, "slow@example.com"),
                                           "slow@example.com", msgid), home)  # fmt: skip

    assert (report["delayed"], report["bounced"], report["suppressed"]) == (1, 0, 0)
    assert receivers()["slow@example.com"][1] == "sent"
    assert vcli("suppress", "list").stdout == "The suppression list is empty.\n"
    shown = vcli("show", str(rid)).stdout
    assert "Delay notice at 2026-12-03 10:15" in shown
    assert "4.4.1 connect to mx.example.no[192.0.2.25]:25: Connection timed out" in shown


@pytest.mark.parametrize("status", ["5.2.2", "5.7.1"])
def test_a_full_mailbox_or_a_policy_refusal_bounces_but_is_not_suppressed(vcli, smtp, home, status):
    send(vcli, "full@example.com")
    rid, _, msgid = receivers()["full@example.com"]

    raw = postfix(envelope_of(smtp, "full@example.com"), "full@example.com", msgid, status)
    report = ingest(vcli, "maildir", raw, home)

    assert (report["bounced"], report["suppressed"]) == (1, 0)
    assert receivers()["full@example.com"][1] == "bounced"
    assert sql("select count(*) from suppression") == [(0,)]


def test_a_complaint_suppresses_and_only_force_removes_it(vcli, smtp, home):
    send(vcli, "annoyed@example.com")
    rid, _, msgid = receivers()["annoyed@example.com"]

    raw = complaint(envelope_of(smtp, "annoyed@example.com"), "annoyed@example.com", msgid)
    report = ingest(vcli, "stdin", raw, home)

    assert (report["complaints"], report["suppressed"], report["bounced"]) == (1, 1, 0)
    assert receivers()["annoyed@example.com"][1] == "sent"
    (entry,) = json.loads(vcli("suppress", "list", "--json").stdout)
    assert (entry["address"], entry["reason"]) == ("annoyed@example.com", "complaint")
    refused = vcli("suppress", "remove", "annoyed@example.com")
    assert refused.exit_code == 1
    assert refused.stderr == (
        "Error: annoyed@example.com: on the list by a complaint (reported as spam by its "
        "reader); --force removes it anyway\n"
    )
    assert sql("select count(*) from suppression") == [(1,)]
    assert vcli("suppress", "remove", "annoyed@example.com", "--force").exit_code == 0
    assert sql("select count(*) from suppression") == [(0,)]


def test_what_is_not_a_bounce_or_too_big_is_rejected_and_changes_nothing(home, smtp):
    cli = Cli(write_project(home, smtp.port, extra=BOUNCES + "max_size = 4096\n"))
    send(cli, "a@example.com")
    before = sql("select status, status_reason from receiver")
    mail = b"From: x@example.org\r\nSubject: hello\r\n\r\nJust a letter.\r\n"

    box = mailbox.mbox(home / "in.mbox")
    box.add(mail)
    box.add(b"Subject: big\r\n\r\n" + b"x" * 5000)
    box.add(b"\x00\xff garbage \r\n\r\n\r\n--")
    box.close()
    result = cli("bounces", "ingest", "--mbox", str(home / "in.mbox"))

    assert result.exit_code == 0
    assert result.stdout == (
        "bounces: read 3: 0 bounced, 0 delayed, 0 complaints, 0 unmatched, 3 rejected\n"
        "  rejected: in.mbox message 1: not a bounce: no delivery report, complaint or known "
        "bounce format\n"
        "  rejected: in.mbox message 2: too big: 5017 bytes (bounces.max_size is 4096)\n"
        "  rejected: in.mbox message 3: not a bounce: no delivery report, complaint or known "
        "bounce format\n"
    )
    assert sql("select status, status_reason from receiver") == before
    assert sql("select count(*) from bounce") == [(0,)]


def test_bad_sources_are_one_line(vcli, home):
    for args, line in [
        (("--mbox", "nope.mbox"), "Error: nope.mbox: no such mbox file\n"),
        (("--maildir", "."), "Error: .: not a Maildir (no new/ and cur/ folders)\n"),
        (("--imap", "imap://bob@127.0.0.1/INBOX"),
         "Error: imap://bob@127.0.0.1/INBOX: use imaps:// (IMAP over TLS)\n"),
        (("--imap", "imaps://bob:pw@127.0.0.1/INBOX"),
         "Error: imaps://127.0.0.1: no password in the URL; use $DEVMSG_IMAP_PASSWORD\n"),
    ]:  # fmt: skip
        result = vcli("bounces", "ingest", *args)
        assert (result.exit_code, result.stderr) == (1, line), args
    result = vcli("bounces", "ingest", "--mbox", "a", "--maildir", "b")
    assert (result.exit_code, result.stderr) == (2, "Error: give one of --mbox and --maildir\n")


def test_the_installed_command_reads_a_pipe_with_postfix_s_environment(vcli, smtp, home):
    """Postfix's alias pipe: the bounce on stdin, the address it came to in
    $ORIGINAL_RECIPIENT (here the bounce's own headers name no return path)."""
    send(vcli, "dead@example.com")
    rid, _, msgid = receivers()["dead@example.com"]
    raw = postfix("postmaster@devilry.example", "dead@example.com", "<not-ours@x>")
    env = {"ORIGINAL_RECIPIENT": envelope_of(smtp, "dead@example.com")}

    done = subprocess.run(
        [devmsg_command(), "--config", str(vcli.config), "bounces", "ingest"], input=raw,
        capture_output=True, cwd=home, env={**os.environ, **env}, timeout=60,
    )  # fmt: skip

    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.startswith(b"bounces: read 1: 1 bounced,")
    assert receivers()["dead@example.com"][1] == "bounced"


@pytest.mark.sqlite_only
def test_a_pipe_whose_store_is_unavailable_exits_75_so_the_mta_retries(home, smtp):
    path = write_project(home, smtp.port, extra=BOUNCES)
    path.write_text(path.read_text().replace("store/devmsg.sqlite3", "no/such/dir/x.sqlite3"))

    result = Cli(path)("bounces", "ingest", input=b"Subject: x\r\n\r\nbody")

    assert result.exit_code == 75
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1


def test_purge_takes_a_receiver_s_bounces_with_it(vcli, smtp, home):
    send(vcli, "dead@example.com")
    rid, _, msgid = receivers()["dead@example.com"]
    ingest(vcli, "stdin", postfix(envelope_of(smtp, "dead@example.com"), "dead@example.com",
                                  msgid), home)  # fmt: skip
    assert sql("select count(*) from bounce") == [(1,)]
    old = dt.datetime(2020, 1, 1)
    sql("update receiver set created_at = ?", (old,))

    assert vcli("purge", "--older-than", "90d").exit_code == 0

    assert sql("select count(*) from bounce") == [(0,)]
    assert sql("select count(*) from receiver") == [(0,)]
    assert sql("select count(*) from suppression") == [(1,)]  # the dead address stays listed


@pytest.mark.postgres_only
def test_a_store_copied_to_postgresql_keeps_its_key_and_its_bounces_match(home, smtp):
    """Mail sent from SQLite, the store moved by `store copy`: a bounce of that mail, read
    on PostgreSQL, still names its receiver (the key went with the store)."""
    from conftest import STORE

    pg_url = STORE["url"]
    (home / "lite").mkdir()
    STORE["url"] = None
    lite = Cli(write_project(home / "lite", smtp.port, extra=BOUNCES))
    send(lite, "dead@example.com", "alive@example.com")
    ((rid,),) = sql("select id from receiver where address = ?", ("dead@example.com",),
                    config=lite.config)  # fmt: skip
    STORE["url"] = pg_url
    assert lite("store", "copy", "--to", pg_url).exit_code == 0
    pg = Cli(write_project(home, smtp.port, extra=BOUNCES))

    report = ingest(pg, "stdin", postfix(envelope_of(smtp, "dead@example.com"),
                                         "dead@example.com", "<other@x>"), home)  # fmt: skip

    assert (report["bounced"], report["messages"][0]["receiver_ids"]) == (1, [rid])
    assert receivers()["dead@example.com"][1] == "bounced"
    assert receivers()["alive@example.com"][1] == "sent"


def test_a_bounce_for_a_receiver_no_longer_sent_is_history_not_a_bounced_status(vcli, smtp, home):
    send(vcli, "dead@example.com")
    rid, _, msgid = receivers()["dead@example.com"]
    sql("update receiver set status = 'held' where id = ?", (rid,))  # held since it went

    report = ingest(vcli, "stdin", postfix(envelope_of(smtp, "dead@example.com"),
                                           "dead@example.com", msgid), home)  # fmt: skip

    assert (report["matched"], report["bounced"]) == (1, 0)
    assert sql("select status, failed_count from receiver where id = ?", (rid,)) == [("held", 1)]
    assert sql("select count(*) from failure") == [(1,)]
