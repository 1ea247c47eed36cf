"""A proxy in front of Dovecot that deletes folders the way Cyrus does by default.

Cyrus (``delete_mode: delayed``) does not remove a deleted folder: it renames it to
``DELETED.<name>.<hex seconds>``. Deleting the same name twice within one second collides
with the first rename and fails. This proxy answers such a second ``DELETE`` with ``NO``
instead of passing it on, and passes everything else to the real Dovecot unchanged.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time

from tests.hostile.proxy import ForwardingProxy, chunks, pump

_DELETE = re.compile(rb'^(\S+) DELETE "?([^"\r\n]+)"?\r\n$', re.IGNORECASE)


class CyrusLikeProxy(ForwardingProxy):
    """Forwards everything but a second ``DELETE`` of one folder within a second."""

    def __init__(self, upstream_port: int) -> None:
        self.refused_deletes = 0
        self._deleted: dict[bytes, int] = {}  # folder -> second of its last DELETE
        self._delete_lock = threading.Lock()
        super().__init__(upstream_port)

    def _session(self, client: socket.socket, upstream: socket.socket) -> None:
        send_lock = threading.Lock()  # answers from the server and from the proxy
        threading.Thread(target=pump, args=(upstream, client, send_lock), daemon=True).start()
        threading.Thread(
            target=self._commands, args=(client, upstream, send_lock), daemon=True
        ).start()

    def _commands(
        self, client: socket.socket, upstream: socket.socket, send_lock: threading.Lock
    ) -> None:
        buffer = b""
        for chunk in chunks(client):
            buffer += chunk
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                line += b"\r\n"
                match = _DELETE.match(line)
                if match and self._collides(match.group(2)):
                    with send_lock, contextlib.suppress(OSError):
                        client.sendall(
                            match.group(1) + b" NO Mailbox already exists (DELETED folder)\r\n"
                        )
                    continue
                with contextlib.suppress(OSError):
                    upstream.sendall(line)
        with contextlib.suppress(OSError):
            upstream.close()

    def _collides(self, folder: bytes) -> bool:
        second = int(time.time())
        with self._delete_lock:
            if self._deleted.get(folder) == second:
                self.refused_deletes += 1
                return True
            self._deleted[folder] = second
            return False
