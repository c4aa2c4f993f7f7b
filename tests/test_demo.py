"""`devmsg demo`: works with nothing configured, in any folder, and leaves a store to explore."""

from __future__ import annotations

import json

import pytest
from conftest import Cli

pytestmark = pytest.mark.sqlite_only


def test_demo_runs_and_leaves_a_store(home):
    cli = Cli(None)
    result = cli("demo")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "stored message 1 for 4 receivers" in out
    assert "sent 3, failed 1" in out
    assert "Receiver 2 (kari@example.no) failed: recipient refused: 451 4.7.1 Greylisted" in out
    assert "devmsg resend 2: sent 1, failed 0." in out
    assert "The SMTP server received 4 messages." in out
    assert "devmsg --config devmsg-demo/devmsg.toml list" in out
    folder = home / "devmsg-demo"
    assert (folder / "devmsg.sqlite3").exists()
    rows = json.loads(Cli(folder / "devmsg.toml")("list", "--json").stdout)
    assert {r["to"]: (r["language"], r["status"]) for r in rows} == {
        "ola@example.no": ("nb", "sent"),
        "kari@example.no": ("nb", "sent"),
        "alex@example.com": ("en", "sent"),
        "sam@example.com": ("en", "sent"),
    }
    # running it again refreshes its own folder
    assert cli("demo").exit_code == 0
    assert len(json.loads(Cli(folder / "devmsg.toml")("list", "--json").stdout)) == 4


def test_demo_refuses_a_folder_it_did_not_make(home):
    (home / "devmsg-demo").mkdir()
    (home / "devmsg-demo" / "precious.txt").write_text("mine")
    result = Cli(None)("demo")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: devmsg-demo exists and was not made by devmsg demo; "
        "remove it or choose another --folder\n"
    )
    assert sorted(p.name for p in (home / "devmsg-demo").iterdir()) == ["precious.txt"]


def test_every_command_the_readme_and_help_show_works_against_the_demo(home, smtp):
    """check --strict, preview with no --context, catalog stats with the source language,
    the manual's `show N`, and the send examples of the manual and of `send --help`."""
    import re
    import shlex
    from pathlib import Path

    cli = Cli(None)
    first = cli("demo")
    assert "replaced" not in first.stdout
    again = cli("demo")
    assert "It replaced the store an earlier devmsg demo left in devmsg-demo/." in again.stdout
    config = home / "devmsg-demo" / "devmsg.toml"
    demo = Cli(config)
    assert demo("check", "--strict").exit_code == 0
    preview = demo("preview", "feedback")
    assert preview.exit_code == 0 and "Feedback on Oblig 1 is ready" in preview.stdout
    stats = json.loads(demo("catalog", "stats", "--json").stdout)
    assert [(r["language"], r["source"], r["percent_translated"]) for r in stats] == [
        ("en", True, 100.0), ("nb", False, 100.0)]  # fmt: skip
    assert re.search(r"^ en .* source $", demo("catalog", "stats").stdout, re.M)
    docs = Path(__file__).resolve().parent.parent / "docs"
    readme = (docs / "getting-started.md").read_text() + (docs / "usage.md").read_text()
    suggested = re.search(r"devmsg --config devmsg-demo/devmsg.toml (show \d+)", again.stdout)[1]
    assert f"devmsg --config devmsg-demo/devmsg.toml {suggested}\n" in readme
    assert demo(*suggested.split()).exit_code == 0
    # The send examples, against the demo's template, to a server that is there.
    config.write_text(re.sub(r"port = \d+", f"port = {smtp.port}", config.read_text()))
    help_text = " ".join(demo("send", "--help").stdout.split())
    example = re.search(r"Example: (devmsg send .*?--language nb)", help_text)[1]
    section = readme[readme.index("## devmsg send") :]
    block = section[section.index("```sh") + 5 : section.index("```", section.index("```sh") + 5)]
    first_send = block.strip().split("\ndevmsg ")[0].replace("\\\n", " ")
    for command in (example, first_send):
        args = shlex.split(command.replace("│", ""))[1:]
        result = demo(*args)
        assert result.exit_code == 0, (command, result.output)
