"""`devmsg-sendmail`, the installed command, as programs that call sendmail use it: the
message on stdin, queued, delivered by resend-failed; sysexits' exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Cli, sql, write_project
from test_send import count_rows

from devmsg.sendmail import Options, parse


def sendmail(*args, input: bytes, config: Path | None, env=None) -> subprocess.CompletedProcess:
    command = Path(sys.executable).with_name("devmsg-sendmail")
    assert command.exists(), "the devmsg-sendmail command is not installed: pip install -e ."
    environ = {**os.environ, **(env or {})}
    if config is not None:
        environ["DEVMSG_CONFIG"] = str(config)
    return subprocess.run([str(command), *args], input=input, capture_output=True, env=environ,
                          cwd=config.parent if config else None, timeout=60)  # fmt: skip


@pytest.fixture
def config(home, smtp):
    return write_project(home, smtp.port, extra="allow_local_domains = true\n")


def test_t_reads_the_receivers_from_the_message_and_resend_failed_delivers(config, smtp):
    result = sendmail("-t", input=b"To: a@x\nSubject: s\n\nbody", config=config)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert sql("select address, subject, status from receiver") == [("a@x", "s", "not_sent")]
    assert sql("select type from message") == [("sendmail",)]
    assert smtp.messages == []  # queued: the worker or cron delivers
    assert Cli(config)("resend-failed").exit_code == 0
    [received] = smtp.messages
    assert received.rcpt_tos == ["a@x"]
    assert received.mail_from == "noreply@devilry.example"
    assert received.content == Cli(config)("show", "1", "--eml").stdout_bytes
    assert received.content.startswith(b"To: a@x\r\nSubject: s\r\nFrom: Devilry")


def test_arguments_are_the_envelope_and_i_keeps_a_lone_dot(config, smtp):
    message = b"To: list@devilry.example\nSubject: git\n\nline\n.\nafter the dot\n"
    result = sendmail("-oi", "ola@example.no,kari@example.no", "per@example.no", input=message,
                      config=config)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sql("select address from receiver order by id") == [
        ("ola@example.no",), ("kari@example.no",), ("per@example.no",),
    ]  # fmt: skip
    assert Cli(config)("resend-failed").exit_code == 0
    assert all(m.content.endswith(b"line\r\n.\r\nafter the dot\r\n") for m in smtp.messages)
    # Without -i a lone dot ends the message, as sendmail reads it.
    assert sendmail("ola@example.no", input=message, config=config).returncode == 0
    assert Cli(config)("show", "4", "--eml").stdout_bytes.endswith(b"\r\n\r\nline\r\n")


def test_f_sets_the_envelope_sender_only_when_allowed_and_F_the_name(home, smtp, config):
    message = b"To: ola@example.no\nSubject: cron\n\nDisk 91% full\n"
    result = sendmail("-f", "cron@devilry.example", "-FCron Daemon", "-t", input=message,
                      config=config)  # fmt: skip
    assert result.returncode == 0
    assert result.stderr.decode().strip() == (
        "devmsg-sendmail: -f cron@devilry.example ignored: the config does not set "
        "allow_envelope_from; the mail goes from the config's sender"
    )
    allowed = write_project(home, smtp.port, extra="allow_envelope_from = true\n")
    assert sendmail("-fcron@devilry.example", "-t", input=message, config=allowed).returncode == 0
    assert Cli(allowed)("resend-failed").exit_code == 0
    froms = sorted(m.mail_from for m in smtp.messages)
    assert froms == ["cron@devilry.example", "noreply@devilry.example"]
    first = next(m for m in smtp.messages if m.mail_from == "noreply@devilry.example")
    assert first.content.startswith(b"From: Cron Daemon <noreply@devilry.example>\r\n")


@pytest.mark.parametrize(
    ("args", "message", "code", "said"),
    [
        ([], b"To: a@x\n\nb", 64, "no receivers: give their addresses, or -t"),
        (["-t", "-x"], b"To: a@x\n\nb", 64, "unknown option -x"),
        (["-bs"], b"", 64, "-bs: only -bm"),
        (["-t"], b"Subject: s\n\nnobody", 65, "the message has no receivers"),
        (["-t"], b"To: a@x\nnot a header\n\nb", 65, "header line 2 is not a header"),
        (["not an address"], b"Subject: s\n\nb", 65, "invalid address 'not an address'"),
    ],
)
def test_exit_codes_are_sysexits_and_nothing_is_stored(config, args, message, code, said):
    result = sendmail(*args, input=message, config=config)
    assert result.returncode == code
    [line] = result.stderr.decode().splitlines()
    assert line.startswith("devmsg-sendmail: ") and said in line
    assert count_rows(config, "message") == 0


@pytest.mark.sqlite_only
def test_a_store_that_cannot_be_opened_is_75_for_the_caller_to_retry(home, smtp):
    (home / "store").mkdir()
    (home / "store" / "devmsg.sqlite3").mkdir()  # a folder where the file should be
    config = write_project(home, smtp.port)
    result = sendmail("a@example.com", input=b"Subject: s\n\nb", config=config)
    assert result.returncode == 75, result.stderr
    [line] = result.stderr.decode().splitlines()
    assert line.startswith("devmsg-sendmail: ")


def test_a_missing_config_is_78(home):
    result = sendmail("a@example.com", input=b"Subject: s\n\nb", config=None,
                      env={"DEVMSG_CONFIG": str(home / "nope.toml")})  # fmt: skip
    assert result.returncode == 78
    assert result.stderr.decode() == (
        f"devmsg-sendmail: {home / 'nope.toml'}: config file not found (from $DEVMSG_CONFIG)\n"
    )


def test_options_parse_as_sendmail_s_getopt():
    assert parse(["-ti", "-oem", "-odi", "-B8BITMIME", "-fme@x.example", "--", "-a@x"]) == Options(
        headers=True, dots=False, envelope_from="me@x.example", addresses=["-a@x"]
    )
    assert parse(["-F", "Full Name", "-C", "/etc/x.toml", "-oi", "u@x"]) == Options(
        dots=False, full_name="Full Name", config="/etc/x.toml", addresses=["u@x"]
    )
