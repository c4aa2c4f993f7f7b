"""SMTP only: connect, TLS, login, send one receiver's bytes; every failure becomes a
DeliveryFailure carrying a one-line description, the full traceback and a class
(temporary or permanent). The password is read from the environment at login and scrubbed
from anything recorded."""

from __future__ import annotations

import smtplib
import socket
import ssl
import traceback
from dataclasses import dataclass

from devmsg.config import SmtpConfig


@dataclass
class DeliveryFailure(Exception):
    error: str  # one line, for tables
    traceback: str  # the full traceback, for `devmsg show`
    temporary: bool
    code: int | None = None

    def __str__(self) -> str:
        return self.error


class SMTPRefused(smtplib.SMTPResponseException):
    """A negative reply at one stage of the exchange (MAIL, RCPT, DATA)."""

    def __init__(self, stage: str, code: int, resp: bytes) -> None:
        super().__init__(code, resp)
        self.stage = stage

    def __str__(self) -> str:
        return f"{self.stage} refused: {_reply(self.smtp_code, self.smtp_error)}"


class SmtpTransport:
    """One reusable SMTP connection. Not thread-safe: one per worker."""

    def __init__(self, smtp: SmtpConfig) -> None:
        self.config = smtp
        self._conn: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc) -> None:
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
        if cfg.security == "ssl":
            conn = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
            )
        else:
            conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        try:
            conn.ehlo_or_helo_if_needed()
            if cfg.security == "starttls":
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if cfg.username:
                conn.login(cfg.username, cfg.password)
        except BaseException:
            conn.close()
            raise
        return conn

    def send(self, sender: str, recipient: str, data: bytes) -> None:
        """Deliver `data` to one recipient. Returns only when the server accepted it."""
        try:
            reused = self._conn is not None
            if self._conn is None:
                self._conn = self._connect()
            try:
                self._exchange(self._conn, sender, recipient, data)
            except smtplib.SMTPServerDisconnected as exc:
                # An idle connection the server closed: nothing was accepted yet if it broke
                # at MAIL, so reconnect once and try again on a fresh connection.
                self._drop()
                if not (reused and getattr(exc, "stage", None) == "MAIL"):
                    raise
                self._conn = self._connect()
                self._exchange(self._conn, sender, recipient, data)
        except Exception as exc:
            if not isinstance(exc, SMTPRefused):
                self._drop()
            raise self._failure(exc) from None

    def _exchange(self, conn: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> None:
        options = []
        if not (sender + recipient).isascii():
            if not conn.has_extn("smtputf8"):
                raise SMTPRefused(
                    "MAIL", 553, b"server does not support SMTPUTF8 (non-ASCII address)"
                )
            options.append("SMTPUTF8")
        stage = "MAIL"
        try:
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
            exc.stage = stage
            raise

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _failure(self, exc: Exception) -> DeliveryFailure:
        tb = "".join(traceback.format_exception(exc))
        error, temporary, code = _describe(exc, self.config)
        password = self.config.password
        if password:
            tb = tb.replace(password, "***")
            error = error.replace(password, "***")
        return DeliveryFailure(error=error, traceback=tb, temporary=temporary, code=code)


def _reply(code: int, resp: bytes | str) -> str:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    return f"{code} {' '.join(text.split())}"


def _describe(exc: Exception, cfg: SmtpConfig) -> tuple[str, bool, int | None]:
    """(one-line error, temporary?, reply code)."""
    server = f"{cfg.host}:{cfg.port}"
    if isinstance(exc, SMTPRefused):
        what = {"MAIL": "sender refused", "RCPT": "recipient refused", "DATA": "message refused"}
        return (
            f"{what[exc.stage]}: {_reply(exc.smtp_code, exc.smtp_error)}",
            exc.smtp_code < 500,
            exc.smtp_code,
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (
            f"authentication failed: {_reply(exc.smtp_code, exc.smtp_error)}",
            True,
            exc.smtp_code,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"{server}: {exc}", True, None
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{server} replied {_reply(exc.smtp_code, exc.smtp_error)}", True, exc.smtp_code
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"{server}: connection lost: {exc}", True, None
    if isinstance(exc, ConnectionRefusedError):
        return f"{server}: connection refused", True, None
    if isinstance(exc, socket.timeout | TimeoutError):
        return f"{server}: timed out after {cfg.timeout:g}s", True, None
    if isinstance(exc, ssl.SSLError):
        return f"{server}: TLS error: {exc}", True, None
    if isinstance(exc, socket.gaierror):
        return f"{server}: cannot resolve host: {exc.strerror}", True, None
    if isinstance(exc, OSError):
        return f"{server}: {exc.strerror or exc}", True, None
    return f"{type(exc).__name__}: {exc}", True, None
