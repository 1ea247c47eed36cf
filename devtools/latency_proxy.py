"""A userspace TCP proxy on 127.0.0.1 that adds a fixed one-way delay, like a WAN link.

``tc netem`` is not available where the benchmarks run, so latency is simulated here:
every chunk read from one side is delivered to the other side ``delay`` seconds after it
arrived, in both directions, in order. Delivery times are absolute (arrival + delay), so
chunks in flight overlap instead of queueing behind each other's delays: throughput is
not crushed, only latency added, as on a real long link. It is a byte proxy, so TLS passes
through untouched and the client still verifies the server's certificate.

Two ways to run it:

- :class:`LatencyProxy` runs the event loop in a background thread of this process (handy
  in tests);
- :class:`ProxyProcess` runs it in its own process, so that a client busy parsing in the
  benchmark process (holding the GIL) does not hold up the "network" as well.

Command line (what :class:`ProxyProcess` starts)::

    python -m devtools.latency_proxy --target-port 9993 --delay 0.010
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
from types import TracebackType

from devtools.processes import reap

HOST = "127.0.0.1"
DEFAULT_DELAY = 0.010
CHUNK = 256 * 1024


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy one direction, delivering each chunk at its arrival time + ``delay``.

    The reader never waits for the writer: it stamps and queues every chunk as it comes,
    and a separate task delivers them. Delays are equal, so FIFO order is deadline order.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            # asyncio may wake a hair early (clock resolution); never deliver before due.
            while (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not data:  # the sender closed its side: pass the half-close on
                with contextlib.suppress(OSError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    delivery = asyncio.create_task(deliver())
    try:
        while True:
            try:
                data = await reader.read(CHUNK)
            except OSError:
                data = b""
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                break
        await delivery
    except (OSError, asyncio.CancelledError):
        delivery.cancel()
        raise


class _Forwarder:
    """The asyncio side: accept on 127.0.0.1, connect to the target, pump both ways."""

    def __init__(self, target_port: int, delay: float, target_host: str = HOST) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.delay = delay
        self._connections: set[asyncio.Task[None]] = set()

    async def handle(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            # The kernel completed the client's TCP handshake at once; a real one takes a
            # round trip before the first byte can flow, so the target is only reached then.
            await asyncio.sleep(2 * self.delay)
            try:
                server_reader, server_writer = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError:
                client_writer.close()
                return
            # A reset on either side just ends the connection: errors are not re-raised.
            await asyncio.gather(
                _pump(client_reader, server_writer, self.delay),
                _pump(server_reader, client_writer, self.delay),
                return_exceptions=True,
            )
            for writer in (server_writer, client_writer):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        except asyncio.CancelledError:
            # Only cancel_all() cancels, when the proxy stops: the connection just ends
            # (re-raising would make asyncio log every open connection as an error).
            client_writer.close()
        finally:
            self._connections.discard(task)

    async def cancel_all(self) -> None:
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)


class LatencyProxy:
    """The proxy in a background thread of this process.

    >>> with LatencyProxy(target_port=993, delay=0.010) as proxy:  # doctest: +SKIP
    ...     IMAPClient("localhost", port=proxy.port, ssl=True)

    :param target_port: the port on 127.0.0.1 to forward to.
    :param delay: one-way delay in seconds added to every chunk in each direction
        (default 10 ms, so 20 ms of round-trip time).
    :param port: the port to listen on; 0 (default) picks a free one, see :attr:`port`.
    """

    def __init__(self, target_port: int, delay: float = DEFAULT_DELAY, port: int = 0) -> None:
        self._forwarder = _Forwarder(target_port, delay)
        self._requested_port = port
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def delay(self) -> float:
        """The one-way delay in seconds."""
        return self._forwarder.delay

    def start(self) -> LatencyProxy:
        """Start listening; returns when :attr:`port` accepts connections."""
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)
        self._thread.start()
        self._started.wait(10)
        if self._error is not None:
            raise RuntimeError("the latency proxy did not start") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._forwarder.handle, HOST, self._requested_port)
            )
        except BaseException as err:
            self._error = err
            self._started.set()
            loop.close()
            return
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._forwarder.cancel_all())
            loop.close()

    def stop(self) -> None:
        """Stop listening and drop open connections."""
        loop, server = self._loop, self._server
        if loop is None or server is None or self._thread is None:
            return
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = self._server = self._thread = None

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ProxyProcess:
    """The proxy in a child process (``python -m devtools.latency_proxy``).

    Same parameters as :class:`LatencyProxy`; :attr:`port` is known once :meth:`start`
    returns. Only this object's own child is ever stopped.
    """

    def __init__(self, target_port: int, delay: float = DEFAULT_DELAY) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> ProxyProcess:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devtools.latency_proxy",
                "--target-port",
                str(self.target_port),
                "--delay",
                repr(self.delay),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the latency proxy process did not start: {line!r}")
        self.port = int(line)
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        reap(process)

    def __enter__(self) -> ProxyProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the proxy until SIGTERM/SIGINT; prints the listening port on the first line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=DEFAULT_DELAY, help="one-way, seconds")
    parser.add_argument("--port", type=int, default=0, help="listen port (0: any free one)")
    args = parser.parse_args(argv)

    async def serve() -> None:
        forwarder = _Forwarder(args.target_port, args.delay)
        server = await asyncio.start_server(forwarder.handle, HOST, args.port)
        print(server.sockets[0].getsockname()[1], flush=True)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
        server.close()
        await forwarder.cancel_all()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
