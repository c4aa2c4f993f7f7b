"""`devmsg purge`: old receivers, their failures, and messages left without receivers."""

from __future__ import annotations

import datetime as dt
import json

from conftest import sql

SEND = ("send", "--subject", "s", "--text", "t", "--type", "t")


def age(cli, receiver_ids, days):
    for rid in receiver_ids:
        [(created,)] = sql("select created_at from receiver where id = ?", (rid,))
        if isinstance(created, str):  # SQLite keeps text
            created = dt.datetime.fromisoformat(created)
        sql("update receiver set created_at = ? where id = ?",
            (created - dt.timedelta(days=days), rid))  # fmt: skip


def counts(cli):
    return tuple(
        sql(f"select count(*) from {table}")[0][0] for table in ("message", "receiver", "failure")
    )


def test_purge_older_than_deletes_receivers_failures_and_emptied_messages(cli, smtp):
    smtp.refuse("old@example.com", "451 4.3.0 try later")
    cli(*SEND, "--to", "old@example.com", "--to", "old2@example.com")  # message 1: all old
    cli(*SEND, "--to", "old3@example.com", "--to", "new@example.com")  # message 2: half old
    cli(*SEND, "--to", "new2@example.com")  # message 3: new
    age(cli, [1, 2, 3], days=100)
    assert counts(cli) == (3, 5, 1)

    result = cli("purge", "--older-than", "90d", "--dry-run", "--json")
    assert json.loads(result.stdout) == {"receivers_deleted": 3, "messages_deleted": 1}
    assert counts(cli) == (3, 5, 1)

    result = cli("purge", "--older-than", "90d")
    assert result.exit_code == 0
    assert result.stdout == "purge: deleted 3 receivers and 1 message\n"
    assert counts(cli) == (2, 2, 0)
    remaining = [r["to"] for r in json.loads(cli("list", "--json").stdout)]
    assert remaining == ["new2@example.com", "new@example.com"]


def test_purge_units_and_plain_days(cli, smtp):
    cli(*SEND, "--to", "a@example.com")
    age(cli, [1], days=1)  # 24 hours old
    assert json.loads(cli("purge", "--older-than", "2", "--json").stdout)["receivers_deleted"] == 0
    assert (
        json.loads(cli("purge", "--older-than", "25h", "--json").stdout)["receivers_deleted"] == 0
    )
    assert (
        json.loads(cli("purge", "--older-than", "23h", "--json").stdout)["receivers_deleted"] == 1
    )


def test_purge_orphans_only(cli, smtp):
    cli(*SEND, "--to", "a@example.com")
    cli(*SEND, "--to", "b@example.com")
    sql("delete from receiver where id = 1")
    result = cli("purge", "--orphans", "--dry-run")
    assert result.stdout == "purge: would delete 0 receivers and 1 message\n"
    result = cli("purge", "--orphans", "--json")
    assert json.loads(result.stdout) == {"receivers_deleted": 0, "messages_deleted": 1}
    assert counts(cli) == (1, 1, 0)


def test_purge_bad_input(cli):
    """Nothing chosen, or two choices, is a usage error (2); a wrong age is 1."""
    for args, code, message in [
        ([], 2, "Error: give --older-than AGE or --orphans\n"),
        (["--older-than", "soon"], 1,
         "Error: --older-than: not an age: 'soon' (use e.g. 90d, 12h, 30m or a number of days)\n"),
        (["--older-than", "-3d"], 1,
         "Error: --older-than: not an age: '-3d' (use e.g. 90d, 12h, 30m or a number of days)\n"),
        (["--older-than", "1d", "--orphans"], 2,
         "Error: give --older-than AGE or --orphans, not both\n"),
    ]:  # fmt: skip
        result = cli("purge", *args)
        assert (result.exit_code, result.stderr) == (code, message)
