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
