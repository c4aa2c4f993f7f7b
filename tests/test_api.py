"""The Python API an application calls: the same path as the CLI."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import backoff_passes

from devmsg import DevmsgError, Outbox, Recipient


def test_api_send_list_show_resend_purge(config_path, smtp):
    smtp.refuse("b@example.com", "451 4.3.0 later", times=1)
    with Outbox.open(config_path) as outbox:
        report = outbox.send(
            template="deadline_moved",
            type="deadline_moved",
            context={
                "assignment": "A",
                "deadline": dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC),
                "reason": "",
                "url": "https://x.example",
            },  # fmt: skip
            recipients=[Recipient("a@example.com", "A", "nb"), Recipient("b@example.com")],
        )
        assert (report.attempted, report.sent, report.failed, report.error) == (2, 1, 1, 0)
        assert not report.ok
        failed = outbox.list(statuses=["failed"])
        assert [r["to"] for r in failed] == ["b@example.com"]
        assert outbox.resend_failed().attempted == 0  # within its backoff
        backoff_passes()
        assert outbox.resend_failed().sent == 1
        assert outbox.show(report.receiver_ids[0])["subject"] == "Ny frist for A"
        purged = outbox.purge(older_than=dt.timedelta(days=0), dry_run=True)
        assert purged.as_dict() == {"receivers_deleted": 2, "messages_deleted": 1}


def test_api_errors_are_devmsg_errors(config_path):
    with Outbox.open(config_path) as outbox, pytest.raises(DevmsgError, match="invalid address"):
        outbox.send(type="t", subject="s", text="t", recipients=[Recipient("nope")])


CONTEXT = {"assignment": "A", "deadline": "2026-12-01T12:00:00+00:00", "reason": "",
           "url": "https://x.example"}  # fmt: skip


def _touch_later(path):
    """Write happened: move the modification time on, as a later edit would."""
    import os

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**10))


def test_long_lived_outbox_compiles_each_template_once_and_sees_edits(
    config_path, smtp, monkeypatch
):
    import jinja2

    compiled = []
    original = jinja2.Environment._compile

    def counting(self, source, filename):
        compiled.append(filename)
        return original(self, source, filename)

    monkeypatch.setattr(jinja2.Environment, "_compile", counting)

    def subject(outbox, language):
        report = outbox.send(template="deadline_moved", type="t", context=CONTEXT, queue=True,
                             recipients=[Recipient("a@example.com", language=language)])  # fmt: skip
        return outbox.show(report.receiver_ids[0])["subject"]

    home = config_path.parent
    with Outbox.open(config_path) as outbox:
        for _ in range(20):
            assert subject(outbox, "nb") == "Ny frist for A"
        per_language = len(compiled)
        assert per_language == 4  # subject, html, text, and the template joining them
        for _ in range(20):
            assert subject(outbox, "en") == "New deadline for A"
        assert len(compiled) == 2 * per_language

        # An edited template is compiled again, once.
        file = home / "templates" / "deadline_moved" / "subject.txt"
        file.write_text(file.read_text().replace("{{", "Re: {{", 1))
        _touch_later(file)
        assert subject(outbox, "en") == "Re: New deadline for A"
        assert subject(outbox, "en") == "Re: New deadline for A"
        assert len(compiled) == 2 * per_language + 1

        # An edited catalog is read again.
        po = home / "locales" / "nb" / "LC_MESSAGES" / "messages.po"
        po.write_text(
            po.read_text().replace('"Ny frist for %(assignment)s"', '"Frist: %(assignment)s"')
        )
        _touch_later(po)
        assert subject(outbox, "nb") == "Re: Frist: A"
