"""Every command has help with a one-line summary and an example, and the README documents it."""

from __future__ import annotations

import pytest
from conftest import ROOT, Cli

from devmsg.cli import app

pytestmark = pytest.mark.sqlite_only

COMMANDS = sorted(
    [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands]
    + [
        f"{group.name} {c.name}"
        for group in app.registered_groups
        for c in group.typer_instance.registered_commands
    ]
)


def test_every_command_has_help_with_an_example_and_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert COMMANDS == [
        "bounces ingest", "cancel", "catalog extract", "catalog init", "catalog stats", "catalog update", "check",
        "demo", "hold", "limits", "list", "pause", "preview", "purge", "release", "resend",
        "resend-failed", "resume", "send", "show", "stats", "store copy", "suppress add",
        "suppress list", "suppress remove", "worker",
    ]  # fmt: skip
    for name in COMMANDS:
        result = Cli(None)(*name.split(), "--help")
        assert result.exit_code == 0, name
        assert "Example" in result.stdout, name
        assert f"devmsg {name}" in readme, name


def test_readme_documents_exit_codes_and_config_keys():
    readme = (ROOT / "README.md").read_text()
    for key in ("database", "templates", "locales", "default_language", "languages",
                "resend_limit", "sender", "timezone", "redirect_to", "DEVMSG_SMTP_PASSWORD",
                "max_age", "claim_lease", "busy_timeout", "retry_backoff",
                "security", "timeout", "suppress", "rate_limits", "idle_timeout"):  # fmt: skip
        assert f"`{key}`" in readme or key in readme, key
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |"):
        assert code in readme
