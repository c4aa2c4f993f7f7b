"""The one exception family. Every message is written for the person at the terminal."""


class DevmsgError(Exception):
    """An error the user can fix. The CLI prints it as one red line and exits with `exit_code`."""

    exit_code = 1


class ConfigError(DevmsgError):
    """devmsg.toml is missing, unreadable or invalid."""


class InputError(DevmsgError):
    """Bad input on the command line, in a receivers file, in context JSON or in a template."""


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
