"""The Python API an application calls: the same path as the CLI."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import backoff_passes

from devmsg import DevmsgError, Outbox, Recipient
from devmsg.errors import InputError


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


def test_api_takes_a_plain_address_string_as_a_recipient(config_path, smtp):
    with Outbox.open(config_path) as outbox:
        report = outbox.send(type="t", subject="s", text="t",
                             recipients=["a@example.com", Recipient("b@example.com", "B")])  # fmt: skip
        assert (report.attempted, report.sent) == (2, 2)
        assert [row["to"] for row in outbox.list()] == ["b@example.com", "a@example.com"]
    assert sorted(smtp.recipients()) == ["a@example.com", "b@example.com"]


SEND = {"type": "t", "subject": "s", "text": "t"}
WRONG = [
    ("send", {**SEND, "recipients": []}, "recipients is empty"),
    ("send", {**SEND, "recipients": "a@example.com"},
     "recipients: expected a list of addresses (str) or Recipient, got str"),
    ("send", {**SEND, "recipients": ["a@example.com", 5]},
     "recipients[1]: expected an address (str) or Recipient, got int"),
    ("send", {**SEND, "recipients": [Recipient(None)]},  # type: ignore[arg-type]
     "recipients[0].address must be text, not NoneType"),
    ("send", {**SEND, "type": " ", "recipients": ["a@example.com"]}, "type must not be empty"),
    ("send", {**SEND, "type": 7, "recipients": ["a@example.com"]}, "type: expected str, got int"),
    ("send", {**SEND, "context": [1], "recipients": ["a@example.com"]},
     "context: expected dict, got list"),
    ("send", {**SEND, "send_at": "tomorrow", "recipients": ["a@example.com"]},
     "send_at: expected datetime, got str"),
    ("send", {**SEND, "send_at": dt.datetime(2030, 1, 1), "recipients": ["a@example.com"]},
     "send_at: give a time with a time zone"),
    ("send", {"type": "t", "recipients": ["a@example.com"]},
     "without a template, give subject and text or html"),
    ("send", {**SEND, "template": "x", "recipients": ["a@example.com"]},
     "give either template or subject/text/html, not both"),
    ("resend", {"ids": []}, "ids is empty"),
    ("resend", {"ids": ["1"]}, "ids[0]: expected int, got str"),
    ("resend", {"ids": 1}, "ids: expected a list of ints, got int"),
    ("list", {"statuses": ["lost"]},
     "statuses: unknown status 'lost' (not_sent, failed, error, sent, held, "
     "cancelled, expired, suppressed, bounced, sending)"),
    ("list", {"limit": -1}, "limit must be 0 (all) or more"),
    ("list", {"limit": "5"}, "limit: expected int, got str"),
    ("list", {"sent_since": "yesterday"}, "sent_since: not an ISO 8601 date or time: 'yesterday'"),
    ("list", {"sent_until": 5}, "sent_until: expected str or datetime or date, got int"),
    ("show", {"receiver_id": "1"}, "receiver_id: expected int, got str"),
    ("stats", {"by": "day"}, "by: can only break down by 'type', not 'day'"),
    ("pause", {"for_": 60}, "for_: expected timedelta, got int"),
    ("suppress", {"addresses": "a@example.com"}, "addresses: expected list, got str"),
    ("suppress", {"addresses": []}, "addresses is empty"),
    ("unsuppress", {"addresses": [5]}, "addresses[0]: expected str, got int"),
    ("copy_to", {"target": None}, "target: expected str, got NoneType"),
    ("purge", {}, "give older_than or orphans=True"),
    ("purge", {"older_than": 90}, "older_than: expected timedelta, got int"),
    ("purge", {"older_than": dt.timedelta(days=1), "orphans": True},
     "give older_than or orphans=True, not both"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "kwargs", "message"), WRONG)
def test_api_a_wrong_argument_is_an_input_error_naming_the_parameter(
    config_path, method, kwargs, message
):
    """Every public method: InputError (never AttributeError or TypeError), in the API's
    words, not the CLI's; nothing stored."""
    with Outbox.open(config_path) as outbox:
        with pytest.raises(InputError) as raised:
            getattr(outbox, method)(**kwargs)
        assert str(raised.value) == message
        assert "--" not in str(raised.value)
        assert outbox.list() == []


def test_api_control_names_its_parameters(config_path):
    from devmsg.store import Selection

    with Outbox.open(config_path) as outbox:
        with pytest.raises(InputError, match=r"^action: unknown action 'keep' \(hold, "):
            outbox.control("keep", Selection(ids=[1]))
        with pytest.raises(InputError, match=r"^selection: expected Selection, got list$"):
            outbox.control("hold", [1])
        with pytest.raises(InputError, match=r"^selection is empty: give ids, message, "):
            outbox.control("hold", Selection())
