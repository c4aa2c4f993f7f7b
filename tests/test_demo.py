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
