"""The one exception family. Every message is written for the person at the terminal."""


class DevmsgError(Exception):
    """An error the user can fix. The CLI prints it as one red line and exits with `exit_code`."""

    exit_code = 1


class ConfigError(DevmsgError):
    """devmsg.toml is missing, unreadable or invalid."""


class InputError(DevmsgError):
    """Bad input on the command line, in a receivers file, in context JSON or in a template.

    The message names the Python API's parameter (`type must not be empty`). `param` says
    which one it starts with, so that the CLI can name its option instead (`--type must not
    be empty`); `cli` is the whole message for the CLI when one option name will not do."""

    def __init__(self, message: str, *, param: str | None = None, cli: str | None = None):
        super().__init__(message)
        self.param = param
        self.cli = cli

    def for_cli(self, options: dict[str, str]) -> str:
        """The message with the CLI's option names."""
        text = str(self)
        if self.cli is not None:
            return self.cli
        if self.param in options and text.startswith(self.param):
            rest = text[len(self.param) :]
            if rest.startswith("[") and "]" in rest:  # addresses[2]: one of the arguments
                rest = rest[rest.index("]") + 1 :]
            return options[self.param] + rest
        return text


class UsageError(InputError):
    """A usage error: a required input is not there at all (no receivers, no selector), or
    two that cannot go together. Exit 2, as for Typer's own usage errors; an input that is
    there but wrong is an InputError, exit 1."""

    exit_code = 2


class NotFoundError(DevmsgError):
    """An id that is not in the store."""


class StoreError(DevmsgError):
    """The store file cannot be opened or written."""


class BusyError(DevmsgError):
    """Another process is delivering the receivers asked for."""


class Interrupted(DevmsgError):
    """A signal stopped devmsg politely: what it attempted is recorded, nothing is held."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
