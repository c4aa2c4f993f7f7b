"""Other people's text never drives the operator's terminal: escape sequences in bodies,
names, subjects, metadata and SMTP replies are shown visibly by every human-readable
output, and `--json` keeps the exact text, escaped as JSON escapes it."""

from __future__ import annotations

import json
import re

from conftest import Cli, write_project

from devmsg.cli.terminal import visible

RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what must never reach a terminal
TITLE, CLEAR, CSI1 = "\x1b]0;pwned\x07", "\x1b[2J", "\x9b2J"


def test_visible_renders_c0_del_and_c1_and_keeps_newline_and_tab():
    assert visible(f"a{TITLE}b\tc\nd{CSI1}\x7f\r") == "a␛]0;pwned␇b\tc\nd\\x9b2J␡␍"


def test_show_list_and_errors_render_hostile_text_visibly(home, smtp):
    cli = Cli(write_project(home, smtp.port))
    smtp.refuse("b@example.com", f"550 5.1.1 {TITLE}gone{CSI1}")
    body = f"Hei{CLEAR}\nline two\twith tab {CSI1} and DEL\x7f"
    result = cli(
        "send", "--type", f"t{TITLE}", "--subject", f"S{TITLE}u{CSI1}b", "--text", body,
        "--html", f"<p>{CLEAR}{CSI1}</p>", "--metadata", json.dumps({"k": f"{CLEAR}{CSI1}"}),
        "--to", f"Ola{CLEAR} <a@example.com>", "--to", "b@example.com",
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert not RAW.search(result.output)

    shown = cli("show", "1")
    assert shown.exit_code == 0
    assert not RAW.search(shown.stdout), repr(shown.stdout)
    assert "Hei␛[2J" in shown.stdout and "with tab \\x9b2J and DEL␡" in shown.stdout
    assert "\tline two" not in shown.stdout and "line two" in shown.stdout
    failure = cli("show", "2").stdout
    assert not RAW.search(failure)
    # (rich itself drops BEL, BS, VT, FF and CR from text before it reaches the console)
    assert "550 5.1.1 ␛]0;pwnedgone\\x9b2J" in failure

    listed = cli("list")
    assert not RAW.search(listed.stdout)
    assert "␛" in listed.stdout  # the type is stored as given
    subjects = {row["subject"] for row in json.loads(cli("list", "--json").stdout)}
    assert subjects == {"S ]0;pwned u 2Jb"}  # a subject turns C0 and C1 into spaces

    bad = cli("send", "--type", "t", "--subject", "s", "--text", "t", "--to", f"x{CLEAR}@")
    assert bad.exit_code == 1
    assert not RAW.search(bad.stderr)
    assert "x\\x1b[2J@" in bad.stderr  # quoted as Python quotes it


def test_json_stays_exact(home, smtp):
    cli = Cli(write_project(home, smtp.port))
    body = f"Hei{CLEAR}{CSI1}\x7f\n"
    cli("send", "--type", "t", "--subject", "s", "--text", body, "--to", "a@example.com")
    out = cli("show", "1", "--json").stdout
    assert not RAW.search(out.replace("\n", ""))
    assert "Hei\\u001b[2J\\u009b2J\\u007f\\n" in out
    assert json.loads(out)["body_text"] == body
