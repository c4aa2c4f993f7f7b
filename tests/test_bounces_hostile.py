"""Bounce mail comes from anyone: arbitrary MIME (reports with any fields, nesting, broken
boundaries, any bytes) never crashes `ingest` and never changes a receiver it does not
match. A hypothesis test, on SQLite and PostgreSQL, through the Python API."""

from __future__ import annotations

import pytest
from bounce_mail import postfix
from conftest import sql, write_project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bounces import BOUNCES, envelope_of, send

from devmsg import Outbox
from devmsg.mailboxes import Letter

FIELDS = ["Action", "Status", "Final-Recipient", "Original-Recipient", "Diagnostic-Code",
          "Reporting-MTA", "Arrival-Date", "Last-Attempt-Date", "Feedback-Type",
          "Original-Rcpt-To", "Original-Mail-From", "Message-ID", "Return-Path", "To",
          "Delivered-To", "Date", "From", "X-Failed-Recipients", "Content-Type",
          "Content-Transfer-Encoding"]  # fmt: skip
TYPES = ["multipart/report; report-type=delivery-status", "multipart/report; "
         "report-type=feedback-report", "message/delivery-status", "message/feedback-report",
         "message/rfc822", "text/rfc822-headers", "text/plain", "text/html", "multipart/mixed",
         "application/octet-stream"]  # fmt: skip
VALUES = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["failed", "delayed", "5.1.1", "4.4.1", "9.99.999", "rfc822; x@example.com",
                     "smtp; 550 5.1.1 gone", "abuse", "<bounces+1-aaaaaaaaaaaaa@devilry.example>",
                     "bounces+1-zzzzzzzzzzzzz@devilry.example", "Thu, 31 Feb 99999 99:99 +9999",
                     "=?utf-8?b?AAAA?=", "\x1b[31m red"]),
)  # fmt: skip


@st.composite
def parts(draw, depth: int = 0) -> str:
    kind = draw(st.sampled_from(TYPES))
    headers = [f"{name}: {draw(VALUES)}" for name in draw(st.lists(st.sampled_from(FIELDS),
                                                                    max_size=6))]  # fmt: skip
    boundary = draw(st.sampled_from(["b1", "b2", "", "--", "b1 b2"]))
    head = "\n".join([f'Content-Type: {kind}; boundary="{boundary}"', *headers])
    if kind.startswith("multipart") and depth < 3:
        children = draw(st.lists(parts(depth + 1), max_size=3))
        body = "".join(f"--{boundary}\n{child}\n" for child in children)
        body += draw(st.sampled_from([f"--{boundary}--\n", "", f"--{boundary}"]))
    elif kind in ("message/delivery-status", "message/feedback-report"):
        blocks = draw(st.lists(st.lists(st.tuples(st.sampled_from(FIELDS), VALUES), max_size=6),
                               max_size=3))  # fmt: skip
        body = "\n\n".join("\n".join(f"{k}: {v}" for k, v in block) for block in blocks)
    elif kind == "message/rfc822" and depth < 3:
        body = draw(parts(depth + 1))
    else:
        body = draw(st.text(max_size=200))
    return f"{head}\n\n{body}"


MESSAGES = st.one_of(
    parts().map(lambda text: text.replace("\n", "\r\n").encode("utf-8", "surrogatepass")),
    st.binary(max_size=2000),
)


@pytest.fixture
def project(home, smtp):
    config = write_project(home, smtp.port, extra=BOUNCES)
    from conftest import Cli

    send(Cli(config), "a@example.com", "b@example.com")
    envelope = envelope_of(smtp, "a@example.com")
    with Outbox.open(config) as outbox:
        yield outbox, envelope


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(raw=MESSAGES)
def test_arbitrary_mime_never_crashes_ingest_nor_changes_an_unmatched_receiver(project, raw):
    outbox, _ = project
    before = sql("select id, status, status_reason, failed_count from receiver order by id")

    report = outbox.ingest_bounces([Letter("fuzz", raw, len(raw))])

    assert report.counts["read"] == 1
    assert report.counts["matched"] == 0
    assert sql("select id, status, status_reason, failed_count from receiver order by id") == before
    assert sql("select count(*) from bounce") == [(0,)]


def test_hostile_fields_in_a_matching_bounce_reach_no_terminal_raw(project, home):
    """A matching bounce whose diagnostic holds escape codes and line breaks: the record
    keeps the words, on one line, without the control characters."""
    outbox, envelope = project
    (rid, msgid) = sql("select id, message_id_header from receiver where address = ?",
                       ("a@example.com",))[0]  # fmt: skip
    raw = postfix(envelope, "a@example.com", msgid,
                  diagnostic="smtp; 550 5.1.1 \x1b[2J\x1b[31mgone\x07\t forever")  # fmt: skip

    report = outbox.ingest_bounces([Letter("stdin", raw, len(raw))])

    assert report.counts["bounced"] == 1
    (reason,) = sql("select status_reason from receiver where id = ?", (rid,))[0]
    assert "\x1b" not in reason and "\x07" not in reason and "\n" not in reason
    assert reason.startswith("bounced: 5.1.1 550 5.1.1 [2J [31mgone forever (reported by")
