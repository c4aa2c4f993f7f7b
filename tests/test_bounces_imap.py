"""`bounces ingest --imap` against a real IMAP server (Dovecot on loopback, over TLS): the
unseen bounces are read and flagged seen, or moved with --move-to; a second run reads
nothing; the password comes from the environment and never shows. SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from bounce_mail import exim, gmail
from conftest import Cli, sql, write_project
from imap_server import PASSWORD, dovecot
from test_bounces import BOUNCES, envelope_of, receivers, send


@pytest.fixture
def imap(tmp_path):
    yield from dovecot(tmp_path / "imap")


@pytest.fixture
def icli(home, smtp, imap, monkeypatch):
    monkeypatch.setenv("DEVMSG_IMAP_PASSWORD", PASSWORD)
    extra = BOUNCES + f'imap_ca_file = "{imap.ca_file}"\n'
    return Cli(write_project(home, smtp.port, extra=extra))


def flags(client, folder: str = "INBOX") -> list[bytes]:
    client.select(folder)
    _, data = client.uid("FETCH", "1:*", "(FLAGS)")
    return [part for part in data if part]


def test_unseen_bounces_are_read_and_flagged_seen(icli, smtp, imap):
    send(icli, "dead@example.com", "gone@example.com", "alive@example.com")
    rows = receivers()
    client = imap.client()
    for address, build in (("dead@example.com", gmail), ("gone@example.com", exim)):
        raw = build(envelope_of(smtp, address), address, rows[address][2])
        client.append("INBOX", None, None, raw)
    client.append("INBOX", None, None, b"Subject: hello\r\n\r\nnot a bounce\r\n")

    result = icli("bounces", "ingest", "--imap", imap.url(), "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["read"], report["bounced"], report["rejected"]) == (3, 2, 1)
    assert [m["source"] for m in report["messages"]] == ["INBOX uid 1", "INBOX uid 2",
                                                          "INBOX uid 3"]  # fmt: skip
    statuses = {address: row[1] for address, row in receivers().items()}
    assert statuses == {"dead@example.com": "bounced", "gone@example.com": "bounced",
                        "alive@example.com": "sent"}  # fmt: skip
    assert all(b"\\Seen" in line for line in flags(client))
    assert PASSWORD not in result.output

    again = icli("bounces", "ingest", "--imap", imap.url())
    assert again.stdout.startswith("bounces: read 0:")
    client.logout()


def test_move_to_moves_them_out_of_the_folder(icli, smtp, imap):
    send(icli, "dead@example.com")
    (rid, _, msgid) = receivers()["dead@example.com"]
    client = imap.client()
    client.create("Processed")
    client.append("INBOX", None, None, gmail(envelope_of(smtp, "dead@example.com"),
                                             "dead@example.com", msgid))  # fmt: skip

    result = icli("bounces", "ingest", "--imap", imap.url(), "--move-to", "Processed")

    assert result.exit_code == 0, result.output
    assert receivers()["dead@example.com"][1] == "bounced"
    assert flags(client, "INBOX") == []
    assert len(flags(client, "Processed")) == 1
    client.logout()


def test_a_wrong_password_or_certificate_is_one_line(icli, imap, home, smtp, monkeypatch):
    monkeypatch.setenv("DEVMSG_IMAP_PASSWORD", "wrong")
    result = icli("bounces", "ingest", "--imap", imap.url())
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {imap.url()}: login refused for bounces\n",
    )
    monkeypatch.setenv("DEVMSG_IMAP_PASSWORD", PASSWORD)
    untrusting = Cli(write_project(home, smtp.port, extra=BOUNCES))  # no imap_ca_file
    result = untrusting("bounces", "ingest", "--imap", imap.url())
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {imap.url()}: cannot connect: ")
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr
    assert result.stderr.count("\n") == 1
    assert sql("select count(*) from bounce") == [(0,)]
