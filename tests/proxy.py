"""A TCP proxy on loopback that delays every chunk by a fixed time in each direction, in
order: a mail relay a network round trip away, for the tests and the benchmarks (this
kernel has no netem). It can also record what the client wrote, chunk by chunk, so that a
test can see that MAIL FROM, RCPT TO and DATA left in one write."""

from __future__ import annotations

import asyncio
import contextlib
import threading


class DelayProxy:
    def __init__(
        self,
        target_port: int,
        delay: float = 0.0,
        host: str = "127.0.0.1",
        max_connections: int | None = None,
        refuse_with: bytes = b"421 4.7.0 too many connections\r\n",
    ) -> None:
        """`max_connections`: past that many at once, a new connection gets `refuse_with`
        (an SMTP greeting that refuses; b"" just closes it) and is closed."""
        self.target = (host, target_port)
        self.delay = delay
        self.host = host
        self.max_connections = max_connections
        self.refuse_with = refuse_with
        self.active = 0
        self.refused = 0
        self.port = 0
        self.client_chunks: list[bytes] = []  # what clients wrote, as each read got it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server = None

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> DelayProxy:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def close() -> None:
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop = None

    async def _handle(self, reader, writer) -> None:
        if self.max_connections is not None and self.active >= self.max_connections:
            self.refused += 1
            writer.write(self.refuse_with)
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
            return
        self.active += 1  # taken before the first await: the limit holds for a burst
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                writer.close()
                return
            await asyncio.gather(
                self._pump(reader, up_writer, record=True),
                self._pump(up_reader, writer, record=False),
                return_exceptions=True,
            )
        finally:
            self.active -= 1

    async def _pump(self, source, target, record: bool) -> None:
        loop = asyncio.get_running_loop()

        def later(action, *args) -> None:
            def run() -> None:
                with contextlib.suppress(Exception):
                    action(*args)

            loop.call_at(loop.time() + self.delay, run)

        try:
            while data := await source.read(65536):
                if record:
                    self.client_chunks.append(data)
                later(target.write, data)
        except (OSError, asyncio.CancelledError):
            pass
        later(target.close)
