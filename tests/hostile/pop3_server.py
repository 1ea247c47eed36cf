"""A small POP3 server that says whatever the test wants, such as the same UIDL twice.

Plain text on 127.0.0.1, any user and password accepted. ``messages`` is a list of
``(uidl, raw bytes)`` the test may change between sessions (a new session sees the
list as it is then, like a real maildrop).
"""

from __future__ import annotations

import socketserver
import threading


class HostilePop3:
    """Serves ``messages`` on ``port`` until :meth:`close`."""

    def __init__(self, messages: list[tuple[str, bytes]]) -> None:
        self.messages = messages
        self.commands: list[str] = []
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                server._session(self)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def _session(self, handler: socketserver.StreamRequestHandler) -> None:
        drop = list(self.messages)  # the maildrop as of this session
        out = handler.wfile

        def send(line: str) -> None:
            out.write(line.encode() + b"\r\n")

        def multi(lines: list[bytes]) -> None:
            for line in lines:
                out.write((b"." + line if line.startswith(b".") else line) + b"\r\n")
            out.write(b".\r\n")

        send("+OK hostile POP3 ready")
        for raw in handler.rfile:
            command, _, argument = raw.decode("ascii", "replace").strip().partition(" ")
            command = command.upper()
            self.commands.append(command)
            if command in ("USER", "PASS", "NOOP", "DELE", "RSET"):
                send("+OK")
            elif command == "CAPA":
                send("+OK")
                multi([b"UIDL", b"TOP", b"USER"])
            elif command == "STAT":
                send(f"+OK {len(drop)} {sum(len(m) for _u, m in drop)}")
            elif command == "LIST":
                send("+OK")
                multi([f"{i} {len(m)}".encode() for i, (_u, m) in enumerate(drop, 1)])
            elif command == "UIDL":
                send("+OK")
                multi([f"{i} {u}".encode() for i, (u, _m) in enumerate(drop, 1)])
            elif command in ("RETR", "TOP"):
                number = int(argument.split()[0])
                message = drop[number - 1][1]
                if command == "TOP":
                    message = message.split(b"\r\n\r\n", 1)[0] + b"\r\n"
                send(f"+OK {len(message)} octets")
                multi(message.rstrip(b"\r\n").split(b"\r\n"))
            elif command == "QUIT":
                send("+OK bye")
                return
            else:
                send("-ERR unknown command")
            out.flush()
