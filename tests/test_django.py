"""The Django email backend, with real Django: `django.core.mail` configured in the test,
devmsg's store and a real SMTP server behind it."""

from __future__ import annotations

import email
import email.policy
import json
import threading

import django
import pytest
from conftest import Cli, sql, write_project
from django.conf import settings

if not settings.configured:
    settings.configure(
        EMAIL_BACKEND="devmsg.django.EmailBackend",
        DEFAULT_FROM_EMAIL="Devilry <noreply@devilry.example>",
        ADMINS=[("Ops", "ops@devilry.example")],
        SERVER_EMAIL="server@devilry.example",
        EMAIL_SUBJECT_PREFIX="[devilry] ",
    )
    django.setup()

from django.core import mail  # noqa: E402  # after settings.configure

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def project(home, smtp):
    """A devmsg.toml for the test, named in Django's settings; the backend's Outbox
    closed afterwards."""
    import devmsg.django

    config = write_project(home, smtp.port)
    settings.DEVMSG_CONFIG = str(config)
    settings.DEVMSG_QUEUE = True
    settings.DEVMSG_TYPE = "django"
    yield config
    for box in devmsg.django._outboxes.values():
        box.close()
    devmsg.django._outboxes.clear()


def parsed(content: bytes):
    return email.message_from_bytes(content, policy=email.policy.default)


def test_email_multi_alternatives_arrives_byte_for_byte_as_stored(project, smtp):
    settings.DEVMSG_QUEUE = False  # delivered in the call
    message = mail.EmailMultiAlternatives(
        subject="Kvittering – ordre 12",
        body="Takk for ordren.\n",
        from_email="Butikken <shop@devilry.example>",
        to=["Ola Nordmann <ola@example.no>"],
        cc=["kari@example.no"],
        bcc=["audit@example.com"],
        reply_to=["support@devilry.example"],
        headers={"X-Order": "12", "X-Devmsg-Type": "receipt"},
    )
    message.attach_alternative("<p>Takk for <b>ordren</b>.</p>", "text/html")
    message.attach("kvittering.pdf", PDF, "application/pdf")
    assert message.send() == 1
    rows = sql("select r.id, r.address, r.status, m.type from receiver r "
               "join message m on m.id = r.message_id order by r.id")  # fmt: skip
    assert rows == [
        (1, "ola@example.no", "sent", "receipt"),
        (2, "kari@example.no", "sent", "receipt"),
        (3, "audit@example.com", "sent", "receipt"),
    ]
    cli = Cli(project)
    by_receiver = {m.rcpt_tos[0]: m for m in smtp.messages}
    assert sorted(by_receiver) == ["audit@example.com", "kari@example.no", "ola@example.no"]
    for rid, address, _, _ in rows:
        stored = cli("show", str(rid), "--eml").stdout_bytes
        assert by_receiver[address].content == stored  # byte for byte
        got = parsed(stored)
        assert got["Bcc"] is None and b"audit@" not in stored  # the Bcc receiver's too
        assert got["X-Devmsg-Type"] is None  # it said the type; it is not sent
        assert got["X-Order"] == "12" and got["Reply-To"] == "support@devilry.example"
        assert got["From"] == "Butikken <shop@devilry.example>"
        assert got["Cc"] == "kari@example.no"
        assert got.get_body(("html",)).get_content() == "<p>Takk for <b>ordren</b>.</p>"
        [pdf] = got.iter_attachments()
        assert (pdf.get_filename(), pdf.get_content()) == ("kvittering.pdf", PDF)
    shown = json.loads(cli("show", "3", "--json").stdout)
    assert shown["subject"] == "Kvittering – ordre 12"
    assert shown["body_text"] == "Takk for ordren.\n"
    assert shown["attachments"] == [
        {"filename": "kvittering.pdf", "content_type": "application/pdf", "size": len(PDF)}
    ]


def test_queued_by_default_then_the_worker_or_cron_delivers(project, smtp):
    sent = mail.send_mail("Hei", "Body.\n", None, ["ola@example.no", "kari@example.no"])
    assert sent == 1
    assert sql("select status from receiver") == [("not_sent",), ("not_sent",)]
    assert smtp.messages == []
    result = Cli(project)("resend-failed")
    assert result.exit_code == 0, result.output
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["kari@example.no", "ola@example.no"]
    got = parsed(smtp.messages[0].content)
    assert got["From"] == "Devilry <noreply@devilry.example>"  # DEFAULT_FROM_EMAIL
    assert sql("select type from message") == [("django",)]


def test_send_mass_mail_and_mail_admins(project):
    settings.DEVMSG_TYPE = "app"
    count = mail.send_mass_mail([
        ("One", "1", None, ["a@example.com"]),
        ("Two", "2", None, ["b@example.com", "c@example.com"]),
        ("Nobody", "3", None, []),  # no receivers: not a message, as Django's SMTP backend
    ])  # fmt: skip
    assert count == 2
    mail.mail_admins("Disk full", "on db1")
    rows = sql("select r.address, r.subject, m.type from receiver r "
               "join message m on m.id = r.message_id order by r.id")  # fmt: skip
    assert rows == [
        ("a@example.com", "One", "app"), ("b@example.com", "Two", "app"),
        ("c@example.com", "Two", "app"), ("ops@devilry.example", "[devilry] Disk full", "app"),
    ]  # fmt: skip


def test_fail_silently_and_errors(project):
    from devmsg.errors import InputError

    with pytest.raises(InputError, match="invalid address 'not-an-address'"):
        mail.send_mail("s", "b", None, ["not-an-address"])
    assert mail.send_mail("s", "b", None, ["not-an-address"], fail_silently=True) == 0
    assert sql("select count(*) from message") == [(0,)]
    settings.DEVMSG_CONFIG = str(project.parent / "missing.toml")
    assert mail.send_mail("s", "b", None, ["a@example.com"], fail_silently=True) == 0


def test_one_outbox_shared_by_threads(project):
    import devmsg.django

    errors = []

    def send(n: int) -> None:
        try:
            for i in range(5):
                mail.send_mail(f"m{n}-{i}", "b", None, [f"t{n}@example.com"])
        except Exception as exc:  # noqa: BLE001  # the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sql("select count(*) from receiver") == [(20,)]
    assert len(devmsg.django._outboxes) == 1
