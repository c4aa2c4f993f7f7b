"""Receivers a running devmsg holds are never purged, and a running devmsg whose receivers
vanish under it (a hand-made delete) skips them and carries on, without a traceback."""

from __future__ import annotations

from conftest import receivers_file, run, spawn, sql, write_project

SEND = ("send", "--type", "t", "--subject", "s", "--text", "t", "--receivers", "r.csv")


def test_purge_leaves_what_a_running_send_holds(home, smtp):
    write_project(home, smtp.port, smtp_extra="connections = 1\n")
    assert run("send", "--type", "old", "--subject", "s", "--text", "t",
               "--to", "old@example.com", cwd=home).returncode == 0  # fmt: skip
    receivers_file(home, 60, "v")
    smtp.hold_after(11)  # 11 of the running send go, the 12th is held in flight
    proc = spawn(*SEND, cwd=home)
    smtp.wait_until(lambda s: s.waiting == 1)
    purged = run("purge", "--older-than", "0d", cwd=home)
    assert purged.returncode == 0, purged.stderr
    # the old receiver and the 11 already sent go; the 49 the send holds stay
    assert purged.stdout == "purge: deleted 12 receivers and 1 message\n"
    smtp.release()
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (0, "")
    assert out == "message 2: attempted 60, sent 60, failed 0, error 0\n"
    assert sql("select status, count(*) from receiver group by status") == [("sent", 49)]


def test_receivers_deleted_under_a_running_send_are_skipped(home, smtp):
    write_project(home, smtp.port, smtp_extra="connections = 1\n")
    receivers_file(home, 60, "v")
    smtp.hold_after(10)
    proc = spawn(*SEND, cwd=home)
    smtp.wait_until(lambda s: s.waiting == 1)
    sql("delete from content where receiver_id > 20")
    sql("delete from receiver where id > 20")
    smtp.release()
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    assert proc.returncode == 0, err
    assert out == "message 1: attempted 20, sent 20, failed 0, error 0\n"
    assert len(smtp.messages) == 20
    assert sql("select status, count(*) from receiver group by status") == [("sent", 20)]
