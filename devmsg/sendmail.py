"""`devmsg-sendmail`: what programs that call /usr/sbin/sendmail expect (PHP's mail(),
cron's MAILTO, monitoring tools, git send-email), storing the message in devmsg's record,
queued: `devmsg worker` (or resend-failed from cron) delivers it.

    devmsg-sendmail [-t] [-i] [-f SENDER] [-F NAME] [-C CONFIG] [ADDRESS ...] < message

Exit codes are sysexits': 0 stored; 64 a usage error; 65 a message that cannot be sent as
given; 75 the store is unavailable (the caller keeps the message and retries); 78 a bad
config. The config is -C, else $DEVMSG_CONFIG, else /etc/devmsg/devmsg.toml, else
./devmsg.toml."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from devmsg.inputs import Recipient

EX_OK, EX_USAGE, EX_DATAERR, EX_SOFTWARE, EX_TEMPFAIL, EX_CONFIG = 0, 64, 65, 70, 75, 78
SYSTEM_CONFIG = Path("/etc/devmsg/devmsg.toml")
TYPE = "sendmail"
USAGE = "usage: devmsg-sendmail [-t] [-i] [-f SENDER] [-F NAME] [-C CONFIG] [ADDRESS ...]"
# Options with a value, as sendmail's getopt takes them: -fSENDER or -f SENDER.
_WITH_VALUE = set("fFCrBbNRVXLoOhq")


class Usage(Exception):
    pass


@dataclass
class Options:
    headers: bool = False  # -t: the receivers are the message's To, Cc and Bcc
    dots: bool = True  # without -i, a line with a lone "." ends the message
    envelope_from: str | None = None
    full_name: str | None = None
    config: str | None = None
    addresses: list[str] = field(default_factory=list)


def parse(argv: list[str]) -> Options:
    """sendmail's options, getopt-style (-ti, -fme@x, -f me@x, -oi). Options that only
    tune a real MTA (-oem, -odi, -B8BITMIME, -N, -R, -V, -v) are accepted and ignored."""
    options = Options()
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            options.addresses += args
            break
        if not arg.startswith("-") or arg == "-":
            options.addresses.append(arg)
            continue
        letters = arg[1:]
        while letters:
            letter, letters = letters[0], letters[1:]
            if letter in _WITH_VALUE:
                if not letters:
                    if not args:
                        raise Usage(f"option -{letter} needs a value")
                    letters = args.pop(0)
                _value(options, letter, letters)
                break
            if letter == "t":
                options.headers = True
            elif letter == "i":
                options.dots = False
            elif letter not in "vUm":  # verbose, initial submission, me too: nothing to do
                raise Usage(f"unknown option -{letter}")
    return options


def _value(options: Options, letter: str, value: str) -> None:
    if letter in "fr":
        options.envelope_from = value.strip().removeprefix("<").removesuffix(">")
    elif letter == "F":
        options.full_name = value
    elif letter == "C":
        options.config = value
    elif letter == "o" and value == "i":
        options.dots = False
    elif letter == "b" and value != "m":
        raise Usage(f"-b{value}: only -bm (read a message and queue it) is supported")


def read_message(stream: BinaryIO, dots: bool) -> bytes:
    data = stream.read()
    if dots:  # a line with a lone dot ends it, as sendmail without -i
        lines = data.split(b"\n")
        for number, line in enumerate(lines):
            if line.rstrip(b"\r") == b".":
                data = b"\n".join(lines[:number]) + b"\n"
                break
    return data


def config_path(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    if os.environ.get("DEVMSG_CONFIG"):
        return None  # load_config reads it, and names it in its errors
    return str(SYSTEM_CONFIG) if SYSTEM_CONFIG.is_file() else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["--help"], ["-h"]):
        print(USAGE)
        print(__doc__.split("\n\n", 2)[2])
        return EX_OK
    try:
        code = submit(parse(argv))
    except Usage as exc:
        _say(f"{exc} ({USAGE})")
        return EX_USAGE
    except KeyboardInterrupt:
        _say("interrupted: nothing was stored")
        return EX_TEMPFAIL
    return code


def submit(options: Options) -> int:
    from devmsg.errors import DevmsgError
    from devmsg.outbox import Outbox

    if not options.headers and not options.addresses:
        raise Usage("no receivers: give their addresses, or -t to read To, Cc and Bcc")
    data = read_message(sys.stdin.buffer, options.dots)
    try:
        box = Outbox.open(config_path(options.config))
    except DevmsgError as exc:
        return _failed(exc)
    try:
        recipients = _recipients(options, data)
        envelope_from = options.envelope_from
        if envelope_from is not None and not box.config.allow_envelope_from:
            _say(f"-f {envelope_from} ignored: the config does not set allow_envelope_from; "
                 "the mail goes from the config's sender")  # fmt: skip
            envelope_from = None
        if options.full_name:
            data = _with_name(data, options.full_name, box.config.sender_address)
        report = box.send_email(data, type=TYPE, recipients=recipients, queue=True,
                                envelope_from=envelope_from)  # fmt: skip
    except DevmsgError as exc:
        return _failed(exc)
    finally:
        box.close()
    if report.suppressed:
        _say(f"{report.suppressed} of the receivers are on the suppression list: not sent")
    return EX_OK


def _failed(exc: Exception) -> int:
    """One line on stderr, and the sysexits code that tells the caller what to do."""
    from devmsg.errors import ConfigError, InputError, StoreError

    _say(str(exc))
    if isinstance(exc, ConfigError):
        return EX_CONFIG
    if isinstance(exc, StoreError):
        return EX_TEMPFAIL  # the caller keeps the message and tries again
    if isinstance(exc, InputError):
        return EX_DATAERR
    return EX_SOFTWARE


def _recipients(options: Options, data: bytes) -> list[Recipient] | None:
    """The envelope: the arguments; with -t, the message's To, Cc and Bcc too (as
    Postfix does). None: the message's own (send_email reads them)."""
    from devmsg.inputs import Recipient

    given = []
    for piece in (p.strip() for arg in options.addresses for p in arg.split(",")):
        if "<" in piece:  # Name <address>
            name, address = parseaddr(piece)
            given.append(Recipient(address or piece, name))
        elif piece:
            given.append(Recipient(piece))
    if options.headers and not given:
        return None
    if options.headers:
        import email.parser
        import email.policy

        parsed = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(data)
        for header in ("to", "cc", "bcc"):
            for value in parsed.get_all(header, []):
                given += [Recipient(str(a.addr_spec), str(a.display_name or ""))
                          for a in getattr(value, "addresses", ())]  # fmt: skip
    if not given:
        from devmsg.errors import InputError

        raise InputError("no receivers: the addresses given are empty")
    return given


def _with_name(data: bytes, name: str, address: str) -> bytes:
    """-F: the From header's name, when the message has no From (sendmail writes one)."""
    import email.parser

    from devmsg.config import format_sender

    parsed = email.parser.BytesHeaderParser().parsebytes(data)
    if parsed.get("from") is not None:
        return data
    try:
        header = format_sender(f"{name.replace('<', '').replace('>', '')} <{address}>")
    except ValueError:
        return data  # a name no header can carry: the config's sender is written instead
    return f"From: {header}\n".encode() + data


def _say(text: str) -> None:
    from devmsg.cli.controls import visible

    print(f"devmsg-sendmail: {visible(text)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
