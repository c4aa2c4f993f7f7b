"""The SMTP password comes only from $DEVMSG_SMTP_PASSWORD and shows up nowhere: not in any
output, not in a stored failure, not in the SQLite file; also when the login fails."""

from __future__ import annotations

import json
import stat

from conftest import STORE, Cli, run, sql, write_project

from devmsg.smtpserver import CapturingServer

PASSWORD = "Zq9-hunter2-SECRET-7xw"
SEND = ("send", "--type", "t", "--subject", "s", "--text", "t", "--to", "a@example.com")


def store_bytes(home) -> bytes:
    """Everything the store holds: the SQLite files byte for byte, or every PostgreSQL row."""
    if STORE["url"]:
        rows = [sql(f"select * from {t}") for t in ("message", "receiver", "content", "failure")]
        return repr(rows).encode()
    return b"".join(p.read_bytes() for p in (home / "store").iterdir())


def everything_printed(cli) -> str:
    outputs = []
    for args in (("list",), ("list", "--json"), ("show", "1"), ("show", "1", "--json"),
                 ("resend", "1"), ("resend-failed",)):  # fmt: skip
        result = cli(*args)
        outputs += [result.stdout, result.stderr]
    return "".join(outputs)


def test_login_with_the_password_from_the_environment(home, monkeypatch):
    monkeypatch.setenv("DEVMSG_SMTP_PASSWORD", PASSWORD)
    with CapturingServer(username="mailer", password=PASSWORD) as server:
        cli = Cli(write_project(home, server.port, smtp_extra='username = "mailer"\n'))
        result = cli(*SEND)
        assert result.exit_code == 0, result.output
        assert server.recipients() == ["a@example.com"]
        printed = result.output + everything_printed(cli)
    assert PASSWORD not in printed
    assert PASSWORD.encode() not in store_bytes(home)
    if not STORE["url"]:
        assert stat.S_IMODE((home / "store" / "devmsg.sqlite3").stat().st_mode) == 0o600


def test_failed_login_leaks_nothing(home, monkeypatch):
    monkeypatch.setenv("DEVMSG_SMTP_PASSWORD", PASSWORD)
    with CapturingServer(username="mailer", password="something-else") as server:
        cli = Cli(write_project(home, server.port, smtp_extra='username = "mailer"\n'))
        result = cli(*SEND)
        assert result.exit_code == 3
        shown = json.loads(cli("show", "1", "--json").stdout)
        failure = shown["failures"][0]
        assert failure["error"] == (
            f"127.0.0.1:{server.port}: authentication failed: 535 5.7.8 Authentication credentials invalid"
        )
        assert shown["status"] == "failed"  # a configuration problem: temporary
        printed = result.output + everything_printed(cli)
        proc = run("show", "1", cwd=home, env={"DEVMSG_SMTP_PASSWORD": PASSWORD})
        printed += proc.stdout + proc.stderr
        assert server.messages == []
    assert PASSWORD not in printed
    assert PASSWORD not in failure["traceback"]
    assert PASSWORD.encode() not in store_bytes(home)


def test_password_in_the_config_file_is_refused(home, smtp):
    cli = Cli(write_project(home, smtp.port, smtp_extra=f'password = "{PASSWORD}"\n'))
    result = cli("list")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {cli.config}: unknown key 'smtp.password'")
    assert PASSWORD not in result.output
