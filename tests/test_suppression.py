"""The suppression list: a mailbox the server says does not exist is not tried again; a person
can add, remove and requeue, and a resend by hand still sends. SQLite and PostgreSQL."""

from __future__ import annotations

import json

from conftest import Cli, mask, sql, write_project

SEND = ("send", "--type", "t", "--subject", "s", "--text", "hello")


def send_json(cli, *to: str) -> dict:
    result = cli(*SEND, *(arg for address in to for arg in ("--to", address)), "--json")
    return json.loads(result.stdout)


def statuses() -> list[tuple]:
    return sql("select id, address, status from receiver order by id")


def test_an_unknown_mailbox_is_suppressed_then_requeued_by_hand(home, smtp, cli):
    smtp.refuse("gone@example.com", "550 5.1.1 <gone@example.com>: user unknown")

    first = send_json(cli, "gone@example.com", "ok@example.com")

    assert (first["sent"], first["error"], first["suppressed"]) == (1, 1, 0)
    (entry,) = json.loads(cli("suppress", "list", "--json").stdout)
    assert entry == {
        "address": "gone@example.com",
        "reason": "recipient refused: 550 5.1.1 <gone@example.com>: user unknown",
        "smtp_code": 550,
        "smtp_reply": "550 5.1.1 <gone@example.com>: user unknown",
        "receiver_id": 1,
        "created_at": entry["created_at"],
        "created_by": "devmsg (refused at RCPT)",
    }

    # The next message to that mailbox (the domain in another case) is stored, not tried.
    smtp.accept("gone@example.com")
    second = send_json(cli, "gone@EXAMPLE.com", "ok@example.com")
    assert (second["attempted"], second["sent"], second["suppressed"]) == (1, 1, 0 + 1)
    assert smtp.recipients() == ["ok@example.com", "ok@example.com"]
    assert statuses()[2:] == [(3, "gone@example.com", "suppressed"), (4, "ok@example.com", "sent")]
    shown = json.loads(cli("show", "3", "--json").stdout)
    assert mask(shown["status_reason"]) == (
        "suppressed: gone@example.com is on the suppression list since <time> CET: "
        "recipient refused: 550 5.1.1 <gone@example.com>: user unknown"
    )
    assert json.loads(cli("resend-failed", "--json").stdout)["attempted"] == 0
    assert json.loads(cli("stats", "--json").stdout)["receivers"]["suppressed"] == 1
    listed = cli("list", "--status", "suppressed")
    assert "gone@example.com" in listed.stdout and "suppressed" in listed.stdout

    result = cli("suppress", "remove", "gone@example.com", "--requeue")

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "suppress: removed 1 address; 1 receiver requeued (devmsg worker or resend-failed delivers them)\n"
    )
    assert json.loads(cli("suppress", "list", "--json").stdout) == []
    assert json.loads(cli("resend-failed", "--json").stdout)["sent"] == 1
    assert smtp.recipients()[-1] == "gone@example.com"
    assert statuses()[2] == (3, "gone@example.com", "sent")


def test_a_policy_refusal_is_not_about_the_mailbox(home, smtp, cli):
    smtp.refuse("a@example.com", "550 5.7.1 rejected by policy")
    smtp.refuse("b@example.com", "451 4.1.1 try later")
    smtp.refuse("c@example.com", "550 no such user")  # no enhanced status: not sure enough
    send_json(cli, "a@example.com", "b@example.com", "c@example.com")
    assert json.loads(cli("suppress", "list", "--json").stdout) == []


def test_a_disabled_mailbox_is_suppressed_and_the_local_part_is_exact(home, smtp, cli):
    smtp.refuse("old@example.com", "550 5.2.1 mailbox disabled")
    send_json(cli, "old@example.com")
    smtp.accept("old@example.com")  # (the test server's rules ignore case)
    report = send_json(cli, "Old@example.com", "old@Example.COM")
    assert (report["sent"], report["suppressed"]) == (1, 1)  # Old@ is another mailbox


def test_resend_by_hand_still_sends_and_a_success_takes_it_off_the_list(home, smtp, cli):
    assert cli("suppress", "add", "a@example.com", "--reason", "asked us to stop").exit_code == 0
    report = send_json(cli, "a@example.com")
    assert (report["attempted"], report["suppressed"]) == (0, 1)
    assert smtp.recipients() == []

    result = cli("resend", "1", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sent"] == 1
    assert smtp.recipients() == ["a@example.com"]
    assert json.loads(cli("suppress", "list", "--json").stdout) == []


def test_a_queued_receiver_is_suppressed_when_its_turn_comes(home, smtp, cli):
    assert cli(*SEND, "--to", "a@example.com", "--to", "b@example.com", "--queue").exit_code == 0
    cli("suppress", "add", "a@example.com")

    report = json.loads(cli("resend-failed", "--json").stdout)

    assert (report["attempted"], report["sent"], report["suppressed"]) == (1, 1, 1)
    assert statuses() == [(1, "a@example.com", "suppressed"), (2, "b@example.com", "sent")]


def test_a_queued_send_does_not_count_suppressed_receivers_as_queued(home, smtp, cli):
    cli("suppress", "add", "a@example.com")
    result = cli(*SEND, "--to", "a@example.com", "--to", "b@example.com", "--queue")
    assert result.stdout == (
        "message 1: queued 1 receiver (devmsg worker or resend-failed delivers them); "
        "1 suppressed (see devmsg suppress list)\n"
    )


def test_suppress_false_stops_additions_but_the_list_applies(home, smtp):
    cli = Cli(write_project(home, smtp.port, extra="suppress = false\n"))
    smtp.refuse("gone@example.com", "550 5.1.1 user unknown")
    send_json(cli, "gone@example.com")
    assert json.loads(cli("suppress", "list", "--json").stdout) == []
    cli("suppress", "add", "x@example.com")
    assert send_json(cli, "x@example.com")["suppressed"] == 1


def test_suppress_add_list_and_remove(home, smtp, cli):
    result = cli("suppress", "add", "a@example.com", "b@example.com", "--reason", "bounced")
    assert (result.exit_code, result.stdout) == (0, "suppress: added 2 addresses\n")
    again = cli("suppress", "add", "a@example.com")
    assert again.stdout == "suppress: added 0 addresses, 1 already listed\n"

    table = cli("suppress", "list")
    lines = [line.rstrip() for line in mask(table.stdout).splitlines() if line.strip()]
    assert lines[0].split() == ["Address", "Since", "Reason", "Receiver", "By"]
    assert [line.split()[0] for line in lines[2:]] == ["b@example.com", "a@example.com"]
    assert all("bounced" in line for line in lines[2:])

    # All or nothing: one address not on the list removes none.
    bad = cli("suppress", "remove", "a@example.com", "zed@example.com")
    assert bad.exit_code == 1
    assert bad.stderr == "Error: not on the suppression list: zed@example.com\n"
    assert len(json.loads(cli("suppress", "list", "--json").stdout)) == 2

    bad = cli("suppress", "add", "not-an-address")
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: ADDRESS: invalid address")
    assert cli("suppress", "remove", "a@example.com", "b@example.com").exit_code == 0
    assert cli("suppress", "list").stdout == "The suppression list is empty.\n"
    # One mailbox written twice is added once, and is not "already listed".
    twice = cli("suppress", "add", "x@example.com", "x@EXAMPLE.com")
    assert twice.stdout == "suppress: added 1 address\n"
