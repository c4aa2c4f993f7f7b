"""devmsg.toml: lookup order, relative paths, and one-line errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Cli

from devmsg.config import load_config
from devmsg.errors import ConfigError

pytestmark = pytest.mark.sqlite_only


def write(tmp_path, text, name="devmsg.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('database = "x"\ncolour = "red"\n', "unknown key 'colour'"),
        ("[smtp]\nhots = 'x'\n", "unknown key 'smtp.hots'"),
        ('resend_limit = "2"\n', "key 'resend_limit' must be an integer, got str"),
        ("resend_limit = true\n", "key 'resend_limit' must be an integer, got bool"),
        ('languages = "en"\n', "key 'languages' must be a list of strings, got str"),
        ("[smtp]\nport = 25.5\n", "key 'smtp.port' must be an integer, got float"),
        ('[smtp]\nsecurity = "tls"\n', "key 'smtp.security' must be one of none, starttls, ssl"),
        ('timezone = "Mars/Olympus"\n', "key 'timezone': unknown time zone 'Mars/Olympus'"),
        ('default_language = "de"\nlanguages = ["en"]\n', "key 'default_language' ('de')"),
        ('sender = "nobody"\n', "key 'sender' is not an email address"),
        ('redirect_to = "staging"\n', "key 'redirect_to' is not an email address"),
        ("database = \n", "invalid TOML"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    result = Cli(path)("list")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {path}: ")
    assert result.stderr.count("\n") == 1


def test_lookup_order(tmp_path, monkeypatch):
    assert load_config().path is None  # built-in defaults
    assert load_config().database == tmp_path / "devmsg.sqlite3"
    local = write(tmp_path, 'database = "local.sqlite3"\n')
    assert load_config().path.resolve() == local
    (tmp_path / "etc").mkdir()
    env = write(tmp_path / "etc", 'database = "../env.sqlite3"\n', "env.toml")
    monkeypatch.setenv("DEVMSG_CONFIG", str(env))
    assert load_config().path == env
    assert load_config().database.resolve() == tmp_path / "env.sqlite3"
    explicit = write(tmp_path, "", "explicit.toml")
    assert load_config(explicit).path == explicit


def test_relative_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    path = write(tmp_path / "conf", 'database = "db/x.sqlite3"\ntemplates = "/abs/t"\n')
    monkeypatch.chdir("/")
    config = load_config(path)
    assert config.database == tmp_path / "conf" / "db" / "x.sqlite3"
    assert config.templates == Path("/abs/t")
    assert config.locales == tmp_path / "conf" / "locales"


def test_missing_config_file(tmp_path, monkeypatch):
    result = Cli(tmp_path / "nope.toml")("list")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {tmp_path / 'nope.toml'}: config file not found\n",
    )
    monkeypatch.setenv("DEVMSG_CONFIG", str(tmp_path / "gone.toml"))
    result = Cli(None)("list")
    assert (
        result.stderr
        == f"Error: {tmp_path / 'gone.toml'}: config file not found (from $DEVMSG_CONFIG)\n"
    )


def test_a_config_that_is_a_folder_says_so(tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    folder.mkdir()
    result = Cli(folder)("list")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {folder}: is a folder; give the path of a devmsg.toml\n",
    )
    monkeypatch.setenv("DEVMSG_CONFIG", str(folder))
    assert Cli(None)("list").stderr == (
        f"Error: {folder}: is a folder; give the path of a devmsg.toml (from $DEVMSG_CONFIG)\n"
    )


def test_store_copy_to_a_url_with_a_password_blames_the_url_not_the_config(cli):
    """The URL came from the command line; its password is never repeated."""
    for url, told in [
        ("postgresql://u:s3cret@db.example/devmsg",
         "--to: no password in the URL; use PGPASSWORD, ~/.pgpass or $DEVMSG_DATABASE_PASSWORD"),
        ("postgresql://u@db.example/", "--to: the URL names no database: postgresql://db.example/"),
        ("mysql://u@db.example/x", "--to: use a file path, sqlite:///path or postgresql://..."),
    ]:  # fmt: skip
        result = cli("store", "copy", "--to", url)
        assert (result.exit_code, result.stderr) == (1, f"Error: {told}\n")
        assert "s3cret" not in result.output


def test_defaults_work_with_no_config_at_all(tmp_path):
    assert Cli(None)("resend-failed", "--quiet").exit_code == 0
    assert (tmp_path / "devmsg.sqlite3").exists()
    result = Cli(None)("list")
    assert (result.exit_code, result.stdout) == (0, "No receivers match.\n")


def test_store_folder_missing_is_a_clear_error(tmp_path):
    path = write(tmp_path, 'database = "missing/dir/x.sqlite3"\n')
    result = Cli(path)("resend-failed")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path}/missing/dir/x.sqlite3: the folder {tmp_path}/missing/dir does not exist\n"
    )


def test_store_that_is_not_sqlite_is_a_clear_error(tmp_path):
    (tmp_path / "junk.sqlite3").write_text("this is not a database, just some text\n" * 100)
    path = write(tmp_path, 'database = "junk.sqlite3"\n')
    result = Cli(path)("list")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {tmp_path}/junk.sqlite3: cannot use the store: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.unit
def test_the_key_table_is_the_one_source_of_defaults_and_of_the_docs(tmp_path):
    """Each key is declared once (devmsg/configkeys.py): the dataclasses' defaults are what
    a file without the key gives, and the configuration page's table is made from it."""
    import dataclasses
    from pathlib import Path

    from devmsg.config import BouncesConfig, Config, SmtpConfig, _build
    from devmsg.configkeys import KEYS, keys_markdown

    built = _build({}, None, tmp_path)
    for field in dataclasses.fields(Config):
        if field.name in ("path", "database", "templates", "locales", "smtp", "bounces"):
            continue  # paths are made relative to the file's folder
        assert getattr(built, field.name) == getattr(Config(), field.name), field.name
    assert built.smtp == SmtpConfig() and built.bounces == BouncesConfig()
    assert (built.templates, built.database) == (
        tmp_path / "templates",
        tmp_path / "devmsg.sqlite3",
    )
    assert len({key.name for key in KEYS}) == len(KEYS)
    page = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    assert keys_markdown() in page, (
        "docs/configuration.md's table is stale: paste "
        "python -c 'from devmsg.configkeys import keys_markdown; print(keys_markdown())'"
    )
