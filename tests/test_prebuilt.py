"""Prebuilt messages (`send --eml`, `Outbox.send_email`): stored and sent as given, but for
the Bcc removed and the headers devmsg adds when missing; refused whole, with one line and
nothing stored, when they cannot be sent as given."""

from __future__ import annotations

import email
import email.message
import email.policy
import json
import re

import pytest
from conftest import Cli, sql, write_project
from test_send import count_rows

from devmsg.outbox import Outbox

MESSAGE = (
    b"From: Shop <shop@example.com>\n"
    b"To: Ola Nordmann <ola@example.no>, kari@example.no\n"
    b"Cc: Per <per@example.no>\n"
    b"Bcc: audit@example.com\n"
    b"Subject: =?utf-8?q?Kvittering_for_ordre_12_=E2=80=93_takk!?=\n"
    b"X-Order: 12\n"
    b"\n"
    b"Takk for ordren.\n"
    b"..a line that starts with a dot\n"
)


def stored_email(cli, receiver_id: int) -> bytes:
    result = cli("show", str(receiver_id), "--eml")
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def test_send_eml_records_each_mailbox_and_delivers_the_stored_bytes(cli, smtp, home):
    (home / "order.eml").write_bytes(MESSAGE)
    result = cli("send", "--eml", "order.eml", "--type", "receipt", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["receivers"], report["sent"]) == ([1, 2, 3, 4], 4)
    rows = sql("select id, address, name, subject, status from receiver order by id")
    assert rows == [
        (1, "ola@example.no", "Ola Nordmann", "Kvittering for ordre 12 – takk!", "sent"),
        (2, "kari@example.no", "", "Kvittering for ordre 12 – takk!", "sent"),
        (3, "per@example.no", "Per", "Kvittering for ordre 12 – takk!", "sent"),
        (4, "audit@example.com", "", "Kvittering for ordre 12 – takk!", "sent"),
    ]
    stored = stored_email(cli, 1)
    # As given, with only these changes: no Bcc; Date, Message-ID, MIME-Version added; CRLF.
    head, body = stored.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[:5] == [
        b"From: Shop <shop@example.com>",
        b"To: Ola Nordmann <ola@example.no>, kari@example.no",
        b"Cc: Per <per@example.no>",
        b"Subject: =?utf-8?q?Kvittering_for_ordre_12_=E2=80=93_takk!?=",
        b"X-Order: 12",
    ]
    assert [line.split(b":")[0] for line in lines[5:]] == [b"Date", b"Message-ID", b"MIME-Version"]
    assert body == b"Takk for ordren.\r\n..a line that starts with a dot\r\n"
    assert b"\n" not in stored.replace(b"\r\n", b"")
    # Every receiver got exactly the stored bytes, the Bcc one too, and none a Bcc header.
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == [
        "audit@example.com", "kari@example.no", "ola@example.no", "per@example.no",
    ]  # fmt: skip
    for received in smtp.messages:
        rid = {"ola@example.no": 1, "kari@example.no": 2, "per@example.no": 3,
               "audit@example.com": 4}[received.rcpt_tos[0]]  # fmt: skip
        assert stored_email(cli, rid) == stored
        assert received.content == stored
        assert b"Bcc" not in received.content and b"audit@" not in received.content
    shown = json.loads(cli("show", "4", "--json").stdout)
    assert shown["message_id_header"] == re.search(rb"Message-ID: (\S+)", stored)[1].decode()
    assert shown["body_text"] == "Takk for ordren.\n..a line that starts with a dot\n"
    assert ["X-Order", "12"] in shown["headers"] and shown["attachments"] == []
    assert shown["type"] == "receipt"


def test_send_eml_from_stdin_to_other_receivers_keeps_the_message_whole(cli, smtp):
    given = MESSAGE.replace(b"\n", b"\r\n")  # CRLF given: kept as it is
    result = cli("send", "--eml", "-", "--type", "receipt", "--to", "Other <other@example.org>",
                 input=given)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sql("select address, name from receiver") == [("other@example.org", "Other")]
    [received] = smtp.messages
    assert received.rcpt_tos == ["other@example.org"]
    assert received.content.startswith(b"From: Shop <shop@example.com>\r\nTo: Ola Nordmann")
    assert b"\r\nBcc:" not in received.content


def test_missing_from_is_the_config_sender_and_an_existing_message_id_is_kept(home, smtp, backend):
    config = write_project(home, smtp.port)
    message = email.message.EmailMessage()
    message["To"] = "ola@example.no"
    message["Subject"] = "Årsrapport"
    message["Message-ID"] = "<report-2026@app.example>"
    message.set_content("Vedlagt.\n")
    message.add_attachment(b"%PDF-1.7 data", maintype="application", subtype="pdf",
                           filename="årsrapport.pdf")  # fmt: skip
    with Outbox.open(config) as outbox:
        report = outbox.send_email(message, type="report", metadata={"year": 2026})
        assert report.queued and report.attempted == 0
        shown = outbox.show(report.receiver_ids[0])
        assert outbox.email(report.receiver_ids[0]) == smtp_content_after_resend(outbox, smtp)
    assert shown["status"] == "not_sent" and shown["metadata"] == {"year": 2026}
    assert shown["subject"] == "Årsrapport"
    assert shown["message_id_header"] == "<report-2026@app.example>"
    assert shown["attachments"] == [
        {"filename": "årsrapport.pdf", "content_type": "application/pdf", "size": 13}
    ]
    assert ["From", "Devilry <noreply@devilry.example>"] in shown["headers"]
    assert shown["body_text"] == "Vedlagt.\n"


def smtp_content_after_resend(outbox, smtp) -> bytes:
    [rid] = [r["id"] for r in outbox.list()]
    assert outbox.resend([rid]).sent == 1
    return smtp.messages[-1].content


REFUSED = {
    "unparsable": (b"To: a@example.com\nthis is not a header\n\nbody\n", "header line 2 is not a header"),
    "bare CR": (b"To: a@example.com\nSubject: a\rBcc: evil@example.com\n\nbody\n", "header line 2: a bare CR or LF"),
    "bare LF": (b"To: a@example.com\r\nSubject: a\nBcc: evil@example.com\r\n\r\nbody\r\n", "header line 2: a bare CR or LF"),
    "no receivers": (b"From: a@example.com\nSubject: s\n\nbody\n", "the message has no receivers"),
    "too big": (b"To: a@example.com\nSubject: s\n\n" + b"x" * 3000 + b"\n", "more than max_message_size (2,048 bytes)"),
    "no headers": (b"\nbody only\n", "the message has no headers"),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED)
def test_a_message_that_cannot_be_sent_as_given_is_refused_with_one_line(home, smtp, case):
    config = write_project(home, smtp.port, extra='max_message_size = "2KB"\n')
    cli = Cli(config)
    data, said = REFUSED[case]
    (home / "m.eml").write_bytes(data)
    result = cli("send", "--eml", "m.eml", "--type", "t")
    assert result.exit_code != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert said in result.stderr
    for table in ("message", "receiver", "content", "blob"):
        assert count_rows(config, table) == 0
    assert smtp.messages == []


def test_a_header_value_with_a_line_break_is_refused_from_the_api(home, smtp):
    config = write_project(home, smtp.port)
    from email.message import Message

    from devmsg.errors import InputError

    message = Message()  # compat32: takes the line break, where EmailMessage would not
    message["To"] = "a@example.com"
    message["Subject"] = "Hi\nBcc: evil@example.com"
    message.set_payload("body")
    with Outbox.open(config) as outbox:
        with pytest.raises(InputError, match="Subject: a CR or LF in a header value"):
            outbox.send_email(message, type="t")
        with pytest.raises(InputError, match="expected an email.message.Message or bytes"):
            outbox.send_email("To: a@example.com\n\nbody", type="t")
    assert count_rows(config, "message") == 0


def test_send_eml_refuses_options_that_render(cli, home):
    (home / "m.eml").write_bytes(MESSAGE)
    result = cli("send", "--eml", "m.eml", "--type", "t", "--subject", "s", "--attach", "m.eml")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "Error: --eml sends the message as given: --subject, --attach cannot go with it"
    )


def test_a_bounce_of_a_message_to_many_marks_only_the_receiver_it_names(cli, smtp, home):
    from bounce_mail import postfix

    (home / "order.eml").write_bytes(MESSAGE)
    assert cli("send", "--eml", "order.eml", "--type", "receipt").exit_code == 0
    [(message_id,)] = sql("select distinct message_id_header from receiver")
    bounce = postfix("noreply@devilry.example", "kari@example.no", message_id)
    result = cli("bounces", "ingest", "--json", input=bounce.decode())
    assert result.exit_code == 0, result.output
    assert sql("select address, status from receiver order by id") == [
        ("ola@example.no", "sent"), ("kari@example.no", "bounced"),
        ("per@example.no", "sent"), ("audit@example.com", "sent"),
    ]  # fmt: skip
    # A report that names none of them matches none.
    stray = postfix("noreply@devilry.example", "someone@example.no", message_id)
    report = json.loads(cli("bounces", "ingest", "--json", input=stray.decode()).stdout)
    assert report["messages"][0]["outcome"] == "unmatched"
    assert "shared by several receivers" in report["messages"][0]["why"]


def test_a_queued_prebuilt_message_says_when_sending_is_paused(home, smtp):
    config = write_project(home, smtp.port)
    with Outbox.open(config) as outbox:
        outbox.pause(reason="relay maintenance")
        report = outbox.send_email(MESSAGE, type="receipt")  # queued, as the API's default
        assert report.as_dict()["paused"] is True and report.queued
        outbox.resume()
        assert outbox.send_email(MESSAGE, type="receipt").as_dict()["paused"] is False
