"""A TCP proxy in front of a real server that misbehaves once, inside a chosen command.

Everything is forwarded byte for byte until the client sends a command containing
``when`` (after one containing ``after``, if given). The proxy forwards that command to
the server, lets ``leak`` bytes of the answer through, and then:

* ``"drop"``: closes the client's connection (a server crash, a reset link);
* ``"call"``: calls ``callback`` before it forwards the answer, then carries on faithfully
  (another client acting between the server's answer and the client reading it);
* ``"lie"``: passes the first chunk of the answer through ``rewrite`` (for example to
  announce a 1 GB literal), then stalls;
* ``"stall"``: forwards nothing more, either way, and keeps the connection open (a hung
  server, which does not run later commands either), so the client waits until its own
  timeout.

With ``refuse_after``, every later connection is closed at once until :meth:`heal` (a
server that is gone for a while). Plain text only: the tests use ``security: none``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Literal

Action = Literal["drop", "stall", "lie", "call"]


class ForwardingProxy:
    """Listens on 127.0.0.1:``port``; each connection gets one to 127.0.0.1:``upstream_port``.

    A subclass says what happens between the two in :meth:`_session` (and may refuse a
    connection in :meth:`_refuses`); :meth:`close` cuts everything.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        """Stop listening and cut every connection."""
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return
            self._track(client)
            if self._refuses():
                client.close()
                continue
            upstream = self._track(socket.create_connection(("127.0.0.1", self.upstream_port)))
            self._session(client, upstream)

    def _refuses(self) -> bool:
        return False

    def _session(self, client: socket.socket, upstream: socket.socket) -> None:
        """Start what carries this connection's bytes (threads: it must not block)."""
        raise NotImplementedError


class HostileProxy(ForwardingProxy):
    """Forwards faithfully until the chosen command, then misbehaves as told."""

    def __init__(
        self,
        upstream_port: int,
        *,
        when: bytes,
        after: bytes = b"",
        action: Action = "drop",
        leak: int = 16,
        refuse_after: bool = False,
        rewrite: Callable[[bytes], bytes] | None = None,
        callback: Callable[[], None] | None = None,
    ) -> None:
        self.when, self.after, self.action, self.leak = when, after, action, leak
        self.refuse_after = refuse_after
        self.rewrite = rewrite
        self.callback = callback
        self.attacked = threading.Event()
        self.healed = False
        super().__init__(upstream_port)

    def heal(self) -> None:
        """From now on, forward every connection faithfully."""
        self.healed = True

    def _refuses(self) -> bool:
        return self.attacked.is_set() and self.refuse_after and not self.healed

    def _session(self, client: socket.socket, upstream: socket.socket) -> None:
        threading.Thread(target=self._commands, args=(client, upstream), daemon=True).start()

    def _commands(self, client: socket.socket, upstream: socket.socket) -> None:
        armed = threading.Event()  # the next answer bytes are the attacked command's
        threading.Thread(target=self._answers, args=(upstream, client, armed), daemon=True).start()
        seen_after = not self.after
        for chunk in chunks(client):
            if armed.is_set() and self.action in ("stall", "lie"):
                continue  # a hung server runs nothing more
            seen_after = seen_after or self.after in chunk
            if seen_after and self.when in chunk and not self.attacked.is_set() and not self.healed:
                self.attacked.set()
                armed.set()
            with contextlib.suppress(OSError):
                upstream.sendall(chunk)
        with contextlib.suppress(OSError):
            upstream.close()

    def _answers(
        self, upstream: socket.socket, client: socket.socket, armed: threading.Event
    ) -> None:
        leaked = 0
        for chunk in chunks(upstream):
            if armed.is_set() and self.action == "call" and self.callback is not None:
                armed.clear()
                self.callback()
            if armed.is_set() and self.action == "lie" and self.rewrite is not None:
                with contextlib.suppress(OSError):
                    client.sendall(self.rewrite(chunk))
                return  # then nothing more: the client must not wait for a gigabyte
            if armed.is_set():
                piece = chunk[: max(self.leak - leaked, 0)]
                leaked += len(piece)
                with contextlib.suppress(OSError):
                    client.sendall(piece)
                if leaked >= self.leak or len(piece) < len(chunk):
                    if self.action == "drop":
                        with contextlib.suppress(OSError):
                            client.shutdown(socket.SHUT_RDWR)
                            client.close()
                    return  # "stall": nothing more is forwarded, the socket stays open
                continue
            with contextlib.suppress(OSError):
                client.sendall(chunk)
        with contextlib.suppress(OSError):
            client.close()


def pump(source: socket.socket, sink: socket.socket, send_lock: threading.Lock) -> None:
    """Forward everything from ``source`` to ``sink``, then close ``sink``."""
    for chunk in chunks(source):
        with send_lock, contextlib.suppress(OSError):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.close()


def chunks(sock: socket.socket) -> Iterator[bytes]:
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        yield chunk
