"""SMTP only: connect, TLS, login, send one receiver's bytes; every failure becomes a
DeliveryFailure carrying a one-line description, the full traceback and a class
(temporary or permanent). The password is read from the environment at login and scrubbed
from anything recorded."""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
import time
import traceback
from dataclasses import dataclass
from typing import Any

from devmsg.config import SmtpConfig


@dataclass
class DeliveryFailure(Exception):
    """Why one receiver was not delivered.

    Permanent: a 5xx reply at RCPT or DATA (about this recipient or this message; but 552 at
    RCPT, or 5.2.2 "mailbox full", is temporary), a message over the size the server
    declared, or a non-ASCII address the server cannot take. Everything else is temporary.

    A failure that says nothing about the receiver does not `count` toward resend_limit:
    no connection (refused, reset, timed out, TLS, a refusal at the greeting, EHLO,
    STARTTLS or AUTH), a 4xx at MAIL FROM, a connection lost before RCPT TO, an attempt a
    stop abandoned. Only the replies at RCPT TO and after DATA count. `relay_refused`: the
    relay said no for everyone (a 4xx at MAIL FROM, or 421): a run stops taking receivers
    for it."""

    error: str  # one line, for tables
    traceback: str  # the full traceback, for `devmsg show`
    permanent: bool
    connect_failed: bool = False  # no connection could be opened: the rest of a batch too
    interrupted: bool = False  # abandoned by a stop: says nothing about the server
    refusal: tuple[str, int, str] | None = None  # (stage, code, reply text) of a refusal
    counts: bool = True  # toward resend_limit: what the server said about this receiver
    relay_refused: bool = False

    def __str__(self) -> str:
        return self.error


class _SMTP_SSL(smtplib.SMTP_SSL):
    """SMTP over TLS from the start, checking the certificate for `server_name`."""

    def __init__(self, *args: Any, server_name: str, **kwargs: Any) -> None:
        self._server_name = server_name
        super().__init__(*args, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((host, port), timeout, self.source_address)
        return self.context.wrap_socket(sock, server_hostname=self._server_name)


class SMTPRefused(smtplib.SMTPResponseException):
    """A negative reply at one stage of the exchange (MAIL, RCPT, DATA)."""

    def __init__(self, stage: str, code: int, resp: bytes) -> None:
        super().__init__(code, resp)
        self.stage = stage

    def __str__(self) -> str:
        return f"{self.stage} refused: {_reply(self.smtp_code, self.smtp_error)}"


class NoSMTPUTF8(smtplib.SMTPException):
    """A non-ASCII address and a server without SMTPUTF8: permanent for this receiver."""


# A connection unused for longer than this is checked (an RSET in the same pipelined write
# as the message, so no round trip is added) before a message goes over it: a server may
# have closed it meanwhile, and a closed one is reopened, failing nothing.
CHECK_AFTER = 1.0


class SmtpTransport:
    """One reusable SMTP connection. Not thread-safe: one per worker."""

    def __init__(self, smtp: SmtpConfig) -> None:
        self.config = smtp
        self._conn: smtplib.SMTP | None = None
        self.aborted = False
        self.last_used = time.monotonic()

    def abort(self) -> None:
        """From another thread: shut the connection down, so that an exchange waiting on
        the server fails at once (a polite stop's grace period is over)."""
        self.aborted = True
        conn = self._conn
        sock = getattr(conn, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        if cfg.security != "none":
            # Certificates are always verified: against the system's CAs, or `ca_file` (a
            # private CA, or the relay's self-signed certificate), for `tls_server_name`
            # when `host` is an address the certificate does not name. Made only for TLS:
            # loading the system's CAs takes tens of milliseconds a connection.
            cafile = str(cfg.ca_file) if cfg.ca_file else None
            context = ssl.create_default_context(cafile=cafile)
            name = cfg.tls_server_name or cfg.host
        conn: smtplib.SMTP
        if cfg.security == "ssl":
            conn = _SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=context,
                             server_name=name)  # fmt: skip
        else:
            conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        try:
            conn.ehlo_or_helo_if_needed()
            if cfg.security == "starttls":
                # smtplib checks the certificate against this name (not in its stubs)
                conn._host = name  # type: ignore[attr-defined]
                conn.starttls(context=context)
                conn.ehlo()
            if cfg.username:
                conn.login(cfg.username, cfg.password)
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def ensure_connected(self) -> None:
        """Open the connection if there is none. Raises DeliveryFailure(connect_failed)."""
        if self._conn is None:
            try:
                self._conn = self._connect()
            except Exception as exc:
                raise self._failure(exc, connect_failed=True) from None

    def _open(self) -> smtplib.SMTP:
        """The connection ensure_connected made."""
        assert self._conn is not None
        return self._conn

    def send(self, sender: str, recipient: str, data: bytes) -> None:
        """Deliver `data` to one recipient. Returns only when the server accepted it."""
        reused = self._conn is not None
        check = reused and time.monotonic() - self.last_used > CHECK_AFTER
        self.ensure_connected()
        try:
            try:
                self._exchange(self._open(), sender, recipient, data, check)
            except (smtplib.SMTPServerDisconnected, SMTPRefused) as exc:
                # A reused connection the server closed, or a 421 "closing" at MAIL: nothing
                # was accepted yet, so reconnect once and try again on a fresh connection.
                at_mail = getattr(exc, "stage", None) == "MAIL"
                closing = isinstance(exc, smtplib.SMTPServerDisconnected) or exc.smtp_code == 421
                if not (reused and at_mail and closing):
                    raise
                self._drop()
                self.ensure_connected()
                self._exchange(self._open(), sender, recipient, data)
        except DeliveryFailure:
            raise
        except Exception as exc:
            if not isinstance(exc, SMTPRefused) or exc.smtp_code == 421:
                self._drop()
            raise self._failure(exc) from None
        finally:
            self.last_used = time.monotonic()

    def _exchange(
        self, conn: smtplib.SMTP, sender: str, recipient: str, data: bytes, check: bool = False
    ) -> None:
        options = []
        if not (sender + recipient).isascii():
            if not conn.has_extn("smtputf8"):
                raise NoSMTPUTF8(f"the server does not offer SMTPUTF8, needed for {recipient}")
            options.append("SMTPUTF8")
        if conn.has_extn("size"):  # RFC 1870: a message over its limit is refused at MAIL
            options.append(f"SIZE={len(data)}")
        stage = "MAIL"  # a check's reply counts as MAIL's: nothing was accepted yet
        try:
            if conn.has_extn("pipelining"):
                stage = self._pipelined(conn, sender, recipient, data, options, check)
                return
            if check:
                code, resp = conn.noop()
                if code != 250:
                    raise SMTPRefused(stage, code, resp)
            code, resp = conn.mail(sender, options)
            if code != 250:
                raise SMTPRefused(stage, code, resp)
            stage = "RCPT"
            code, resp = conn.rcpt(recipient)
            if code not in (250, 251):
                raise SMTPRefused(stage, code, resp)
            stage = "DATA"
            code, resp = conn.data(data)
            if code != 250:
                raise SMTPRefused(stage, code, resp)
        except SMTPRefused:
            try:
                conn.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()
            raise
        except smtplib.SMTPServerDisconnected as exc:
            if not hasattr(exc, "stage"):  # a pipelined exchange set it already
                exc.stage = stage  # type: ignore[attr-defined]  # read by send()
            raise

    @staticmethod
    def _pipelined(
        conn: smtplib.SMTP,
        sender: str,
        recipient: str,
        data: bytes,
        options: list[str],
        check: bool = False,
    ) -> str:
        """RFC 2920: MAIL FROM, RCPT TO and DATA in one write, then their replies in order:
        two round trips a message instead of four. The failure classes stay those of the
        lockstep exchange: each reply is judged at its own stage. A disconnect is raised
        with the stage whose reply was being read (set on the exception)."""
        if "SMTPUTF8" in options:
            conn.command_encoding = "utf-8"  # as smtplib's mail() does
        extra = " " + " ".join(options) if options else ""
        commands = (
            ("RSET\r\n" if check else "") + f"MAIL FROM:{smtplib.quoteaddr(sender)}{extra}\r\n"
            f"RCPT TO:{smtplib.quoteaddr(recipient)}\r\nDATA\r\n"
        )
        conn.send(commands.encode(conn.command_encoding))
        stage = "MAIL"
        try:
            if check:
                reset = conn.getreply()
                if reset[0] == 421:  # the server closed it while it was idle
                    raise SMTPRefused("MAIL", *reset)
            mail = conn.getreply()
            if mail[0] == 421:  # the server is closing: no more replies will come
                raise SMTPRefused("MAIL", *mail)
            stage = "RCPT"
            rcpt = conn.getreply()
            stage = "DATA"
            reply = conn.getreply()
            if reply[0] == 354 and (mail[0] != 250 or rcpt[0] not in (250, 251)):
                # A server that takes DATA after refusing the envelope: end it, empty.
                conn.send(b".\r\n")
                conn.getreply()
            if mail[0] != 250:
                raise SMTPRefused("MAIL", *mail)
            if rcpt[0] not in (250, 251):
                raise SMTPRefused("RCPT", *rcpt)
            if reply[0] != 354:
                raise SMTPRefused("DATA", *reply)
            body = re.sub(rb"(?m)^\.", b"..", data)
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            conn.send(body + b".\r\n")
            code, resp = conn.getreply()
            if code != 250:
                raise SMTPRefused("DATA", code, resp)
        except smtplib.SMTPServerDisconnected as exc:
            exc.stage = stage  # type: ignore[attr-defined]  # read by send()
            raise
        return stage

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _failure(self, exc: Exception, connect_failed: bool = False) -> DeliveryFailure:
        tb = "".join(traceback.format_exception(exc))
        error, permanent = _describe(exc, self.config)
        password = self.config.password
        if password:
            tb = tb.replace(password, "***")
            error = error.replace(password, "***")
        refusal = None
        stage, code = getattr(exc, "stage", None), getattr(exc, "smtp_code", 0)
        if isinstance(exc, SMTPRefused):
            refusal = (exc.stage, exc.smtp_code, _reply(exc.smtp_code, exc.smtp_error))
        relay_refused = (stage == "MAIL" and 400 <= code < 500) or code == 421
        counts = not (
            connect_failed
            or relay_refused
            or (isinstance(exc, smtplib.SMTPServerDisconnected) and stage in (None, "MAIL"))
        )
        return DeliveryFailure(
            error, tb, permanent, connect_failed, refusal=refusal, counts=counts,
            relay_refused=relay_refused,
        )  # fmt: skip


_ENHANCED = re.compile(r"^\d{3}[ -]?(\d)\.(\d{1,3})\.(\d{1,3})\b")


def mailbox_is_gone(failure: DeliveryFailure) -> bool:
    """A permanent refusal about the mailbox itself: a 5xx at RCPT with enhanced status
    5.1.x (bad address) or 5.2.1 (mailbox disabled). A policy or reputation refusal (5.7.x)
    is not about the mailbox."""
    if failure.refusal is None:
        return False
    stage, code, reply = failure.refusal
    status = _status(reply)
    if stage != "RCPT" or not 500 <= code < 600 or status is None or status[0] != "5":
        return False
    return status[1] == "1" or status[1:] == ("2", "1")


def _status(reply: str) -> tuple[str, str, str] | None:
    """The enhanced status code (RFC 3463) of a reply, as (class, subject, detail)."""
    match = _ENHANCED.match(reply)
    return None if match is None else (match[1], match[2], match[3])


def _reply(code: int, resp: bytes | str) -> str:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    return f"{code} {' '.join(text.split())}"


def _describe(exc: Exception, cfg: SmtpConfig) -> tuple[str, bool]:
    """(one-line error with the reply code and text, permanent?)."""
    server = f"{cfg.host}:{cfg.port}"
    if isinstance(exc, SMTPRefused):
        what = {"MAIL": "sender refused", "RCPT": "recipient refused", "DATA": "message refused"}
        code, reply = exc.smtp_code, _reply(exc.smtp_code, exc.smtp_error)
        if exc.stage == "MAIL" and code == 552:  # over the SIZE it declared: never fits
            return f"message refused: {reply}", True
        permanent = exc.stage in ("RCPT", "DATA") and code >= 500
        # RFC 5321: 552 at RCPT is temporary (too many recipients); servers use 5.2.2
        # (mailbox full) for a condition that passes.
        if (code == 552 and exc.stage == "RCPT") or _status(reply) == ("5", "2", "2"):
            permanent = False
        return f"{what[exc.stage]}: {reply}", permanent
    if isinstance(exc, NoSMTPUTF8):
        return str(exc), True
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        reply = _reply(exc.smtp_code, exc.smtp_error)
        return f"{server}: authentication failed: {reply}", False
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"{server}: {exc}", False
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = _reply(exc.smtp_code, exc.smtp_error)
        return f"{server} replied {reply}", False
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if isinstance(exc.__context__, socket.timeout | TimeoutError):
            return f"{server}: timed out after {cfg.timeout:g}s", False
        return f"{server}: connection lost: {exc}", False
    if isinstance(exc, ConnectionRefusedError):
        return f"{server}: connection refused", False
    if isinstance(exc, socket.timeout | TimeoutError):
        return f"{server}: timed out after {cfg.timeout:g}s", False
    if isinstance(exc, ssl.SSLCertVerificationError):  # what was wrong, for the operator
        return f"{server}: TLS error: certificate verify failed: {exc.verify_message}", False
    if isinstance(exc, ssl.SSLError):
        return f"{server}: TLS error: {exc.reason or exc}", False
    if isinstance(exc, socket.gaierror):
        return f"{server}: cannot resolve host: {exc.strerror}", False
    if isinstance(exc, OSError):
        return f"{server}: {exc.strerror or exc}", False
    return f"{type(exc).__name__}: {exc}", False
