"""Shared fixtures: a fresh folder per test, a real SMTP server on a free loopback port,
a devmsg.toml that points at it, and the CLI driven through Typer's CliRunner.

Every test that uses a store runs twice: on SQLite, and on PostgreSQL (a fresh database
per test) when $DEVMSG_TEST_POSTGRES names a server (`.ci/postgres.sh` starts one). On CI
that variable is required: the PostgreSQL half never skips silently there. Tests marked
`sqlite_only` are about SQLite itself."""

from __future__ import annotations

import contextlib
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
database = "{database}"
templates = "templates"
locales = "locales"
default_language = "en"
languages = ["en", "nb"]
resend_limit = 2
sender = "Devilry <noreply@devilry.example>"
timezone = "Europe/Oslo"

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout = 5
"""


PG_ADMIN = os.environ.get("DEVMSG_TEST_POSTGRES")
PG_ROLE = "devmsg_test"
PG_PASSWORD = "devmsg-test-password-4711"
STORE: dict = {"backend": "sqlite", "url": None}  # the current test's store


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: about SQLite itself; not run on PostgreSQL")
    config.addinivalue_line("markers", "postgres_only: about PostgreSQL; not run on SQLite")
    config.addinivalue_line("markers", "unit: the inner ring: no store, no CLI, run once (-m unit)")


_NO_POSTGRES: list = []  # the PostgreSQL half, left out of a local run without a server


@pytest.hookimpl(trylast=True)  # after -m and -k chose: count only what would have run
def pytest_collection_modifyitems(config, items):
    """Without $DEVMSG_TEST_POSTGRES (and not on CI, which requires it), the PostgreSQL half
    is left out, with one line at the end instead of a skip line per test."""
    if PG_ADMIN or os.environ.get("CI"):
        return
    kept = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        (_NO_POSTGRES if params.get("backend") == "postgresql" else kept).append(item)
    if _NO_POSTGRES:
        config.hook.pytest_deselected(items=_NO_POSTGRES)
        items[:] = kept


def pytest_report_header(config):
    """One line, in the process that reports (with -n, its workers collect)."""
    if not PG_ADMIN and not os.environ.get("CI"):
        return "PostgreSQL tests not run: no server (set DEVMSG_TEST_POSTGRES, see .ci/postgres.sh)"
    return None


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        backends = ["sqlite", "postgresql"]
        marked = metafunc.definition.get_closest_marker
        if marked("sqlite_only") or marked("unit"):
            backends = ["sqlite"]
        elif metafunc.definition.get_closest_marker("postgres_only"):
            backends = ["postgresql"]
        metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture(scope="session")
def postgres_server():
    """The admin connection info of the test PostgreSQL server, with a test role."""
    if not PG_ADMIN:
        if os.environ.get("CI"):
            pytest.fail("CI runs every test on PostgreSQL too: DEVMSG_TEST_POSTGRES is not set")
        pytest.skip("no PostgreSQL: set DEVMSG_TEST_POSTGRES (see .ci/postgres.sh)")
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PG_ROLE,)).fetchone()
        if not exists:
            # another test process (pytest -n) may make it at the same moment
            with contextlib.suppress(
                psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation
            ):
                conn.execute(f"CREATE ROLE {PG_ROLE} LOGIN PASSWORD '{PG_PASSWORD}'")
    from urllib.parse import urlsplit

    url = urlsplit(PG_ADMIN)
    port = url.port or 5432
    # A migrated store to copy: CREATE DATABASE ... TEMPLATE takes a fraction of the time
    # that migrating a fresh database takes, for each of the tests that run on PostgreSQL.
    template = f"devmsg_t_template_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {template}")
        conn.execute(f"CREATE DATABASE {template} OWNER {PG_ROLE}")
    from devmsg.db import open_postgres

    previous = os.environ.get("PGPASSWORD")
    os.environ["PGPASSWORD"] = PG_PASSWORD
    try:
        open_postgres(f"postgresql://{PG_ROLE}@127.0.0.1:{port}/{template}", bind=False).close()
    finally:
        if previous is None:
            del os.environ["PGPASSWORD"]
        else:
            os.environ["PGPASSWORD"] = previous
    databases = _Databases(template)
    yield {"port": port, "template": template, "databases": databases}
    databases.close()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {template} WITH (FORCE)")


class _Databases:
    """Copies of the template for the tests, made ahead by a thread while the tests run
    (and the used ones dropped there), so that no test waits for its CREATE DATABASE."""

    AHEAD = 2

    def __init__(self, template: str) -> None:
        import queue
        import threading

        self.template = template
        self.ready: queue.Queue = queue.Queue()
        self.jobs: queue.Queue = queue.Queue()
        self.lock = threading.Lock()  # one CREATE from the template at a time
        self.thread = threading.Thread(target=self._work, name="test-databases", daemon=True)
        self.thread.start()
        for _ in range(self.AHEAD):
            self.jobs.put(("create", None))

    def take(self) -> str:
        import queue

        self.jobs.put(("create", None))  # the next one, for the test after this one
        try:
            return self.ready.get_nowait()
        except queue.Empty:
            return self._create()

    def drop(self, name: str) -> None:
        self.jobs.put(("drop", name))

    def close(self) -> None:
        self.jobs.put(("stop", None))
        self.thread.join(timeout=60)
        while not self.ready.empty():
            self._drop(self.ready.get_nowait())

    def _create(self) -> str:
        import uuid

        import psycopg

        name = f"devmsg_t_{uuid.uuid4().hex[:12]}"
        with self.lock, psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {self.template} OWNER {PG_ROLE}")
        return name

    def _drop(self, name: str) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def _work(self) -> None:
        while True:
            job, name = self.jobs.get()
            if job == "stop":
                return
            if job == "create":
                self.ready.put(self._create())
            else:
                self._drop(name)


@pytest.fixture
def backend(request, monkeypatch):
    """Which store this run of the test uses; for PostgreSQL, a fresh database."""
    STORE.update(backend=request.param, url=None)
    if request.param == "sqlite":
        yield "sqlite"
        return
    info = request.getfixturevalue("postgres_server")
    name = info["databases"].take()
    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)  # libpq reads it, in subprocesses too
    STORE["url"] = f"postgresql://{PG_ROLE}@127.0.0.1:{info['port']}/{name}"
    try:
        yield "postgresql"
    finally:
        from devmsg.models import database

        if database.obj is not None:
            database.obj.close()
        info["databases"].drop(name)  # by the thread, while the next test runs
        STORE.update(backend="sqlite", url=None)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch, backend):
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
    database = STORE["url"] or "store/devmsg.sqlite3"
    if STORE["url"] and folder != Path.cwd():
        database = _second_database(folder.name)  # a second project in one test
    config = CONFIG.format(port=port, database=database)
    path.write_text(config.replace("[smtp]", extra + "[smtp]") + smtp_extra)
    return path


def _second_database(suffix: str) -> str:
    import psycopg

    name = STORE["url"].rsplit("/", 1)[1] + "_" + re.sub(r"\W", "", suffix)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} OWNER {PG_ROLE}")
    return STORE["url"].rsplit("/", 1)[0] + "/" + name


def sql(query: str, params=(), config: Path | None = None) -> list[tuple]:
    """Run SQL on the current test's store (SQLite or PostgreSQL), `?` placeholders, and
    return the rows. For checks and for setting up states (times in the past)."""
    import datetime as dt

    if STORE["url"] and (config is None or "postgresql://" in config.read_text()):
        import psycopg

        url = STORE["url"]
        if config is not None:
            url = re.search(r'database = "([^"]+)"', config.read_text())[1]
        with psycopg.connect(url, autocommit=True) as conn:
            cursor = conn.execute(query.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []
    import sqlite3

    path = (config.parent if config else Path.cwd()) / "store" / "devmsg.sqlite3"
    params = [p.isoformat(sep=" ") if isinstance(p, dt.datetime) else p for p in params]
    conn = sqlite3.connect(path)
    try:
        with conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall()
    finally:
        conn.close()


def receivers_file(home: Path, count: int, prefix: str = "r") -> Path:
    """A receivers CSV of `count` addresses, r.csv in `home`."""
    path = home / "r.csv"
    path.write_text("address\n" + "".join(f"{prefix}{i}@example.com\n" for i in range(count)))
    return path


def backoff_passes() -> None:
    """Move time past every failed receiver's backoff (the suite keeps the default
    `retry_backoff` users get): what a later cron run would find due."""
    import datetime as dt

    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1)
    sql("update receiver set next_attempt_at = ? where status = 'failed'", (past,))


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
