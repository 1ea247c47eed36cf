"""The benchmarks' latency proxy forwards bytes both ways, in order, and adds its delay.

Only lower bounds on time are asserted: a loaded machine may add latency, never remove it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from devtools.latency_proxy import LatencyProxy, ProxyProcess

DELAY = 0.05
GREETING = b"* OK hello from the server\r\n"


@dataclass
class EchoServer:
    """One-connection TCP server: greets, then echoes everything, recording times."""

    listener: socket.socket = field(default_factory=socket.socket)
    greeting_sent_at: float = 0.0
    first_byte_at: float = 0.0
    received: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = int(self.listener.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            self.greeting_sent_at = time.monotonic()
            connection.sendall(GREETING)
            while chunk := connection.recv(65536):
                if not self.received:
                    self.first_byte_at = time.monotonic()
                self.received += chunk
                connection.sendall(chunk)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"connection closed after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def test_forwards_both_ways_in_order_and_delays_each_direction(echo: EchoServer) -> None:
    payload = os.urandom(3 * 1024 * 1024)  # many chunks, so order and completeness matter
    with (
        LatencyProxy(target_port=echo.port, delay=DELAY) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client,
    ):
        connected_at = time.monotonic()
        assert recv_exactly(client, len(GREETING)) == GREETING
        greeting_at = time.monotonic()

        sent_at = time.monotonic()
        # Send and receive concurrently: the echo would otherwise fill both directions'
        # buffers and deadlock a single-threaded client.
        sender = threading.Thread(target=client.sendall, args=(payload,))
        sender.start()
        echoed = recv_exactly(client, len(payload))
        echoed_at = time.monotonic()
        sender.join()
        client.shutdown(socket.SHUT_WR)
        assert client.recv(1) == b"", "the proxy passes the half-close on"

    assert echoed == payload
    assert bytes(echo.received) == payload
    # server -> client: the greeting left the server and arrived DELAY later, at least.
    assert greeting_at - echo.greeting_sent_at >= DELAY
    assert greeting_at - connected_at >= DELAY
    # client -> server: the first byte reached the server DELAY after it was sent.
    assert echo.first_byte_at - sent_at >= DELAY
    # A round trip costs both delays.
    assert echoed_at - sent_at >= 2 * DELAY


def test_runs_in_its_own_process(echo: EchoServer) -> None:
    with (
        ProxyProcess(target_port=echo.port, delay=DELAY) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client,
    ):
        started = time.monotonic()
        assert recv_exactly(client, len(GREETING)) == GREETING
        client.sendall(b"ping\r\n")
        assert recv_exactly(client, 6) == b"ping\r\n"
        assert time.monotonic() - started >= 2 * DELAY
