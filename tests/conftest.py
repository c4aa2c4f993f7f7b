"""Shared fixtures: a fresh folder per test, a real SMTP server on a free loopback port,
a devmsg.toml that points at it, and the CLI driven through Typer's CliRunner."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devmsg.cli import app
from devmsg.smtpserver import CapturingServer, free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DEMO_DATA = ROOT / "devmsg" / "demo_data"

CONFIG = """\
database = "store/devmsg.sqlite3"
templates = "templates"
locales = "locales"
default_language = "en"
languages = ["en", "nb"]
resend_limit = 2
sender = "Devilry <noreply@devilry.example>"
timezone = "Europe/Oslo"
retry_backoff = "0s"

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout = 5
"""


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Every test runs in its own empty folder with a clean environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    for var in ("DEVMSG_CONFIG", "DEVMSG_SMTP_PASSWORD", "NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def smtp():
    with CapturingServer() as server:
        yield server


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on: "server down"."""
    return free_port()


def write_project(
    folder: Path, port: int, extra: str = "", source: Path = EXAMPLES, smtp_extra: str = ""
) -> Path:
    """A devmsg.toml with the templates and catalogs of `source`, sending to `port`;
    `extra` adds top-level keys, `smtp_extra` keys of [smtp]."""
    (folder / "store").mkdir(exist_ok=True)
    shutil.copytree(source / "templates", folder / "templates", dirs_exist_ok=True)
    shutil.copytree(source / "locales", folder / "locales", dirs_exist_ok=True)
    path = folder / "devmsg.toml"
    path.write_text(CONFIG.format(port=port).replace("[smtp]", extra + "[smtp]") + smtp_extra)
    return path


@pytest.fixture
def config_path(home, smtp):
    return write_project(home, smtp.port)


class Cli:
    def __init__(self, config: Path | None):
        self.config = config
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None):
        argv = (["--config", str(self.config)] if self.config else []) + list(args)
        return self.runner.invoke(app, argv, input=input, catch_exceptions=False)


@pytest.fixture
def cli(config_path):
    return Cli(config_path)


def mask_times(text: str) -> str:
    """Hide table times, keeping the columns' widths."""
    text = re.sub(r"\b\d{4}-\d\d-\d\d \d\d:\d\d\b", "YYYY-MM-DD hh:mm", text)
    return re.sub(r"\b\d\d-\d\d \d\d:\d\d\b", "MM-DD hh:mm", text)


def mask(text: str) -> str:
    """Hide what changes from run to run: times and Message-IDs."""
    text = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:\d\d)?", "<time>", text)
    text = re.sub(r"<\d+\.[0-9a-f]+@[\w.]+>", "<msgid>", text)
    return text


FEEDBACK_CONTEXT = (
    '{"assignment": "Oblig 1", "course": "INF1000", "published": "2026-11-27T14:30:00+00:00",'
    ' "points": "87.5", "comments": 2, "url": "https://devilry.example/feedback/1"}'
)


def devmsg_command() -> str:
    """The installed `devmsg` script, beside this Python."""
    beside = Path(sys.executable).with_name("devmsg")
    found = str(beside) if beside.exists() else shutil.which("devmsg")
    if not found:
        pytest.fail("the devmsg command is not installed: pip install -e '.[test]'")
    return found


def spawn(*args, cwd, env=None, **kwargs) -> subprocess.Popen:
    """Start the installed `devmsg` in its own process."""
    return subprocess.Popen(
        [devmsg_command(), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "COLUMNS": "200", **(env or {})}, **kwargs,
    )  # fmt: skip


def run(*args, cwd, env=None, timeout=120) -> subprocess.CompletedProcess:
    proc = spawn(*args, cwd=cwd, env=env)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
