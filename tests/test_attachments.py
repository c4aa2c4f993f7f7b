"""Attachments and headers on rendered messages (--attach, --reply-to, --header, a
template's headers.txt), and what receivers share stored once."""

from __future__ import annotations

import json
import os

import pytest
from conftest import Cli, sql, write_project
from test_send import CONTEXT, count_rows, received

from devmsg.outbox import Outbox

NEWS = json.dumps({
    "course": "INF1000", "news": "Room 2.", "url": "https://devilry.example/n/1",
    "unsubscribe_url": "https://devilry.example/unsubscribe/inf1000",
})  # fmt: skip


def test_attach_keeps_a_non_ascii_file_name_and_the_exact_bytes(cli, smtp, home):
    pdf = b"%PDF-1.7\n" + os.urandom(5000)
    (home / "Karakterutskrift for Åse Ødegård.pdf").write_bytes(pdf)
    (home / "invite.ics").write_text("BEGIN:VCALENDAR\nEND:VCALENDAR\n")
    result = cli(
        "send", "--template", "deadline_moved", "--type", "deadline", "--context", CONTEXT,
        "--to", "ola@example.no", "--attach", "Karakterutskrift for Åse Ødegård.pdf",
        "--attach", "invite.ics", "--reply-to", "Studieadministrasjonen <studie@example.no>",
        "--header", "X-Course: INF1000",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    msg = received(smtp)
    files = [
        (p.get_filename(), p.get_content_type(), p.get_content()) for p in msg.iter_attachments()
    ]
    assert files == [
        ("Karakterutskrift for Åse Ødegård.pdf", "application/pdf", pdf),
        ("invite.ics", "text/calendar", "BEGIN:VCALENDAR\nEND:VCALENDAR\n"),
    ]
    raw = smtp.messages[0].content
    assert b"filename*=utf-8''Karakterutskrift%20for%20%C3%85se%20%C3%98deg%C3%A5rd.pdf" in raw
    assert msg["Reply-To"] == "Studieadministrasjonen <studie@example.no>"
    assert msg["X-Course"] == "INF1000"
    assert msg.get_body(("plain",)).get_content().startswith("Hi ola@example.no,")
    # What was sent is what is stored, and show reads it back.
    assert cli("show", "1", "--eml").stdout_bytes == raw
    shown = json.loads(cli("show", "1", "--json").stdout)
    assert shown["attachments"] == [
        {
            "filename": "Karakterutskrift for Åse Ødegård.pdf",
            "content_type": "application/pdf",
            "size": len(pdf),
        },
        {"filename": "invite.ics", "content_type": "text/calendar", "size": 30},
    ]
    assert shown["body_text"] == msg.get_body(("plain",)).get_content()
    assert shown["body_html"] == msg.get_body(("html",)).get_content()
    table = cli("show", "1").stdout
    assert "Karakterutskrift for Åse Ødegård.pdf" in table and "application/pdf" in table
    assert "X-Course" in table and "Reply-To" in table


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("X-Tag: a\r\nBcc: evil@example.com", "a line break in the X-Tag header's value (header injection)"),
        ("X-Tag: a\nBcc: evil@example.com", "a line break in the X-Tag header's value (header injection)"),
        ("Bcc: evil@example.com", "devmsg writes the Bcc header itself"),
        ("Content-Type: text/evil", "devmsg writes the Content-Type header itself"),
        ("Subject: other", "devmsg writes the Subject header itself"),
        ("no colon here", "give a header as 'Name: value'"),
    ],
)  # fmt: skip
def test_header_injection_and_owned_headers_are_refused_with_one_line(cli, smtp, given, said):
    result = cli("send", "--type", "t", "--subject", "s", "--text", "b", "--to", "a@example.com",
                 "--header", given)  # fmt: skip
    assert result.exit_code != 0
    [line] = result.stderr.strip().splitlines()
    assert said in line
    assert count_rows(cli.config, "message") == 0 and smtp.messages == []


def test_api_headers_and_reply_to_are_checked_too(home, smtp):
    from devmsg.errors import InputError

    config = write_project(home, smtp.port)
    with Outbox.open(config) as outbox:
        kwargs = {"type": "t", "recipients": ["a@example.com"], "subject": "s", "text": "b"}
        with pytest.raises(InputError, match="line break in the X-A header"):
            outbox.send(**kwargs, headers={"X-A": "1\r\nBcc: evil@example.com"})
        with pytest.raises(InputError, match="reply_to: not an email address"):
            outbox.send(**kwargs, reply_to="a@example.com\nBcc: evil@example.com")
        with pytest.raises(InputError, match="give Reply-To once"):
            outbox.send(**kwargs, reply_to="r@example.com", headers={"reply-to": "x@example.com"})
        with pytest.raises(InputError, match="attachments\\[0\\]: .*missing.pdf: cannot read"):
            outbox.send(**kwargs, attachments=[home / "missing.pdf"])
        report = outbox.send(**kwargs, attachments=[("r.txt", b"hello", None)],
                             headers={"X-Request": "42"})  # fmt: skip
        assert report.sent == 1
    msg = received(smtp)
    assert msg["X-Request"] == "42"
    [part] = msg.iter_attachments()
    assert (part.get_filename(), part.get_content_type(), part.get_content()) == (
        "r.txt", "text/plain", "hello",
    )  # fmt: skip
    assert count_rows(config, "message") == 1


def test_template_headers_are_rendered_per_receiver(cli, smtp):
    result = cli("send", "--template", "course_news", "--type", "news", "--context", NEWS,
                 "--to", "ola@example.no", "--to", "kari@example.no", "--language", "nb")  # fmt: skip
    assert result.exit_code == 0, result.output
    for address in ("ola@example.no", "kari@example.no"):
        msg = received(smtp, to=address)
        quoted = address.replace("@", "%40")
        assert msg["List-Unsubscribe"] == (
            f"<https://devilry.example/unsubscribe/inf1000?to={quoted}>"
        )
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["Subject"] == "Nytt fra INF1000"
    shown = json.loads(cli("show", "2", "--json").stdout)
    assert ["List-Unsubscribe-Post", "List-Unsubscribe=One-Click"] in shown["headers"]
    # --header replaces the template's header of the same name.
    cli("send", "--template", "course_news", "--type", "news", "--context", NEWS,
        "--to", "per@example.no", "--header", "List-Unsubscribe: <mailto:u@devilry.example>")  # fmt: skip
    assert received(smtp, to="per@example.no")["List-Unsubscribe"] == "<mailto:u@devilry.example>"


def test_a_context_value_with_a_line_break_cannot_inject_a_header(cli, smtp):
    context = json.loads(NEWS)
    context["unsubscribe_url"] = "https://x.example/u>\r\nBcc: evil@example.com\r\nX-A: <x"
    result = cli("send", "--template", "course_news", "--type", "news",
                 "--context", json.dumps(context), "--to", "ola@example.no")  # fmt: skip
    # The body uses the value too, harmlessly; in headers.txt it is refused: nothing stored.
    assert result.exit_code != 0
    [line] = result.stderr.strip().splitlines()
    assert "course_news/headers.txt line 1" in line and "injection" in line
    assert count_rows(cli.config, "message") == 0 and smtp.messages == []


def test_check_and_preview_cover_headers_txt(cli, home):
    (home / "templates/course_news/headers.txt").write_text("List-Unsubscribe: <{{ missing }}>\n")
    result = cli("check")
    assert result.exit_code != 0
    assert result.output.startswith(
        "templates/course_news/headers.txt:1: error: undefined variable: 'missing' is undefined "
        "(language en, nb)\n"
    )
    (home / "templates/course_news/headers.txt").write_text("Bcc: {{ course }}\n")
    result = cli("preview", "course_news")
    assert result.exit_code != 0
    assert "headers.txt line 1: devmsg writes the Bcc header itself" in result.stderr
    (home / "templates/course_news/headers.txt").write_text("X-Course: {{ course }}\n")
    result = cli("preview", "course_news")
    assert result.exit_code == 0, result.output
    assert [line.split() for line in result.stdout.splitlines()[:4]] == [
        ["To", "Ola", "Nordmann", "<ola.nordmann@example.com>"], ["Language", "en"],
        ["Subject", "News", "from", "INF1000"], ["X-Course", "INF1000"],
    ]  # fmt: skip


def store_bytes(config) -> int:
    """The bytes the store holds for content: every receiver's own and the shared blobs."""
    own = sql("select coalesce(sum(length(email)), 0) + coalesce(sum(length(bodies)), 0) "
              "from content", config=config)[0][0]  # fmt: skip
    shared = sql("select coalesce(sum(length(data)), 0) from blob", config=config)[0][0]
    return int(own) + int(shared)


MB = 1024 * 1024


@pytest.mark.parametrize("way", ["prebuilt", "rendered"])
def test_a_2_mb_attachment_to_300_receivers_is_stored_once(home, smtp, way):
    config = write_project(home, smtp.port)
    cli = Cli(config)
    pdf = os.urandom(2 * MB)  # incompressible: the store cannot shrink it away
    (home / "big.pdf").write_bytes(pdf)
    (home / "r.csv").write_text("address\n" + "".join(f"r{i}@example.com\n" for i in range(300)))
    if way == "prebuilt":
        import email.message

        message = email.message.EmailMessage()
        message["Subject"] = "Report"
        message["To"] = "undisclosed-recipients:;"
        message.set_content("See the attachment.\n")
        message.add_attachment(pdf, maintype="application", subtype="pdf", filename="big.pdf")
        with Outbox.open(config) as outbox:
            recipients = [f"r{i}@example.com" for i in range(300)]
            report = outbox.send_email(message, type="report", recipients=recipients)
        assert len(report.receiver_ids) == 300
    else:
        result = cli("send", "--template", "deadline_moved", "--type", "t", "--context", CONTEXT,
                     "--receivers", "r.csv", "--attach", "big.pdf", "--queue")  # fmt: skip
        assert result.exit_code == 0, result.output
    assert count_rows(config) == 300
    held = store_bytes(config)
    assert 2 * MB < held < 3 * MB, held  # about 2 MB (base64, then zlib), not 600
    if STORE_IS_SQLITE(config):
        file = home / "store" / "devmsg.sqlite3"
        sql("pragma wal_checkpoint(truncate)", config=config)
        assert file.stat().st_size < 4 * MB
    # Every resend still gives the exact bytes first stored, and one receiver's own.
    first = cli("show", "1", "--eml").stdout_bytes
    assert cli("resend", "1", "300").exit_code == 0
    one = next(m for m in smtp.messages if m.rcpt_tos == ["r0@example.com"])
    assert one.content == first
    last = next(m for m in smtp.messages if m.rcpt_tos == ["r299@example.com"])
    assert last.content == cli("show", "300", "--eml").stdout_bytes
    [part] = [p for p in received(smtp, to="r299@example.com").iter_attachments()]
    assert part.get_content() == pdf
    # Purge takes the shared bytes with the last message that used them.
    sql("update receiver set created_at = '2000-01-01 00:00:00'", config=config)
    assert cli("purge", "--older-than", "1d").exit_code == 0
    assert sql("select count(*) from blob", config=config)[0][0] == 0


def STORE_IS_SQLITE(config) -> bool:
    return "postgresql://" not in config.read_text()


def test_a_rendered_message_too_big_is_refused_and_nothing_stored(home, smtp):
    config = write_project(home, smtp.port, extra='max_message_size = "64KB"\n')
    (home / "big.bin").write_bytes(os.urandom(60 * 1024))  # 80 KB as base64
    result = Cli(config)("send", "--template", "deadline_moved", "--type", "t", "--context",
                         CONTEXT, "--to", "a@example.com", "--attach", "big.bin")  # fmt: skip
    assert result.exit_code != 0
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: the message is 8") and line.endswith(
        "bytes, more than max_message_size (65,536 bytes); nothing was stored"
    )
    assert count_rows(config, "message") == 0 and smtp.messages == []
