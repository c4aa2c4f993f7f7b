"""The inner ring: the library's objects on their own, no store, no CLI, no process
(`pytest -m unit` runs every test so marked, in seconds)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
from bounce_mail import complaint, delayed, exchange, exim, gmail, postfix, qmail

from devmsg import content, dsn, mime
from devmsg.addresses import mailbox_key
from devmsg.config import SmtpConfig, format_sender, parse_duration, parse_size
from devmsg.delivery import _batch_size
from devmsg.eml import prepare
from devmsg.errors import ConfigError, InputError
from devmsg.headers import extra_header, parse_header_line
from devmsg.pool import ConnectionPool
from devmsg.rates import Limit, parse_limits, parse_rate
from devmsg.verp import Matcher, return_path

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("total", "workers", "largest", "size"),
    [(0, 4, 25, 1), (10, 4, 25, 1), (320, 4, 25, 10), (100_000, 4, 25, 25), (64, 1, 25, 8)],
)
def test_batch_sizing_gives_every_connection_work_and_caps_claims(total, workers, largest, size):
    assert _batch_size(total, workers, largest) == size


def test_rates_parse_and_cover_subdomains():
    assert parse_rate("14/s") == (14, 1.0)
    assert parse_rate("50000/24h") == (50000, 86400.0)
    assert parse_rate("100/m") == (100, 60.0)
    limits = parse_limits({"*": ["14/s"], "Example.NO": "100/m"}, "devmsg.toml")
    assert [(limit.scope, limit.count, limit.window, limit.name) for limit in limits] == [
        ("*", 14, 1.0, "* 1s"), ("example.no", 100, 60.0, "example.no 60s")]  # fmt: skip
    example = next(limit for limit in limits if limit.scope == "example.no")
    assert example.covers("uio.example.no") and example.covers("example.no")
    assert not example.covers("badexample.no")
    assert isinstance(limits[0], Limit) and limits[0].covers("anything.example")
    for bad in ("14", "0/s", "1/x", "-1/s"):
        with pytest.raises(ConfigError):
            parse_limits({"*": bad}, "devmsg.toml")


def test_the_suppression_key_is_the_mailbox():
    assert mailbox_key("Ola.Nordmann@Example.NO") == "Ola.Nordmann@example.no"
    assert mailbox_key("ola@EXAMPLE.no") == mailbox_key("ola@example.no")
    assert mailbox_key("Ola@example.no") != mailbox_key("ola@example.no")  # local parts differ


@pytest.mark.parametrize(
    ("text", "html"),
    [("Hei\n", ""), ("Hei Åse,\n\nlinje  \n", "<p>Hei Åse</p>\n"), ("x" * 2000 + "\n", ""),
     (".\n..\nFrom here\n", "<p>.</p>\n"), ("tab\tend\n", "")],
)  # fmt: skip
def test_mime_round_trips_what_it_built(text, html):
    built = mime.build(sender="Devilry <noreply@devilry.example>", address="ola@example.no",
                       name="Ola", subject="Ny frist – Oblig 2", text=text, html=html,
                       message_id="<1@devilry.example>", date="Fri, 04 Dec 2026 09:30:00 +0000",
                       smtputf8=False, headers=(("X-Course", "INF1000"),))  # fmt: skip
    assert mime.bodies(built) == (text, html)
    parsed = email.message_from_bytes(built, policy=email.policy.default)
    assert parsed["Subject"] == "Ny frist – Oblig 2" and parsed["X-Course"] == "INF1000"
    assert content.read_bodies(built) == (text, html)
    packed, extra = content.pack(text, html, built, verify=True)
    assert extra is None and content.bodies(packed, extra) == (text, html)


def test_shared_pieces_are_cut_out_and_put_back_exactly():
    big = content.Shared.of(b"QUJD" * 10_000)
    small = content.Shared.of(b"tail")
    pieces = [b"head\r\n", big, b"\r\nmiddle\r\n", small, big, b"end\r\n"]
    skeleton, parts, shared = content.cut(pieces)
    assert skeleton == b"head\r\n\r\nmiddle\r\nend\r\n"
    assert sorted(shared) == sorted({big.digest, small.digest})
    whole = content.assemble(skeleton, parts, lambda digest: shared[digest].data)
    assert whole == content.flatten(pieces)
    import zlib

    assert zlib.decompress(big.packed()) == big.data
    assert len(big.packed()) < len(big.data) // 2
    assert content.assemble(b"plain", None, lambda d: b"") == b"plain"


def test_config_values_parse():
    assert parse_duration("90s") == dt.timedelta(seconds=90)
    assert parse_duration("4h") == dt.timedelta(hours=4)
    assert parse_duration("2") == dt.timedelta(seconds=2)
    assert parse_duration("1", default_unit="d") == dt.timedelta(days=1)
    assert parse_size("25MB") == 25 * 1024 * 1024
    assert parse_size("512 kb") == 512 * 1024
    assert parse_size(1000) == 1000
    for bad in ("5 minutes", "-1s", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)
    with pytest.raises(ValueError):
        parse_size("25 MiB please")
    assert format_sender("Devilry, Inc. <noreply@devilry.example>") == (
        '"Devilry, Inc." <noreply@devilry.example>'
    )
    assert format_sender("Åse <a@devilry.example>") == "=?utf-8?q?=C3=85se?= <a@devilry.example>"
    with pytest.raises(ValueError):
        format_sender("a@devilry.example\nBcc: x@example.com")
    assert SmtpConfig().port == 25


@pytest.mark.parametrize("build", [postfix, exim, exchange, gmail, qmail])
def test_dsn_parser_reads_each_mta_s_bounce(build):
    raw = build("bounces+7-abc@devilry.example", "ola@example.no", "<42.ab@devilry.example>")
    parsed = dsn.parse(raw)
    [report] = parsed.reports
    assert report.kind == "failed"
    assert report.recipient.lower().strip("<>") == "ola@example.no"
    assert report.status.startswith("5.")
    assert "bounces+7-abc@devilry.example" in [a.strip("<>") for a in parsed.addressed_to]


def test_dsn_parser_reads_delays_and_complaints_and_refuses_other_mail():
    assert [r.kind for r in dsn.parse(delayed("b@d.example", "o@example.no", "<1@d>")).reports] == [
        "delayed"]  # fmt: skip
    assert [r.kind for r in dsn.parse(complaint("b@d.example", "o@example.no", "<1@d>")).reports] == [
        "complaint"]  # fmt: skip
    parsed = dsn.parse(b"From: a@example.com\nSubject: hello\n\njust mail\n")
    assert parsed.reports == [] and parsed.why


def test_verp_tokens_name_the_receiver_and_cannot_be_forged():
    key = bytes(range(32))
    address = return_path("bounces+{token}@devilry.example", key, 4711)
    assert address.startswith("bounces+4711-") and address == address.lower()
    matcher = Matcher("bounces+{token}@devilry.example", key)
    assert matcher.tokens([address]) == ([4711], 0)
    forged = address.replace("4711-", "4712-")
    assert matcher.tokens([forged]) == ([], 1)


def test_prepare_keeps_the_message_but_for_bcc_and_what_is_missing():
    raw = b"To: a@example.com\nBcc: b@example.com,\n c@example.com\nSubject: =?utf-8?q?=C3=85?=\n\nbody"
    prebuilt = prepare(raw, sender_header="D <d@devilry.example>", message_id="<m@d>",
                       max_size=10_000, now=NOW)  # fmt: skip
    assert prebuilt.data == (
        b"To: a@example.com\r\nSubject: =?utf-8?q?=C3=85?=\r\nFrom: D <d@devilry.example>\r\n"
        b"Date: Fri, 04 Dec 2026 09:30:00 +0000\r\nMessage-ID: <m@d>\r\nMIME-Version: 1.0\r\n"
        b"\r\nbody\r\n"
    )
    assert prebuilt.subject == "Å" and prebuilt.message_id == "<m@d>"
    assert prebuilt.mailboxes == [
        ("", "a@example.com"),
        ("", "b@example.com"),
        ("", "c@example.com"),
    ]


@pytest.mark.parametrize(
    ("raw", "said"),
    [(b"To: a@x.example\r\nSubject: s\nX: y\r\n\r\nb", "header line 2: a bare CR or LF"),
     (b"To: a@x.example\nSubject: s\rX: y\n\nb", "header line 2: a bare CR or LF"),
     (b"To: a@x.example\nnot a header\n\nb", "header line 2 is not a header"),
     (b"\nb", "no headers"), (b"To: a@x.example\n\n" + b"x" * 2000, "more than max_message_size")],
)  # fmt: skip
def test_prepare_refuses_what_cannot_be_sent_as_given(raw, said):
    with pytest.raises(InputError, match=said):
        prepare(raw, sender_header="d@d.example", message_id="<m@d>", max_size=1024, now=NOW)


@pytest.mark.parametrize(
    ("line", "said"),
    [("Bcc: x@example.com", "writes the Bcc header itself"),
     ("content-type: text/html", "writes the content-type header itself"),
     ("X-A: 1\r\nBcc: x@example.com", "line break"), ("X-A: \x1b[2J", "control character"),
     ("Bad Name: x", "not a header name"), ("nothing", "give a header as 'Name: value'")],
)  # fmt: skip
def test_headers_from_outside_are_checked(line, said):
    with pytest.raises(InputError, match=said):
        parse_header_line(line, "--header")
    assert extra_header("List-Unsubscribe", " <https://x.example/u> ", "h") == (
        "List-Unsubscribe", "<https://x.example/u>")  # fmt: skip


def test_the_pool_hands_a_batch_back_only_while_another_connection_works():
    from devmsg.smtpserver import CapturingServer

    with CapturingServer() as server:
        pool = ConnectionPool(SmtpConfig(host="127.0.0.1", port=server.port, timeout=5))
        first, second = pool.take(), pool.take()
        assert pool.connect(first) is None  # connected: live
        assert pool.hand_back(second, [1, 2, 3])  # the first works: the batch goes to it
        assert pool.returned() == [1, 2, 3] and pool.returned() == []
        pool.give_back(first)
        assert not pool.hand_back(second, [4])  # nothing works: the caller fails them
        pool.give_back(second)
        pool.close_all()
