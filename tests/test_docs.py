"""Every command has help with a one-line summary and an example, and the manual (docs/)
documents it; the command reference is generated, and current; the README stays a front page."""

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


DOCS = ROOT / "docs"


def test_every_command_has_help_with_an_example_and_is_in_the_manual():
    usage = "".join(p.read_text() for p in DOCS.glob("*.md") if p.name != "commands.md")
    reference = (DOCS / "commands.md").read_text()
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
        assert f"devmsg {name}" in usage, name
        assert f"## `devmsg {name}`" in reference, name


def test_the_manual_documents_exit_codes_and_config_keys():
    readme = (DOCS / "configuration.md").read_text() + (DOCS / "concepts.md").read_text()
    for key in ("database", "templates", "locales", "default_language", "languages",
                "resend_limit", "sender", "timezone", "redirect_to", "DEVMSG_SMTP_PASSWORD",
                "max_age", "claim_lease", "busy_timeout", "retry_backoff",
                "security", "timeout", "suppress", "rate_limits", "idle_timeout"):  # fmt: skip
        assert f"`{key}`" in readme or key in readme, key
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |"):
        assert code in readme


def test_the_command_reference_is_generated_from_the_app_and_current(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    typer = Path(sys.executable).with_name("typer")
    fresh = tmp_path / "commands.md"
    subprocess.run([str(typer), "devmsg.cli", "utils", "docs", "--name", "devmsg", "--title",
                    "Command reference", "--output", str(fresh)], check=True,
                   capture_output=True)  # fmt: skip
    assert (DOCS / "commands.md").read_text() == fresh.read_text(), (
        "docs/commands.md is stale: typer devmsg.cli utils docs --name devmsg "
        "--title 'Command reference' --output docs/commands.md"
    )


def test_the_readme_is_a_front_page_that_links_into_the_manual():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    import re

    for target in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)\)", readme):
        assert (ROOT / target).is_file(), target
    for page in ("getting-started", "concepts", "usage", "commands", "configuration",
                 "templates", "operating", "api", "other-mail", "postgresql", "performance",
                 "architecture"):  # fmt: skip
        assert f"(docs/{page}.md)" in readme, page
