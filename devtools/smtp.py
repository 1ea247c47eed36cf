"""Real SMTP servers for tests: aiosmtpd on 127.0.0.1, recording everything they receive.

Four flavours, one per way a client may meet a server:

- ``plain``: no TLS, AUTH allowed in plain text (``auth_require_tls=False``), like an
  internal relay;
- ``starttls``: plain port that offers STARTTLS and requires it before anything else;
- ``no_starttls``: plain port with AUTH, without STARTTLS (for "STARTTLS not offered");
- ``ssl``: implicit TLS from the first byte.

Every server accepts one user and password, counts connections, and records every
message with its envelope and raw bytes, so tests assert on what really went over the wire.
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from devtools.certs import Certificate, free_port

SMTP_USER = "mailer"
SMTP_PASSWORD = "smtp-Secret-4711"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the server received it."""

    connection: int
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None
    tls: bool

    def parsed(self) -> EmailMessage:
        """The message parsed with the default policy."""
        message = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message


class Recorder:
    """The aiosmtpd handler: authenticates, refuses chosen recipients, records messages."""

    def __init__(self, implicit_tls: bool) -> None:
        self.implicit_tls = implicit_tls
        self.messages: list[ReceivedMessage] = []
        self.refused: set[str] = set()
        self.logins: list[str] = []
        self._connections = 0
        self._lock = threading.Lock()

    @property
    def connections(self) -> int:
        """Connections opened since the last :meth:`reset`."""
        return self._connections

    def new_connection(self) -> int:
        with self._lock:
            self._connections += 1
            return self._connections

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.refused.clear()
            self.logins.clear()
            self._connections = 0

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == SMTP_USER.encode()
            and auth_data.password == SMTP_PASSWORD.encode()
        ):
            self.logins.append(SMTP_USER)
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() in self.refused:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        content = envelope.original_content or b""
        with self._lock:
            self.messages.append(
                ReceivedMessage(
                    connection=getattr(server, "connection_number", 0),
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    data=content,
                    login=login,
                    tls=self.implicit_tls or session.ssl is not None,
                )
            )
        return "250 2.0.0 OK: queued"


class _CountingController(Controller):
    """A Controller whose every connection gets a number, recorded with its messages."""

    def factory(self) -> SMTP:
        # aiosmtpd's Controller.factory has no annotations.
        server: SMTP = super().factory()  # type: ignore[no-untyped-call]
        server.connection_number = self.handler.new_connection()  # type: ignore[attr-defined]
        return server


def server_tls_context(certificate: Certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert_path, certificate.key_path)
    return context


class SmtpServer:
    """One aiosmtpd server on 127.0.0.1; ``security`` is the mode a client should use."""

    def __init__(self, flavour: str, certificate: Certificate) -> None:
        self.flavour = flavour
        self.host = "127.0.0.1"
        self.port = free_port()
        self.recorder = Recorder(implicit_tls=flavour == "ssl")
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "server_hostname": "localhost",
            "authenticator": self.recorder.authenticate,
            "auth_require_tls": flavour == "starttls",
        }
        if flavour == "starttls":
            kwargs.update(tls_context=server_tls_context(certificate), require_starttls=True)
        elif flavour == "ssl":
            kwargs["ssl_context"] = server_tls_context(certificate)
        elif flavour not in ("plain", "no_starttls"):
            raise ValueError(f"unknown flavour {flavour!r}")
        self.controller = _CountingController(self.recorder, **kwargs)

    @property
    def security(self) -> str:
        """The Security Method a connection to this server uses."""
        return {"plain": "none", "no_starttls": "starttls"}.get(self.flavour, self.flavour)

    @property
    def messages(self) -> list[ReceivedMessage]:
        return list(self.recorder.messages)

    @property
    def connections(self) -> int:
        return self.recorder.connections

    def refuse(self, *addresses: str) -> None:
        """Make the server answer ``550`` to RCPT TO for these addresses."""
        self.recorder.refused.update(address.lower() for address in addresses)

    def start(self) -> SmtpServer:
        self.controller.start()
        self.recorder.reset()
        return self

    def stop(self) -> None:
        self.controller.stop()


class SmtpServers:
    """The four flavours, started together."""

    def __init__(self, certificate: Certificate) -> None:
        self.plain = SmtpServer("plain", certificate)
        self.starttls = SmtpServer("starttls", certificate)
        self.no_starttls = SmtpServer("no_starttls", certificate)
        self.ssl = SmtpServer("ssl", certificate)

    @property
    def all(self) -> tuple[SmtpServer, ...]:
        return (self.plain, self.starttls, self.no_starttls, self.ssl)

    def start(self) -> SmtpServers:
        for server in self.all:
            server.start()
        return self

    def stop(self) -> None:
        for server in self.all:
            server.stop()

    def reset(self) -> None:
        for server in self.all:
            server.recorder.reset()


class SilentServer:
    """A port that accepts TCP connections (the kernel's backlog) but never says a word."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self._socket = socket.socket()
        self._socket.bind((self.host, 0))
        self._socket.listen(8)
        self.port = int(self._socket.getsockname()[1])

    def close(self) -> None:
        self._socket.close()
