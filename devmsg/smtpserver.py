"""A capturing SMTP server on loopback (aiosmtpd), for `devmsg demo`, the tests and the
benchmarks. It accepts mail and keeps it in memory, and can be told to refuse chosen
recipients with a real SMTP reply (4xx/5xx) or drop the connection, a number of times or
always, and can hold messages at DATA until told to let them through: tests synchronise on
what the server has seen, never on how fast the machine is."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult


class _Controller(Controller):
    """Counts the connections that ended (the server's idle timeout closes them)."""

    def __init__(self, server: CapturingServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.capturing = server

    def factory(self) -> SMTP:
        capturing = self.capturing

        class Counting(SMTP):
            def connection_lost(self, exc: Exception | None) -> None:
                super().connection_lost(exc)
                with capturing._lock:
                    capturing.closed += 1

        return Counting(self.handler, **self.SMTP_kwargs)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    at: float = 0.0  # time.time() when the server accepted it
    mail_options: list[str] = field(default_factory=list)  # MAIL FROM's parameters (SIZE=)


@dataclass
class _Rule:
    reply: str  # an SMTP reply such as "550 5.1.1 no such user", or "drop"
    times: int | None  # None: always
    after: int = 0  # let this many through first


@dataclass
class _Handler:
    server: CapturingServer

    async def handle_EHLO(
        self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.server.pipelining:  # aiosmtpd handles pipelined commands; say so
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        self.server._count_session(session)
        reply = self.server._reply_for("MAIL FROM")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.server._reply_for(address)
        if reply == "drop":
            _close(server)
            return "421 4.4.2 closing connection"
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        received = Received(
            envelope.mail_from,
            list(envelope.rcpt_tos),
            bytes(envelope.original_content),
            mail_options=list(envelope.mail_options),
        )
        for rcpt in envelope.rcpt_tos:
            reply = self.server._reply_for(f"DATA {rcpt}")
            if reply == "drop":  # accepted, then the connection is lost before the reply
                self.server._store(received)
                _close(server)
                return "421 4.4.2 closing connection"
            if reply:
                return reply
        if self.server.delay:
            await asyncio.sleep(self.server.delay)  # a remote server's latency, per message
        await self.server._gate()
        self.server._store(received)
        return "250 2.0.0 OK: queued"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _close(server: SMTP) -> None:
    """Drop the client's connection (a fault the tests inject)."""
    if server.transport is not None:
        server.transport.close()


@dataclass
class CapturingServer:
    host: str = "127.0.0.1"
    port: int = 0
    delay: float = 0.0
    smtputf8: bool = True
    pipelining: bool = True  # offer RFC 2920 PIPELINING, as Postfix and Exim do
    username: str = ""  # when set, the server offers AUTH and requires this login
    password: str = ""
    messages: list[Received] = field(default_factory=list)
    sessions: int = 0  # SMTP connections that reached MAIL FROM
    idle_timeout: float = 300.0  # seconds: the server closes a connection idle this long
    size_limit: int = 33554432  # bytes: offered as SIZE (RFC 1870), checked at MAIL FROM
    tls_context: ssl.SSLContext | None = None  # offer STARTTLS with it, and require it
    closed: int = 0  # connections that have ended
    _seen: set = field(default_factory=set)
    _rules: dict[str, _Rule] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _passes: int | None = None  # with hold_after: how many more go through; None: all
    waiting: int = 0  # messages held at DATA right now
    _controller: Controller | None = None

    def start(self) -> CapturingServer:
        if not self.port:
            self.port = free_port(self.host)
        options: dict = {}
        if self.tls_context is not None:
            options.update(tls_context=self.tls_context, require_starttls=True)
        if self.username:  # loopback only: AUTH without TLS is fine here
            options.update(authenticator=self._authenticate, auth_require_tls=False,
                        auth_required=True)  # fmt: skip
        self._controller = _Controller(
            self, _Handler(self), hostname=self.host, port=self.port,
            enable_SMTPUTF8=self.smtputf8, timeout=self.idle_timeout,
            data_size_limit=self.size_limit, **options,
        )  # fmt: skip
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> CapturingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refuse(self, address: str, reply: str, times: int | None = None, after: int = 0) -> None:
        """Answer RCPT TO `address` with `reply` (e.g. "451 4.3.0 try later"), or "drop" the
        connection; `times` times, or always. `address` "MAIL FROM" refuses the sender, and
        "DATA <address>" refuses the message after DATA ("drop" there: the server takes the
        message, then the connection is lost before its reply). `after`: only once that many
        have gone through."""
        with self._lock:
            self._rules[address.lower()] = _Rule(reply, times, after)

    def hold_after(self, count: int = 0) -> None:
        """Let `count` more messages through, then hold each later one at DATA (its
        sender waits for the reply) until `release`."""
        with self._lock:
            self._passes = count

    def release(self) -> None:
        with self._lock:
            self._passes = None

    def wait_until(
        self, predicate: Callable[[CapturingServer], bool], timeout: float = 60.0
    ) -> None:
        """Wait for the server to reach a state (`predicate(self)`); a generous timeout
        only so that a broken test ends."""
        import time

        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise TimeoutError("the SMTP server never reached the state waited for")
            time.sleep(0.005)

    async def _gate(self) -> None:
        with self._lock:
            if self._passes is None:
                return
            if self._passes > 0:
                self._passes -= 1
                return
            self.waiting += 1
        try:
            while True:
                with self._lock:
                    if self._passes is None:
                        return
                await asyncio.sleep(0.005)
        finally:
            with self._lock:
                self.waiting -= 1

    def accept(self, address: str) -> None:
        with self._lock:
            self._rules.pop(address.lower(), None)

    def _reply_for(self, address: str) -> str | None:
        with self._lock:
            rule = self._rules.get(address.lower())
            if rule is None:
                return None
            if rule.after > 0:
                rule.after -= 1
                return None
            if rule.times is not None:
                rule.times -= 1
                if rule.times <= 0:
                    del self._rules[address.lower()]
            return rule.reply

    def _authenticate(
        self, server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    def _count_session(self, session: Any) -> None:
        with self._lock:
            if id(session) not in self._seen:
                self._seen.add(id(session))
                self.sessions += 1

    def _store(self, received: Received) -> None:
        received.at = time.time()
        with self._lock:
            self.messages.append(received)

    def recipients(self) -> list[str]:
        with self._lock:
            return [rcpt for m in self.messages for rcpt in m.rcpt_tos]
