"""What a new user reads first: `devmsg --help`, grouped by task."""

from __future__ import annotations

import re

import pytest
from conftest import Cli

PANELS = [
    ("Sending", ["send", "resend", "resend-failed", "worker"]),
    ("Looking", ["list", "show", "stats"]),
    (
        "Operating",
        ["hold", "release", "cancel", "pause", "resume", "limits", "suppress", "bounces"],
    ),
    ("Authoring", ["check", "preview", "catalog"]),
    ("The store", ["purge", "store"]),
    ("Demo", ["demo"]),
]


@pytest.mark.sqlite_only
def test_help_groups_the_commands_by_task_in_order(home, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = Cli(None)("--help")
    assert result.exit_code == 0
    panels, current = [], None
    for line in result.stdout.splitlines():
        if title := re.match(r"╭─ (.+?) ─", line):
            current = (title[1], [])
            panels.append(current)
        elif current and (command := re.match(r"│ ([a-z][a-z-]*)\s{2,}", line)):
            current[1].append(command[1])
    assert panels[0][0] == "Options"
    assert panels[1:] == PANELS
